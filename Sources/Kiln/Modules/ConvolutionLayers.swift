/// Layers over `[N, C, H, W]` images, built from the sliding-window ops (`Graph.unfold`, whose
/// gradient is `Graph.fold`, and `Graph.maxPool`), matmuls and reductions, so that each is
/// differentiated, fused and run on every backend as those are.

/// 2-D convolution (cross-correlation, as PyTorch's nn.Conv2d) with weights
/// `[out, in / groups, kh, kw]`, initialized as PyTorch's (uniform ±1/√fan-in, fan-in =
/// in / groups x kh x kw, for weights and bias).
///
/// Computed from the input's patches `[N·OH·OW, in·kh·kw]`: one matmul with the weights' rows,
/// the bias in its epilogue, then moved to `[N, out, OH, OW]` (a transpose that sinks through
/// the layers after it, GraphLayout.swift). Input that is such a transpose is unfolded channels
/// last, without moving it back. With groups, a batched matmul
/// (one matrix per group); depthwise (one input channel per group, any channel multiplier),
/// a product with the weights summed over the window: one reduction kernel, as a matmul whose
/// inner dimension is the window alone would waste the device.
public final class Conv2d: Layer {
    public let weight: Parameter
    public let bias: Parameter?
    public let window: Window2D
    /// The channels split into this many groups, each convolved with its own filters.
    public let groups: Int

    /// - Parameters: `kernel`, `stride`, `padding`, `dilation` are (height, width) pairs;
    ///   `groups` divides both channel counts (`groups == inChannels`: depthwise).
    public init(_ inChannels: Int, _ outChannels: Int, kernel: [Int], stride: [Int] = [1, 1], padding: [Int] = [0, 0],
                dilation: [Int] = [1, 1], groups: Int = 1, bias: Bool = true, dtype: DType = .float32, name: String? = nil) throws {
        guard inChannels >= 1, outChannels >= 1 else {
            throw KilnError.invalidArgument(op: "Conv2d", message: "channels \(inChannels) -> \(outChannels) must be at least 1")
        }
        guard groups >= 1, inChannels % groups == 0, outChannels % groups == 0 else {
            throw KilnError.invalidArgument(op: "Conv2d", message: "groups \(groups) must be at least 1 and divide both channel counts \(inChannels) -> \(outChannels)")
        }
        window = try Window2D(kernel: kernel, stride: stride, padding: padding, dilation: dilation)
        self.groups = groups
        let fanIn = inChannels / groups * kernel[0] * kernel[1]
        weight = Parameter([outChannels, inChannels / groups, kernel[0], kernel[1]], dtype: dtype, initializer: .pytorchDefault(fanIn: fanIn),
                           name: name.map { "\($0).weight" })
        self.bias = bias ? Parameter([outChannels], dtype: dtype, initializer: .pytorchDefault(fanIn: fanIn), name: name.map { "\($0).bias" }) : nil
    }

    /// A square kernel with the same stride, padding and dilation both ways.
    public convenience init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1,
                            groups: Int = 1, bias: Bool = true, dtype: DType = .float32, name: String? = nil) throws {
        try self.init(inChannels, outChannels, kernel: [kernel, kernel], stride: [stride, stride], padding: [padding, padding],
                      dilation: [dilation, dilation], groups: groups, bias: bias, dtype: dtype, name: name)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let g = x.graph, w = try weight.tensor(in: g)
        let (out, perGroup) = (w.shape[0], w.shape[1]), inChannels = perGroup * groups
        guard x.shape.rank == 4, x.shape[1] == inChannels else {
            throw KilnError.shapeMismatch(op: "Conv2d", message: "input \(x.shape) does not fit weight \(w.shape)\(groups > 1 ? " in \(groups) groups" : ""): expected [N, \(inChannels), H, W]")
        }
        if groups == 1, let (image, perm) = g.transposeSource(x), perm == [0, 3, 1, 2] {
            // Channels-last images (a pooling's or a convolution's output, its transpose sunk):
            // their patches [N, OH, OW, kh, kw, C] copy each pixel's channels whole, and the
            // weights are permuted to match ([out, kh, kw, in], 72 KiB for the CNN's conv2).
            // Permuted first, so that the unfold runs right before the product.
            let rows = try w.transposed([0, 2, 3, 1]).reshaped([out, -1])
            let patches = try g.unfold(image, window: window.channelsLast(true))
            let (n, oh, ow) = (image.shape[0], patches.shape[1], patches.shape[2])
            var y = try patches.reshaped([n * oh * ow, -1]).matmul(rows, transposeB: true)
            if let bias { y = try y + bias.tensor(in: g) }
            return try y.reshaped([n, oh, ow, out]).transposed([0, 3, 1, 2])
        }
        let patches = try g.unfold(x, window: window)
        let (n, oh, ow) = (x.shape[0], patches.shape[1], patches.shape[2])
        let (rowCount, k) = (n * oh * ow, window.kernel[0] * window.kernel[1])
        let multiplier = out / groups
        var y: Tensor
        if groups == 1 {
            y = try patches.reshaped([rowCount, inChannels * k]).matmul(w.reshaped([out, -1]), transposeB: true)
        } else if perGroup == 1 {
            // [R, G, 1, K] · [G, M, K] summed over K: each output channel's window dot product.
            let rows = try patches.reshaped([rowCount, groups, 1, k])
            y = try (rows * w.reshaped([groups, multiplier, k])).sum(axes: [3]).reshaped([rowCount, out])
        } else {
            // Per group: [R, C/G·K] @ [M, C/G·K]ᵀ, the groups a batch.
            let rows = try patches.reshaped([rowCount, groups, perGroup * k]).transposed([1, 0, 2])
            let product = try rows.matmul(w.reshaped([groups, multiplier, perGroup * k]), transposeB: true)
            y = try product.transposed([1, 0, 2]).reshaped([rowCount, out])
        }
        if let bias { y = try y + bias.tensor(in: g) }
        return try y.reshaped([n, oh, ow, out]).transposed([0, 3, 1, 2])
    }
}

/// Transposed 2-D convolution (PyTorch's nn.ConvTranspose2d, without groups) with weights
/// `[in, out, kh, kw]`, initialized as PyTorch's (uniform ±1/√fan-in, fan-in = out x kh x kw):
/// the adjoint of a convolution, which upsamples by the stride. It is what a convolution's
/// input gradient computes: one matmul of the pixels' channels with the weights, giving each
/// pixel's patch, then `fold`, which adds the patches into the output.
/// The output is `(H − 1)·stride − 2·padding + dilation·(kernel − 1) + outputPadding + 1` high
/// (and wide likewise).
public final class ConvTranspose2d: Layer {
    public let weight: Parameter
    public let bias: Parameter?
    public let window: Window2D
    /// Rows and columns added at the bottom and right of the output (below the stride), so that
    /// a strided convolution's output size can be inverted exactly.
    public let outputPadding: [Int]

    /// - Parameters: `kernel`, `stride`, `padding`, `outputPadding`, `dilation` are (height,
    ///   width) pairs; `outputPadding` smaller than the stride.
    public init(_ inChannels: Int, _ outChannels: Int, kernel: [Int], stride: [Int] = [1, 1], padding: [Int] = [0, 0],
                outputPadding: [Int] = [0, 0], dilation: [Int] = [1, 1], bias: Bool = true, dtype: DType = .float32,
                name: String? = nil) throws {
        guard inChannels >= 1, outChannels >= 1 else {
            throw KilnError.invalidArgument(op: "ConvTranspose2d", message: "channels \(inChannels) -> \(outChannels) must be at least 1")
        }
        window = try Window2D(kernel: kernel, stride: stride, padding: padding, dilation: dilation)
        guard outputPadding.count == 2, outputPadding[0] >= 0, outputPadding[1] >= 0,
              outputPadding[0] < stride[0], outputPadding[1] < stride[1] else {
            throw KilnError.invalidArgument(op: "ConvTranspose2d", message: "output padding \(outputPadding) must be two sizes (height, width) of at least 0 and below the stride \(stride)")
        }
        self.outputPadding = outputPadding
        let fanIn = outChannels * kernel[0] * kernel[1]
        weight = Parameter([inChannels, outChannels, kernel[0], kernel[1]], dtype: dtype, initializer: .pytorchDefault(fanIn: fanIn),
                           name: name.map { "\($0).weight" })
        self.bias = bias ? Parameter([outChannels], dtype: dtype, initializer: .pytorchDefault(fanIn: fanIn), name: name.map { "\($0).bias" }) : nil
    }

    /// A square kernel with the same stride, padding, output padding and dilation both ways.
    public convenience init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, outputPadding: Int = 0,
                            dilation: Int = 1, bias: Bool = true, dtype: DType = .float32, name: String? = nil) throws {
        try self.init(inChannels, outChannels, kernel: [kernel, kernel], stride: [stride, stride], padding: [padding, padding],
                      outputPadding: [outputPadding, outputPadding], dilation: [dilation, dilation], bias: bias, dtype: dtype, name: name)
    }

    /// The output's size along an axis (0: height, 1: width) for an input of `size`.
    public func outputSize(_ size: Int, axis: Int) -> Int {
        (size - 1) * window.stride[axis] - 2 * window.padding[axis] + window.dilation[axis] * (window.kernel[axis] - 1) + outputPadding[axis] + 1
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let g = x.graph, w = try weight.tensor(in: g)
        let (inChannels, out) = (w.shape[0], w.shape[1])
        guard x.shape.rank == 4, x.shape[1] == inChannels else {
            throw KilnError.shapeMismatch(op: "ConvTranspose2d", message: "input \(x.shape) does not fit weight \(w.shape): expected [N, \(inChannels), H, W]")
        }
        let (n, h, wd) = (x.shape[0], x.shape[2], x.shape[3])
        let (oh, ow) = (outputSize(h, axis: 0), outputSize(wd, axis: 1))
        guard oh >= 1, ow >= 1 else {
            throw KilnError.shapeMismatch(op: "ConvTranspose2d", message: "input \(x.shape) with window (\(window)) gives an empty output \(oh)x\(ow)")
        }
        let rows = try x.transposed([0, 2, 3, 1]).reshaped([n * h * wd, inChannels])
        let patches = try rows.matmul(w.reshaped([inChannels, -1])).reshaped([n, h, wd, out, window.kernel[0], window.kernel[1]])
        let y = try g.fold(patches, window: window, height: oh, width: ow)
        guard let bias else { return y }
        return try y + bias.tensor(in: g).reshaped([1, out, 1, 1])
    }
}

/// Max pooling over windows (nn.MaxPool2d; the stride defaults to the kernel). The gradient goes
/// to the first largest value of each window in row-major order, as PyTorch routes it; the
/// padding never wins.
public final class MaxPool2d: Layer {
    public let window: Window2D

    public init(kernel: [Int], stride: [Int]? = nil, padding: [Int] = [0, 0], dilation: [Int] = [1, 1]) throws {
        window = try Window2D(kernel: kernel, stride: stride ?? kernel, padding: padding, dilation: dilation)
        try window.requirePoolingPadding("MaxPool2d")
    }

    public convenience init(_ kernel: Int, stride: Int? = nil, padding: Int = 0) throws {
        try self.init(kernel: [kernel, kernel], stride: stride.map { [$0, $0] }, padding: [padding, padding])
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.graph.maxPool(x, window: window)
    }
}

/// Average pooling over windows (nn.AvgPool2d with count_include_pad: the padding counts as
/// zeros; the stride defaults to the kernel).
public final class AvgPool2d: Layer {
    public let window: Window2D

    public init(kernel: [Int], stride: [Int]? = nil, padding: [Int] = [0, 0]) throws {
        window = try Window2D(kernel: kernel, stride: stride ?? kernel, padding: padding)
        try window.requirePoolingPadding("AvgPool2d")
    }

    public convenience init(_ kernel: Int, stride: Int? = nil, padding: Int = 0) throws {
        try self.init(kernel: [kernel, kernel], stride: stride.map { [$0, $0] }, padding: [padding, padding])
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.graph.unfold(x, window: window).mean(axes: [4, 5]).transposed([0, 3, 1, 2])
    }
}

/// The mean of each channel over its image: `[N, C, H, W]` gives `[N, C]`.
public final class GlobalAvgPool2d: Layer {
    public init() {}

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.shape.rank == 4 else {
            throw KilnError.shapeMismatch(op: "GlobalAvgPool2d", message: "input must be [N, C, H, W], got \(x.shape)")
        }
        return try x.mean(axes: [2, 3])
    }
}

/// `[N, ...]` as `[N, product of the rest]`.
public final class Flatten: Layer {
    public init() {}

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.shape.rank >= 1 else {
            throw KilnError.shapeMismatch(op: "Flatten", message: "input must have a batch axis, got a scalar")
        }
        return try x.reshaped([x.shape[0], x.shape.dims.dropFirst().reduce(1, *)])
    }
}
