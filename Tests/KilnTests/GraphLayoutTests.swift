import Foundation
import Testing
@testable import Kiln
@testable import KilnCPU
@testable import KilnGraph

/// Transposes sinking through elementwise ops, reductions and max pooling (GraphLayout.swift):
/// the graph of a transposed input computes what the same ops compute on an input fed already
/// transposed, gradients included, and the pooling reads the untransposed values.
@Suite struct GraphLayoutTests {
    /// `x` `[n, h, w, c]` permuted to `[n, c, h, w]` on the host.
    static func nchw(_ x: [Double], _ n: Int, _ h: Int, _ w: Int, _ c: Int) -> [Double] {
        var out = [Double](repeating: 0, count: x.count)
        for b in 0..<n { for y in 0..<h { for z in 0..<w { for k in 0..<c { out[((b * c + k) * h + y) * w + z] = x[((b * h + y) * w + z) * c + k] } } } }
        return out
    }

    /// Batch norm's ops, ReLU and 2 x 2 pooling of `image` `[N, C, H, W]`, and a loss.
    static func chain(_ image: Tensor, scale: Tensor) throws -> (pooled: Tensor, loss: Tensor) {
        let mean = try image.mean(axes: [0, 2, 3], keepDims: true)
        let centered = try image - mean
        let variance = try (centered * centered).mean(axes: [0, 2, 3], keepDims: true)
        let y = try (centered / (variance + 1e-5).sqrt() * scale).relu()
        let pooled = try image.graph.maxPool(y, window: try Window2D(2, stride: 2))
        return (pooled, try (pooled * pooled).sum())
    }

    @Test func sunkChainMatchesTheChainOnTransposedValues() throws {
        let (n, h, w, c) = (3, 6, 4, 5)
        var rng = SeededGenerator(seed: 11)
        let xv = rng.uniform(n * h * w * c, in: -2...2), sv = rng.uniform(c, in: 0.5...2)

        let g = Graph()
        let x = try g.placeholder("x", [n, h, w, c], .float64), scale = try g.placeholder("scale", [1, c, 1, 1], .float64)
        let sunk = try Self.chain(x.transposed([0, 3, 1, 2]), scale: scale)
        // Nothing of the input's size is transposed: the pooling is channels last, and the only
        // transpose left moves its output.
        let pool = try #require(g.nodes.first { if case .maxPool = $0.op { return true }; return false })
        guard case let .maxPool(window) = pool.op else { return }
        #expect(window.channelsLast && pool.inputs.allSatisfy { g.nodes[$0].shape == [n, h, w, c] })
        #expect(sunk.pooled.node.op == .transpose(perm: [0, 3, 1, 2]) && sunk.pooled.node.inputs == [pool.id])

        let plain = Graph()
        let xt = try plain.placeholder("x", [n, c, h, w], .float64), scale2 = try plain.placeholder("scale", [1, c, 1, 1], .float64)
        let reference = try Self.chain(xt, scale: scale2)
        #expect(!plain.nodes.contains { if case .transpose = $0.op { return true }; return false })

        let cpu = CPUReference<Double>()
        let dx = try g.gradients(of: sunk.loss, wrt: [x, scale]), dxt = try plain.gradients(of: reference.loss, wrt: [xt, scale2])
        let got = try cpu.run(g, feeds: [x: try HostTensor(xv, shape: x.shape), scale: try HostTensor(sv, shape: scale.shape)],
                              fetch: [sunk.pooled, sunk.loss] + dx)
        let want = try cpu.run(plain, feeds: [xt: try HostTensor(Self.nchw(xv, n, h, w, c), shape: xt.shape), scale2: try HostTensor(sv, shape: scale2.shape)],
                               fetch: [reference.pooled, reference.loss] + dxt)
        #expect(maxError(got[0].doubles, want[0].doubles) < 1e-12, "pooled values")
        #expect(maxError(got[1].doubles, want[1].doubles) < 1e-9, "loss")
        #expect(maxError(Self.nchw(got[2].doubles, n, h, w, c), want[2].doubles) < 1e-9, "the input's gradient")
        #expect(maxError(got[3].doubles, want[3].doubles) < 1e-9, "the scale's gradient")
    }

    @Test func transposesComposeAndCancel() throws {
        let g = Graph()
        let x = try g.placeholder("x", [2, 3, 4, 5], .float32)
        let t = try x.transposed([0, 3, 1, 2])
        #expect(try t.transposed([0, 2, 3, 1]) == x, "a transpose and its inverse are the input itself")
        let twice = try t.transposed([1, 0, 2, 3])
        #expect(twice.node.op == .transpose(perm: [3, 0, 1, 2]) && twice.node.inputs == [x.id] && twice.shape == [5, 2, 3, 4])
    }

    @Test func reductionsKeepTheTransposedOrder() throws {
        let g = Graph()
        let x = try g.placeholder("x", [2, 3, 4], .float64)
        let t = try x.transposed([2, 0, 1])   // [4, 2, 3]
        let kept = try t.sum(axes: [1], keepDims: true), dropped = try t.sum(axes: [1]), both = try t.max(axes: [0, 2])
        #expect(kept.shape == [4, 1, 3] && dropped.shape == [4, 3] && both.shape == [2])
        let xv = (0..<24).map { Double($0 * 7 % 11) }
        let got = try CPUReference<Double>().run(g, feeds: [x: try HostTensor(xv, shape: x.shape)], fetch: [kept, dropped, both])
        // t[i, j, k] = x[j, k, i].
        var sums: [Double] = []
        for i in 0..<4 { for k in 0..<3 { sums.append(xv[k * 4 + i] + xv[12 + k * 4 + i]) } }
        #expect(got[0].doubles == sums && got[1].doubles == sums)
        let largest: [Double] = [xv[0..<12].max()!, xv[12..<24].max()!]
        #expect(got[2].doubles == largest)
    }

    @Test func operandsOfOtherSizesStayPut() throws {
        // A full-size operand that is not the same transpose keeps the op where it is.
        let g = Graph()
        let x = try g.placeholder("x", [2, 3], .float32), y = try g.placeholder("y", [3, 2], .float32)
        let sum = try x.transposed() + y
        #expect(sum.node.op == .binary(.add) && sum.node.inputs[1] == y.id)
        // A small one is permuted to the input's layout: a reshape, as only axes of size 1 move.
        let scaled = try x.transposed() * g.placeholder("s", [3, 1], .float32)
        #expect(scaled.node.op == .transpose(perm: [1, 0]))
        let inner = g.nodes[scaled.node.inputs[0]]
        #expect(inner.op == .binary(.mul) && inner.inputs[0] == x.id && g.nodes[inner.inputs[1]].shape == [1, 3])
    }

    @Test func channelsLastWindowShapes() throws {
        let g = Graph()
        let w = try Window2D(kernel: [3, 2], padding: [1, 0]).channelsLast(true)
        // [N, H, W, C] -> [N, OH, OW, KH, KW, C] and back.
        let patches = try g.unfold(try g.placeholder("x", [2, 5, 4, 3], .float32), window: w)
        #expect(patches.shape == [2, 5, 3, 3, 2, 3])
        #expect(try g.fold(patches, window: w, height: 5, width: 4).shape == [2, 5, 4, 3])
        do {
            _ = try g.fold(patches, window: w.channelsLast(false), height: 5, width: 4)
            Issue.record("channels-first fold of channels-last columns")
        } catch {
            #expect("\(error)".contains("columns must be [N, 5, 3, C, 3, 2]"))
        }
        do {
            _ = try g.fold(patches, window: w, height: 6, width: 4)
            Issue.record("fold to a size the columns do not fit")
        } catch {
            #expect("\(error)".contains("columns must be [N, 6, 3, 3, 2, C]"))
        }
        // [N, H, W, C]: pooled over axes 1 and 2.
        let pooled = try g.maxPool(try g.placeholder("y", [1, 6, 4, 3], .float32), window: try Window2D(2, stride: 2).channelsLast(true))
        #expect(pooled.shape == [1, 3, 2, 3])
        #expect(throws: KilnError.self) { try g.maxPool(try g.placeholder("z", [1, 3, 2], .float32), window: w) }
        do {
            _ = try g.unfold(try g.placeholder("v", [1, 2, 5], .float32), window: w)
            Issue.record("unfold of a rank-3 input")
        } catch {
            #expect("\(error)".contains("[N, H, W, C]"))
        }
    }
}

/// Sums over leading axes of computed values (channels-last batch norm's per-channel sums) on
/// the CPU backend: blocks of rows computed in registers, 16 fixed parts of the rows, two
/// reductions sharing the pass.
@Suite struct LeadingSumsTests {
    @Test(arguments: [(4099, 32), (1031, 64), (16411, 5)])
    func sharedSumsOfComputedValues(rows: Int, width: Int) throws {
        let g = Graph()
        let x = try g.placeholder("x", [rows, width], .float32), y = try g.placeholder("y", [1, width], .float32)
        let products = try (x * y).sum(axes: [0]), differences = try (x - y).sum(axes: [0]), mean = try (x * y).mean(axes: [0])
        var rng = SeededGenerator(seed: 5)
        // Small integers: every sum is exact, so any order of additions gives the same.
        let xv = (0..<rows * width).map { _ in Float(Int(rng.next() % 7) - 3) }, yv = (0..<width).map { _ in Float(Int(rng.next() % 3) + 1) }
        let feeds = [x: try HostTensor(xv, shape: x.shape), y: try HostTensor(yv, shape: y.shape)]
        let shared = try Compiler.compile(g, fetch: [products, differences], options: CompileOptions(fusion: true, realType: .float32))
        #expect(shared.kernels.count == 1 && shared.kernels[0].outputs.count == 2, "the two sums share one pass")
        let got = try CPUExecutable<Float>(program: shared).run(feeds: feeds)
        let columns = (0..<width).map { c in (0..<rows).reduce(0.0) { $0 + Double(xv[$1 * width + c]) } }
        #expect(got[0].doubles == (0..<width).map { columns[$0] * Double(yv[$0]) })
        #expect(got[1].doubles == (0..<width).map { columns[$0] - Double(rows) * Double(yv[$0]) })
        let means = try Compiler.compile(g, fetch: [mean], options: CompileOptions(fusion: true, realType: .float32))
        let gotMean = try CPUExecutable<Float>(program: means).run(feeds: feeds)[0].doubles
        #expect(maxError(gotMean, (0..<width).map { columns[$0] * Double(yv[$0]) / Double(rows) }) < 1e-5)
    }
}
