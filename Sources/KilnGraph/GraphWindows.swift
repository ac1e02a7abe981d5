/// A 2-D sliding window over the last two axes of an `[N, C, H, W]` tensor, as convolution and
/// pooling slide it: each pair is (height, width). A channels-last window slides over axes 1
/// and 2 of `[N, H, W, C]` instead (max pooling, unfold and fold).
public struct Window2D: Sendable, Hashable, CustomStringConvertible {
    public let kernel: [Int]
    public let stride: [Int]
    public let padding: [Int]
    public let dilation: [Int]
    /// Whether the images are `[N, H, W, C]` (made by sinking a transpose through max pooling,
    /// see GraphLayout.swift, and by a convolution of such images) rather than `[N, C, H, W]`.
    public private(set) var channelsLast = false

    /// Each argument is a pair (height, width): kernel, stride and dilation at least 1, padding
    /// at least 0.
    public init(kernel: [Int], stride: [Int] = [1, 1], padding: [Int] = [0, 0], dilation: [Int] = [1, 1]) throws {
        for (name, pair, least) in [("kernel", kernel, 1), ("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)] {
            guard pair.count == 2, pair.allSatisfy({ $0 >= least }) else {
                throw KilnError.invalidArgument(op: "window", message: "\(name) \(pair) must be two sizes (height, width) of at least \(least)")
            }
        }
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
    }

    /// A square window: `kernel` x `kernel`, the same stride, padding and dilation both ways.
    public init(_ kernel: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1) throws {
        try self.init(kernel: [kernel, kernel], stride: [stride, stride], padding: [padding, padding], dilation: [dilation, dilation])
    }

    /// The same window over `[N, H, W, C]` images (`on`) or `[N, C, H, W]` ones.
    public func channelsLast(_ on: Bool) -> Window2D {
        var w = self
        w.channelsLast = on
        return w
    }

    /// The axes of the image's height, width and channels.
    public var axes: (height: Int, width: Int, channels: Int) { channelsLast ? (1, 2, 3) : (2, 3, 1) }

    /// The image layout, for messages.
    var layout: String { channelsLast ? "[N, H, W, C]" : "[N, C, H, W]" }

    public var description: String {
        func pair(_ p: [Int]) -> String { p[0] == p[1] ? "\(p[0])" : "\(p[0])x\(p[1])" }
        return "kernel \(pair(kernel)), stride \(pair(stride)), padding \(pair(padding)), dilation \(pair(dilation))"
            + (channelsLast ? ", channels last" : "")
    }

    /// Output positions along an axis of `size` (0: height, 1: width), as PyTorch computes
    /// them: floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1; nil where the
    /// dilated kernel is larger than the padded input.
    public func outputSize(_ size: Int, axis: Int) -> Int? {
        let span = dilation[axis] * (kernel[axis] - 1) + 1, padded = size + 2 * padding[axis]
        return padded >= span ? (padded - span) / stride[axis] + 1 : nil
    }

    /// The input row (axis 0) or column (axis 1) that output position `o` reads at kernel
    /// offset `k`; outside `0..<size` it is padding.
    public func source(_ o: Int, _ k: Int, axis: Int) -> Int { o * stride[axis] - padding[axis] + k * dilation[axis] }

    /// PyTorch's rule for pooling: padding at most half the kernel, so that no window lies
    /// wholly in the padding; an error naming `op` otherwise.
    public func requirePoolingPadding(_ op: String) throws {
        guard padding[0] * 2 <= kernel[0], padding[1] * 2 <= kernel[1] else {
            throw KilnError.invalidArgument(op: op, message: "padding \(padding) must be at most half the kernel \(kernel)")
        }
    }

    /// The output sizes for an input of `height` x `width`, or an error naming `op` and the shapes.
    func outputSizes(_ op: String, height: Int, width: Int, shape: Shape) throws -> (Int, Int) {
        guard let oh = outputSize(height, axis: 0), let ow = outputSize(width, axis: 1) else {
            throw KilnError.shapeMismatch(op: op, message: "window (\(self)) is larger than the padded input \(height)x\(width) of \(shape)")
        }
        return (oh, ow)
    }
}

extension Graph {
    /// A sliding window's patches (im2col): `x [N, C, H, W]` gives `[N, OH, OW, C, KH, KW]`,
    /// where entry (n, oh, ow, c, kh, kw) is `x[n, c, oh·stride - padding + kh·dilation, ...]`,
    /// or `padValue` where that lies in the padding (0 for convolution and average pooling,
    /// -infinity for max pooling). With a channels-last window, `x [N, H, W, C]` gives
    /// `[N, OH, OW, KH, KW, C]`: each window position's channels are one contiguous run of
    /// the input, copied whole.
    public func unfold(_ x: Tensor, window: Window2D, padValue: Double = 0) throws -> Tensor {
        try requireFloat("unfold", x)
        guard x.shape.rank == 4 else {
            throw KilnError.shapeMismatch(op: "unfold", message: "input must be \(window.layout), got \(x.shape)")
        }
        let (h, w, c) = window.axes
        let (oh, ow) = try window.outputSizes("unfold", height: x.shape[h], width: x.shape[w], shape: x.shape)
        let (n, channels, kh, kw) = (x.shape[0], x.shape[c], window.kernel[0], window.kernel[1])
        return try append(.unfold(window, padValue: padValue), [x],
                          window.channelsLast ? [n, oh, ow, kh, kw, channels] : [n, oh, ow, channels, kh, kw], x.dtype)
    }

    /// The gradient of `unfold` (col2im): `columns [N, OH, OW, C, KH, KW]` gives `[N, C,
    /// height, width]`, each pixel the sum of the entries that an unfold of that size reads from
    /// it. With a channels-last window, `[N, OH, OW, KH, KW, C]` gives `[N, height, width, C]`.
    public func fold(_ columns: Tensor, window: Window2D, height: Int, width: Int) throws -> Tensor {
        try requireFloat("fold", columns)
        let s = columns.shape
        guard height >= 0, width >= 0 else {
            throw KilnError.invalidArgument(op: "fold", message: "output size \(height)x\(width) is negative")
        }
        let (oh, ow) = try window.outputSizes("fold", height: height, width: width, shape: [height, width])
        let (kh, kw) = (window.kernel[0], window.kernel[1])
        // The window's kernel axes and the channel axis within the columns.
        let (k0, k1, c) = window.channelsLast ? (3, 4, 5) : (4, 5, 3)
        guard s.rank == 6, s[1] == oh, s[2] == ow, s[k0] == kh, s[k1] == kw else {
            let expected = window.channelsLast ? "[N, \(oh), \(ow), \(kh), \(kw), C]" : "[N, \(oh), \(ow), C, \(kh), \(kw)]"
            throw KilnError.shapeMismatch(op: "fold", message: "columns must be \(expected) for \(height)x\(width) with window (\(window)), got \(s)")
        }
        return try append(.fold(window, height: height, width: width), [columns],
                          window.channelsLast ? [s[0], height, width, s[c]] : [s[0], s[c], height, width], columns.dtype)
    }

    /// Max pooling (PyTorch's max_pool2d): `x [N, C, H, W]` gives `[N, C, OH, OW]`, each
    /// window's largest value. The padding never wins: at most half the kernel, so that no
    /// window lies wholly in it. Its gradient goes to each window's first largest element.
    /// With a channels-last window, `x [N, H, W, C]` gives `[N, OH, OW, C]`. The pooling of a
    /// transpose from channels last is made channels last, then transposed (GraphLayout.swift).
    public func maxPool(_ x: Tensor, window: Window2D) throws -> Tensor {
        try requireFloat("maxPool", x)
        guard x.shape.rank == 4 else {
            throw KilnError.shapeMismatch(op: "maxPool", message: "input must be \(window.layout), got \(x.shape)")
        }
        try window.requirePoolingPadding("maxPool")
        if !window.channelsLast, let (input, perm) = transposeSource(x), perm == [0, 3, 1, 2] {
            return try transpose(maxPool(input, window: window.channelsLast(true)), perm: perm)
        }
        return try append(.maxPool(window), [x], try pooledShape("maxPool", x.shape, window), x.dtype)
    }

    /// The shape `window` pools `shape` to, or an error naming `op` and the shapes.
    private func pooledShape(_ op: String, _ shape: Shape, _ window: Window2D) throws -> Shape {
        let (h, w, _) = window.axes
        let (oh, ow) = try window.outputSizes(op, height: shape[h], width: shape[w], shape: shape)
        var dims = shape.dims
        (dims[h], dims[w]) = (oh, ow)
        return Shape(dims)
    }

    /// The gradient of `maxPool`: `upstream [N, C, OH, OW]` routed into `[N, C, H, W]` (with a
    /// channels-last window, `[N, OH, OW, C]` into `[N, H, W, C]`), each value to its window's
    /// first largest element of `x` (row-major within the window).
    public func maxPoolGrad(_ x: Tensor, upstream: Tensor, window: Window2D) throws -> Tensor {
        try requireFloat("maxPoolGrad", x)
        guard x.shape.rank == 4 else {
            throw KilnError.shapeMismatch(op: "maxPoolGrad", message: "input must be \(window.layout), got \(x.shape)")
        }
        let pooled = try pooledShape("maxPoolGrad", x.shape, window)
        guard upstream.shape == pooled, upstream.dtype == x.dtype else {
            throw KilnError.shapeMismatch(op: "maxPoolGrad", message: "upstream \(upstream.dtype) \(upstream.shape) must be \(x.dtype) \(pooled), the pooling of \(x.shape) with window (\(window))")
        }
        return try append(.maxPoolGrad(window), [x, upstream], x.shape, x.dtype)
    }
}
