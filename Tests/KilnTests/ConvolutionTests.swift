import Foundation
import Testing
import Kiln

/// Convolution and pooling layers against PyTorch's torch.nn.functional (Tests/Fixtures/conv.json,
/// from scripts/make_golden.py), on OpenCL against the oracle, and their errors.
@Suite struct ConvolutionTests {
    struct ConvFixture: Decodable {
        let x, w1, b1, w2, output, upstream: FixtureTensor
        let grad_x, grad_w1, grad_b1, grad_w2: FixtureTensor
        let maxpool_pad1, maxpool_upstream, maxpool_grad_x: FixtureTensor
        let bn_x, bn_weight, bn_bias, bn_output, bn_upstream, bn_grad_x, bn_grad_weight, bn_grad_bias: FixtureTensor
        let bn_running_mean, bn_running_var, bn_eval_x, bn_eval_output: FixtureTensor
        let grouped_x, grouped_w, grouped_b, multiplier_w, depthwise_w: FixtureTensor
        let grouped_output, grouped_upstream, multiplier_output, multiplier_upstream, depthwise_output, depthwise_upstream: FixtureTensor
        let grouped_grad_x, grouped_grad_w, grouped_grad_b, grouped_grad_multiplier_w, grouped_grad_depthwise_w: FixtureTensor
        let transposed_x, transposed_w1, transposed_b1, transposed_w2: FixtureTensor
        let transposed_output1, transposed_upstream1, transposed_output2, transposed_upstream2: FixtureTensor
        let transposed_grad_x, transposed_grad_w1, transposed_grad_b1, transposed_grad_w2: FixtureTensor
    }

    /// Two transposed convolutions of one input, as F.conv_transpose2d: stride 2, padding 1 and
    /// output padding 1 with bias (4x5 up to 8x10), and dilation 2 without bias.
    func transposedNetwork(_ dtype: DType) throws -> (Graph, x: Tensor, ys: [Tensor], upstreams: [Tensor], loss: Tensor, params: [Tensor]) {
        let g = Graph()
        let x = try g.placeholder("x", [2, 3, 4, 5], dtype)
        let up = try ConvTranspose2d(3, 4, kernel: 3, stride: 2, padding: 1, outputPadding: 1, dtype: dtype, name: "up")
        let dilated = try ConvTranspose2d(3, 2, kernel: 2, dilation: 2, bias: false, dtype: dtype, name: "dilated")
        let ys = [try up(x), try dilated(x)]
        let upstreams = try ys.enumerated().map { try g.placeholder("upstream \($0.offset)", $0.element.shape, dtype) }
        let loss = try (ys[0] * upstreams[0]).sum() + (ys[1] * upstreams[1]).sum()
        let params = try [up.weight, up.bias!, dilated.weight].map { try $0.tensor(in: g) }
        return (g, x, ys, upstreams, loss, params)
    }

    @Test func transposedConvolutionsMatchPyTorch() throws {
        let f = try Fixtures.load("conv.json", as: ConvFixture.self)
        let (g, x, ys, upstreams, loss, params) = try transposedNetwork(.float64)
        #expect(ys[0].shape == [2, 4, 8, 10])
        try expectMatchesFixture(g, feeds: zip([x] + upstreams + params, [f.transposed_x, f.transposed_upstream1, f.transposed_upstream2,
                                                                          f.transposed_w1, f.transposed_b1, f.transposed_w2]),
                                 outputs: ys, loss: loss, wrt: [x] + params,
                                 want: [(f.transposed_output1, "stride 2"), (f.transposed_output2, "dilation 2"), (f.transposed_grad_x, "dx"),
                                        (f.transposed_grad_w1, "dw1"), (f.transposed_grad_b1, "db1"), (f.transposed_grad_w2, "dw2")])
    }

    /// The outputs, then the loss's gradients, in Double on the oracle, within 1e-10 of PyTorch's.
    func expectMatchesFixture(_ g: Graph, feeds: some Sequence<(Tensor, FixtureTensor)>, outputs: [Tensor], loss: Tensor, wrt: [Tensor],
                              want: [(FixtureTensor, String)]) throws {
        let grads = try g.gradients(of: loss, wrt: wrt)
        var values: [Tensor: HostTensor] = [:]
        for (t, v) in feeds { values[t] = try v.host(.float64) }
        let out = try CPUReference<Double>().run(g, feeds: values, fetch: outputs + grads)
        #expect(out.count == want.count)
        for (got, (want, label)) in zip(out, want) {
            #expect(got.shape == Shape(want.shape), "\(label)")
            #expect(maxError(got.doubles, want.data) < 1e-10, "\(label): \(maxError(got.doubles, want.data))")
        }
    }

    /// The transposed convolutions in float32 on OpenCL, fused, against the oracle.
    @Test func transposedOnOpenCLMatchTheOracle() throws {
        let (g, x, ys, upstreams, loss, params) = try transposedNetwork(.float32)
        try expectOpenCLMatchesOracle(g, inputs: [x] + upstreams + params, outputs: ys, loss: loss, wrt: [x] + params, seed: 5)
    }

    /// The outputs and the loss's gradients in float32 on OpenCL, fused, against the oracle,
    /// from seeded uniform inputs.
    func expectOpenCLMatchesOracle(_ g: Graph, inputs: [Tensor], outputs: [Tensor], loss: Tensor, wrt: [Tensor], seed: UInt64) throws {
        guard let ctx = OpenCLSupport.context else { return }
        let grads = try g.gradients(of: loss, wrt: wrt)
        var rng = SeededGenerator(seed: seed)
        var values: [Tensor: HostTensor] = [:]
        for t in inputs {
            values[t] = try HostTensor(rng.uniform(t.shape.count, in: -1...1).map(Float.init), shape: t.shape)
        }
        let (device, reference) = try openCLAndReference(g, fetch: outputs + grads, values: values, fusion: true, context: ctx)
        for (i, (d, r)) in zip(device, reference).enumerated() {
            let (_, rel) = DeviceCheck.errors(d, r)
            #expect(rel < DeviceCheck.opTolerance, "output \(i): \(rel)")
        }
    }

    /// Three grouped convolutions of one input, as F.conv2d computes them with groups: 2 groups
    /// with bias (a batched matmul), depthwise with a channel multiplier of 2 and stride 2, and
    /// depthwise with dilation 2 (a reduction); the loss sums each output times its upstream.
    func groupedNetwork(_ dtype: DType) throws -> (Graph, x: Tensor, ys: [Tensor], upstreams: [Tensor], loss: Tensor, params: [Tensor]) {
        let g = Graph()
        let x = try g.placeholder("x", [2, 4, 6, 5], dtype)
        let convs = [try Conv2d(4, 6, kernel: 3, padding: 1, groups: 2, dtype: dtype, name: "grouped"),
                     try Conv2d(4, 8, kernel: 3, stride: 2, padding: 1, groups: 4, bias: false, dtype: dtype, name: "multiplier"),
                     try Conv2d(4, 4, kernel: 3, padding: 2, dilation: 2, groups: 4, bias: false, dtype: dtype, name: "depthwise")]
        let ys = try convs.map { try $0(x) }
        let upstreams = try ys.enumerated().map { try g.placeholder("upstream \($0.offset)", $0.element.shape, dtype) }
        let loss = try (ys[0] * upstreams[0]).sum() + (ys[1] * upstreams[1]).sum() + (ys[2] * upstreams[2]).sum()
        let params = try [convs[0].weight, convs[0].bias!, convs[1].weight, convs[2].weight].map { try $0.tensor(in: g) }
        return (g, x, ys, upstreams, loss, params)
    }

    @Test func groupedConvolutionsMatchPyTorch() throws {
        let f = try Fixtures.load("conv.json", as: ConvFixture.self)
        let (g, x, ys, upstreams, loss, params) = try groupedNetwork(.float64)
        try expectMatchesFixture(g, feeds: zip([x] + upstreams + params, [f.grouped_x, f.grouped_upstream, f.multiplier_upstream, f.depthwise_upstream,
                                                                          f.grouped_w, f.grouped_b, f.multiplier_w, f.depthwise_w]),
                                 outputs: ys, loss: loss, wrt: [x] + params,
                                 want: [(f.grouped_output, "grouped"), (f.multiplier_output, "multiplier"), (f.depthwise_output, "depthwise"),
                                        (f.grouped_grad_x, "dx"), (f.grouped_grad_w, "d grouped w"), (f.grouped_grad_b, "d grouped b"),
                                        (f.grouped_grad_multiplier_w, "d multiplier w"), (f.grouped_grad_depthwise_w, "d depthwise w")])
    }

    /// The grouped convolutions in float32 on OpenCL, fused, against the oracle.
    @Test func groupedOnOpenCLMatchTheOracle() throws {
        let (g, x, ys, upstreams, loss, params) = try groupedNetwork(.float32)
        try expectOpenCLMatchesOracle(g, inputs: [x] + upstreams + params, outputs: ys, loss: loss, wrt: [x] + params, seed: 4)
    }

    /// conv2d (padding 1) -> relu -> max_pool2d 2 -> conv2d (stride 2, dilation 2, no bias) ->
    /// avg_pool2d (3, stride 1, padding 1): the output, and sum(output · upstream)'s gradients.
    func network(_ dtype: DType) throws -> (Graph, x: Tensor, upstream: Tensor, y: Tensor, loss: Tensor, params: [Tensor]) {
        let g = Graph()
        let x = try g.placeholder("x", [2, 3, 9, 8], dtype)
        let conv1 = try Conv2d(3, 4, kernel: 3, padding: 1, dtype: dtype, name: "conv1")
        let conv2 = try Conv2d(4, 5, kernel: 2, stride: 2, dilation: 2, bias: false, dtype: dtype, name: "conv2")
        let net = Sequential(conv1, Activation.relu, try MaxPool2d(2), conv2, try AvgPool2d(3, stride: 1, padding: 1))
        let y = try net(x)
        let upstream = try g.placeholder("upstream", y.shape, dtype)
        let params = try [conv1.weight, conv1.bias!, conv2.weight].map { try $0.tensor(in: g) }
        return (g, x, upstream, y, try (y * upstream).sum(), params)
    }

    @Test func layersMatchPyTorch() throws {
        let f = try Fixtures.load("conv.json", as: ConvFixture.self)
        let (g, x, upstream, y, loss, params) = try network(.float64)
        #expect(y.shape == Shape(f.output.shape))
        // conv2 reads the pooled values channels last (conv1's transpose sunk through ReLU and
        // pooling): its patches are a channels-last unfold, its input gradient a fold.
        #expect(g.nodes.contains { if case let .unfold(w, _) = $0.op { return w.channelsLast }; return false })
        let grads = try g.gradients(of: loss, wrt: [x] + params)
        var feeds: [Tensor: HostTensor] = [x: try f.x.host(.float64), upstream: try f.upstream.host(.float64)]
        for (t, v) in zip(params, [f.w1, f.b1, f.w2]) { feeds[t] = try v.host(.float64) }
        let out = try CPUReference<Double>().run(g, feeds: feeds, fetch: [y] + grads)
        for (got, (want, label)) in zip(out, [(f.output, "output"), (f.grad_x, "dx"), (f.grad_w1, "dw1"), (f.grad_b1, "db1"), (f.grad_w2, "dw2")]) {
            #expect(got.shape == Shape(want.shape), "\(label)")
            #expect(maxError(got.doubles, want.data) < 1e-10, "\(label): \(maxError(got.doubles, want.data))")
        }
    }

    /// Max pooling with padding, over a window of four equal values: PyTorch gives the whole
    /// gradient to the first of them, and so does Kiln.
    @Test func maxPoolRoutesTiesToTheFirst() throws {
        let f = try Fixtures.load("conv.json", as: ConvFixture.self)
        let g = Graph()
        let x = try g.placeholder("x", [2, 3, 9, 8], .float64)
        let y = try MaxPool2d(2, padding: 1)(x)
        let upstream = try g.placeholder("upstream", y.shape, .float64)
        let dx = try g.gradients(of: (y * upstream).sum(), wrt: [x])[0]
        let out = try CPUReference<Double>().run(g, feeds: [x: try f.x.host(.float64), upstream: try f.maxpool_upstream.host(.float64)],
                                                 fetch: [y, dx])
        #expect(maxError(out[0].doubles, f.maxpool_pad1.data) < 1e-12)
        #expect(maxError(out[1].doubles, f.maxpool_grad_x.data) < 1e-12)
    }

    /// ReLU then max pooling: autodiff masks the pooled gradient by maxPool(y) > 0 before
    /// routing it, instead of masking the routed gradient by y > 0. The same values, to the bit
    /// (a window wholly negative before the ReLU is one its mask zeroes).
    @Test func reluMaskIsAppliedBeforeMaxPoolRouting() throws {
        let g = Graph()
        let x = try g.placeholder("x", [2, 3, 8, 6], .float32)
        let y = try x.relu(), window = try Window2D(2)
        let pooled = try g.maxPool(y, window: window)
        let up = try g.placeholder("up", pooled.shape, .float32)
        let dx = try g.gradients(of: (pooled * up).sum(), wrt: [x])[0]
        let routing = g.node(dx), masked = g.nodes[routing.inputs[1]]
        #expect(routing.op == .maxPoolGrad(window) && masked.op == .binary(.mul) && masked.shape == pooled.shape)
        let plain = try g.maxPoolGrad(y, upstream: up, window: window) * g.binary(.greater, y, y.scalar(0))
        var rng = SeededGenerator(seed: 9)
        var xs = rng.uniform(x.shape.count, in: -1...1).map(Float.init)
        for i in [0, 1, 6, 7] { xs[i] = -abs(xs[i]) - 0.1 }      // the first window: all negative
        let feeds = [x: try HostTensor(xs, shape: x.shape),
                     up: try HostTensor(rng.uniform(up.shape.count, in: 0.5...1).map(Float.init), shape: up.shape)]
        let program = try Compiler.compile(g, fetch: [dx, plain], options: CompileOptions(fusion: true, realType: .float32))
        let out = try CPUExecutable<Float>(program: program).run(feeds: feeds)
        #expect(out[0].floats == out[1].floats)
        #expect(out[1].floats.contains { $0 != 0 })
    }

    /// `fetch` on the CPU backend (its C kernels) and on its plain loops, from the same random
    /// `inputs` in [-1, 1].
    static func fastAndLoops(_ fetch: [Tensor], inputs: [Tensor], seed: UInt64) throws -> (fast: [HostTensor], loops: [HostTensor]) {
        var rng = SeededGenerator(seed: seed)
        var feeds: [Tensor: HostTensor] = [:]
        for t in inputs { feeds[t] = try HostTensor(rng.uniform(t.shape.count, in: -1...1).map(Float.init), shape: t.shape) }
        let program = try Compiler.compile(fetch[0].graph, fetch: fetch, options: CompileOptions(fusion: true, realType: .float32))
        return (try CPUExecutable<Float>(program: program).run(feeds: feeds), try CPUExecutable<Float>(program: program, blas: false).run(feeds: feeds))
    }

    /// A "same" convolution's 3 x 3 windows (stride 1, padding 1) on the CPU backend take C
    /// kernels a row at a time; they give the window loops' values to the bit: unfold's patches
    /// (a pad value of 0.5 at the borders) and fold's sums, whose order they keep (also for
    /// images of one and two rows, where windows reach past both borders).
    @Test(arguments: [(3, 5, 7), (16, 5, 7), (8, 1, 4), (8, 2, 5)])
    func sameWindowsInCMatchTheLoops(channels c: Int, height h: Int, width w: Int) throws {
        let g = Graph(), window = try Window2D(3, padding: 1)
        let x = try g.placeholder("x", [2, c, h, w], .float32)
        let patches = try g.placeholder("patches", [2, h, w, c, 3, 3], .float32)
        let unfolded = try g.unfold(x, window: window, padValue: 0.5)
        let folded = try g.fold(patches, window: window, height: h, width: w)
        let (fast, loops) = try Self.fastAndLoops([unfolded, folded], inputs: [x, patches], seed: 21)
        #expect(fast[0].floats == loops[0].floats)
        #expect(fast[1].floats.map(\.bitPattern) == loops[1].floats.map(\.bitPattern))
        // Per image and channel, h·w windows of 9 entries, (3h - 2)(3w - 2) of them inside the image.
        #expect(fast[0].floats.filter { $0 == 0.5 }.count == 2 * c * (h * w * 9 - (3 * h - 2) * (3 * w - 2)))
    }

    /// Channels-last windows on the CPU backend take C kernels (a pixel's channels, a patch
    /// row's positions where the window lies inside, copied or added whole); they give the
    /// window loops' values to the bit: unfold's patches (pad value 0.5) and fold's sums in the
    /// loops' order. Windows that pad, stride and dilate, and images narrower than the window.
    @Test(arguments: [([3, 3], [1, 1], [1, 1], [1, 1], 32, 5, 7), ([3, 3], [1, 1], [1, 1], [1, 1], 5, 2, 2),
                      ([2, 3], [2, 1], [1, 0], [1, 2], 3, 7, 6), ([1, 5], [1, 2], [0, 2], [1, 1], 16, 4, 9)])
    func channelsLastWindowsInCMatchTheLoops(kernel: [Int], stride: [Int], padding: [Int], dilation: [Int], channels c: Int,
                                             height h: Int, width w: Int) throws {
        let g = Graph(), window = try Window2D(kernel: kernel, stride: stride, padding: padding, dilation: dilation).channelsLast(true)
        let x = try g.placeholder("x", [3, h, w, c], .float32)
        let unfolded = try g.unfold(x, window: window, padValue: 0.5)
        let patches = try g.placeholder("patches", unfolded.shape, .float32)
        let folded = try g.fold(patches, window: window, height: h, width: w)
        let (fast, loops) = try Self.fastAndLoops([unfolded, folded], inputs: [x, patches], seed: 22)
        let (sameUnfold, sameFold) = (fast[0].floats == loops[0].floats, fast[1].floats.map(\.bitPattern) == loops[1].floats.map(\.bitPattern))
        #expect(sameUnfold, "unfold")
        #expect(sameFold, "fold")
        // Every entry whose position lies outside the image is the pad value, channel by channel.
        var outside = 0
        for i in 0..<unfolded.shape[1] {
            for j in 0..<unfolded.shape[2] {
                for p in 0..<kernel[0] {
                    for q in 0..<kernel[1] {
                        let (r, col) = (window.source(i, p, axis: 0), window.source(j, q, axis: 1))
                        if !(0..<h).contains(r) || !(0..<w).contains(col) { outside += 1 }
                    }
                }
            }
        }
        let padded = fast[0].floats.filter { $0 == 0.5 }.count
        #expect(padded == 3 * c * outside)
    }

    /// A batch of no images through unfold and fold, channels first ("same" 3 x 3: the C
    /// kernels) and last: empty results on the CPU backend, its oracle and OpenCL.
    @Test func emptyBatchesOfWindows() throws {
        let g = Graph(), same = try Window2D(3, padding: 1)
        var fetch: [Tensor] = [], values: [Tensor: HostTensor] = [:]
        for (shape, window) in [([0, 4, 5, 6], same), ([0, 5, 6, 4], same.channelsLast(true))] {
            let x = try g.placeholder("x \(window)", Shape(shape), .float32)
            let patches = try g.unfold(x, window: window)
            let columns = try g.placeholder("columns \(window)", patches.shape, .float32)
            fetch += [patches, try g.fold(columns, window: window, height: 5, width: 6)]
            values[x] = try HostTensor([Float](), shape: x.shape)
            values[columns] = try HostTensor([Float](), shape: columns.shape)
        }
        let program = try Compiler.compile(g, fetch: fetch, options: CompileOptions(fusion: true, realType: .float32))
        for blas in [true, false] {
            let out = try CPUExecutable<Float>(program: program, blas: blas).run(feeds: values)
            #expect(out.map(\.shape) == fetch.map(\.shape) && out.allSatisfy { $0.floats.isEmpty })
        }
        guard let ctx = OpenCLSupport.context else { return }
        let (device, _) = try openCLAndReference(g, fetch: fetch, values: values, fusion: true, context: ctx)
        #expect(device.map(\.shape) == fetch.map(\.shape))
    }

    /// Batch norm through ModelStep (which computes in float32) as PyTorch's nn.BatchNorm2d: a
    /// training step's weight gradients (the weights after an SGD step with learning rate 1), the
    /// running statistics it leaves, and evaluation with them; then the training output and input
    /// gradient in Double from the graph.
    @Test func batchNormMatchesPyTorch() throws {
        let f = try Fixtures.load("conv.json", as: ConvFixture.self)
        final class Net: Module {
            let bn: BatchNorm2d
            init() throws { bn = try BatchNorm2d(3, dtype: .float64) }
        }
        let net = try Net()
        let step = try ModelStep(model: net, optimizer: Optimizer(.sgd), device: .cpu) { net, b in
            Objective(try (net.bn(b["x"]) * b["upstream"]).sum(), metrics: [:])
        }
        try step.restore(parameters: ["bn.weight": try f.bn_weight.host(.float64), "bn.bias": try f.bn_bias.host(.float64)])
        let outputs = try step.infer(["x": try f.bn_x.host(.float64)], name: "train-mode check") { net, b in ["y": try net.bn(b["x"])] }
        // Inference runs in evaluation mode: running statistics at their start (mean 0, variance 1).
        #expect(maxError(outputs["y"]!.doubles, try f.bn_x.data.enumerated().map { i, v in
            let c = (i / 25) % 3
            return v / (1 + 1e-5).squareRoot() * f.bn_weight.data[c] + f.bn_bias.data[c]
        }) < 1e-5)
        try step.train(["x": try f.bn_x.host(.float64), "upstream": try f.bn_upstream.host(.float64)], learningRate: 1)
        let p = try step.parameterValues(), state = try step.optimizerState()
        #expect(maxError(p["bn.weight"]!.doubles, zip(f.bn_weight.data, f.bn_grad_weight.data).map { $0 - $1 }) < 1e-5)
        #expect(maxError(p["bn.bias"]!.doubles, zip(f.bn_bias.data, f.bn_grad_bias.data).map { $0 - $1 }) < 1e-5)
        #expect(maxError(state["bn.runningMean"]!.doubles, f.bn_running_mean.data) < 1e-5)
        #expect(maxError(state["bn.runningVar"]!.doubles, f.bn_running_var.data) < 1e-5)
        // Evaluation normalizes by the running statistics (the weights restored to PyTorch's).
        try step.restore(parameters: ["bn.weight": try f.bn_weight.host(.float64), "bn.bias": try f.bn_bias.host(.float64)],
                         optimizerState: state)
        let eval = try step.infer(["x": try f.bn_eval_x.host(.float64)], name: "eval") { net, b in ["y": try net.bn(b["x"])] }
        #expect(maxError(eval["y"]!.doubles, f.bn_eval_output.data) < 1e-5)
        // The training output and input gradient, from the graph directly.
        let g = Graph()
        g.training = true
        let bn = try BatchNorm2d(3, dtype: .float64, name: "bn")
        let x = try g.placeholder("x", [4, 3, 5, 5], .float64), up = try g.placeholder("up", [4, 3, 5, 5], .float64)
        let y = try bn(x)
        let dx = try g.gradients(of: (y * up).sum(), wrt: [x])[0]
        let out = try CPUReference<Double>().run(g, feeds: [x: try f.bn_x.host(.float64), up: try f.bn_upstream.host(.float64),
                                                            try bn.weight!.tensor(in: g): try f.bn_weight.host(.float64),
                                                            try bn.bias!.tensor(in: g): try f.bn_bias.host(.float64),
                                                            try bn.runningMean.tensor(in: g): try bn.runningMean.initialTensor,
                                                            try bn.runningVar.tensor(in: g): try bn.runningVar.initialTensor],
                                                 fetch: [y, dx])
        #expect(maxError(out[0].doubles, f.bn_output.data) < 1e-10)
        #expect(maxError(out[1].doubles, f.bn_grad_x.data) < 1e-10)
    }

    /// The same network in float32 on OpenCL (fused and not) against the oracle.
    @Test(arguments: [true, false])
    func openCLMatchesTheOracle(fusion: Bool) throws {
        guard let ctx = OpenCLSupport.context else { return }
        let (g, x, upstream, y, loss, params) = try network(.float32)
        let grads = try g.gradients(of: loss, wrt: [x] + params)
        var rng = SeededGenerator(seed: 3)
        var values: [Tensor: HostTensor] = [:]
        for t in [x, upstream] + params {
            values[t] = try HostTensor(rng.uniform(t.shape.count, in: -1...1).map(Float.init), shape: t.shape)
        }
        let (device, reference) = try openCLAndReference(g, fetch: [y] + grads, values: values, fusion: fusion, context: ctx)
        for (i, (d, r)) in zip(device, reference).enumerated() {
            let (_, rel) = DeviceCheck.errors(d, r)
            #expect(rel < DeviceCheck.opTolerance, "output \(i), fusion \(fusion): \(rel)")
        }
    }

    @Test func badInputIsNamed() throws {
        let g = Graph()
        let x = try g.placeholder("x", [2, 3, 5, 5])
        func message(_ body: () throws -> Any) -> String {
            do { _ = try body(); return "" } catch { return "\(error)" }
        }
        // Channels that do not fit the weight.
        #expect(message { try Conv2d(4, 8, kernel: 3, name: "c")(x) }.contains("[2, 3, 5, 5] does not fit weight [8, 4, 3, 3]"))
        // A kernel larger than the padded input.
        #expect(message { try Conv2d(3, 8, kernel: 7, padding: 0, name: "c")(x) }.contains("larger than the padded input 5x5"))
        #expect(message { try MaxPool2d(7)(x) }.contains("larger than the padded input"))
        // Stride or dilation 0, padding over half the kernel, no batch and channels.
        #expect(message { try Conv2d(3, 8, kernel: 3, stride: 0) }.contains("stride [0, 0] must be two sizes"))
        #expect(message { try Conv2d(3, 8, kernel: 3, dilation: 0) }.contains("dilation [0, 0]"))
        // Output padding not below the stride.
        #expect(message { try ConvTranspose2d(3, 8, kernel: 3, stride: 2, outputPadding: 2) }.contains("output padding [2, 2] must be"))
        #expect(message { try ConvTranspose2d(4, 8, kernel: 3, name: "t")(x) }.contains("[2, 3, 5, 5] does not fit weight [4, 8, 3, 3]"))
        // Groups that do not divide the channels.
        #expect(message { try Conv2d(3, 8, kernel: 3, groups: 2) }.contains("groups 2 must be at least 1 and divide both channel counts 3 -> 8"))
        #expect(message { try Conv2d(4, 8, kernel: 3, groups: 2, name: "c")(x) }.contains("[2, 3, 5, 5] does not fit weight [8, 2, 3, 3] in 2 groups"))
        #expect(message { try MaxPool2d(2, padding: 2) }.contains("at most half the kernel"))
        #expect(message { try MaxPool2d(2)(try g.placeholder("flat", [2, 25])) }.contains("[N, C, H, W], got [2, 25]"))
        // fold's columns must be the shape unfold gives.
        let w = try Window2D(3)
        #expect(message { try g.fold(try g.placeholder("c", [2, 3, 3, 3, 3, 3]), window: w, height: 6, width: 5) }
            .contains("columns must be [N, 4, 3, C, 3, 3]"))
    }

    /// Output sizes as PyTorch computes them (floor), for pooling windows that do not divide the image.
    @Test func outputSizesFloorAsPyTorch() throws {
        let g = Graph()
        let x = try g.placeholder("x", [1, 2, 7, 5])
        #expect(try MaxPool2d(2)(x).shape == [1, 2, 3, 2])
        #expect(try AvgPool2d(3, stride: 2, padding: 1)(x).shape == [1, 2, 4, 3])
        #expect(try Conv2d(2, 6, kernel: [3, 2], stride: [2, 1], padding: [1, 0], dilation: [1, 2], name: "c")(x).shape == [1, 6, 4, 3])
        #expect(try Flatten()(GlobalAvgPool2d()(x)).shape == [1, 2])
    }
}
