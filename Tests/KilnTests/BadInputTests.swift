import Testing
import Kiln

/// Bad input throws, and the message names the problem.
@Suite struct BadInputTests {
    func message(_ body: () throws -> Void) -> String { thrownMessage(body) }

    @Test func mismatchedShapesNameOpAndShapes() throws {
        let g = Graph()
        let a = try g.placeholder("a", [2, 3]), b = try g.placeholder("b", [4, 3])
        let m1 = message { _ = try a + b }
        #expect(m1.contains("add") && m1.contains("[2, 3]") && m1.contains("[4, 3]"), "\(m1)")
        let m2 = message { _ = try a.matmul(b) }
        #expect(m2.contains("matmul") && m2.contains("[2, 3]") && m2.contains("[4, 3]"), "\(m2)")
        let m3 = message { _ = try a.reshaped([5]) }
        #expect(m3.contains("reshape") && m3.contains("[2, 3]") && m3.contains("[5]"), "\(m3)")
        let m4 = message { _ = try a.sum(axes: [2]) }
        #expect(m4.contains("sum") && m4.contains("axis 2"), "\(m4)")
        let m5 = message { _ = try a.transposed([0, 0]) }
        #expect(m5.contains("transpose") && m5.contains("[0, 0]"), "\(m5)")
        let m6 = message { _ = try a.broadcast(to: [3, 3]) }
        #expect(m6.contains("broadcastTo") && m6.contains("[2, 3]") && m6.contains("[3, 3]"), "\(m6)")
        let ids = try g.placeholder("ids", [2, 3], .int32)
        let m7 = message { _ = try ids.exp() }
        #expect(m7.contains("exp") && m7.contains("int32"), "\(m7)")
        let m8 = message { _ = try g.softmaxCrossEntropy(logits: a, labels: ids) }
        #expect(m8.contains("softmaxCrossEntropy") && m8.contains("[2, 3]"), "\(m8)")
    }

    @Test func labelOutOfRange() throws {
        let g = Graph()
        let logits = try g.placeholder("logits", [2, 3], .float64)
        let labels = try g.placeholder("labels", [2], .int32)
        let loss = try g.softmaxCrossEntropy(logits: logits, labels: labels)
        let feeds: [Tensor: HostTensor] = [logits: try HostTensor([Double](repeating: 0, count: 6), shape: [2, 3]),
                                           labels: try HostTensor([1, 3] as [Int32], shape: [2])]
        let m = message { _ = try CPUReference<Double>().run(g, feeds: feeds, fetch: [loss]) }
        #expect(m.contains("label 3") && m.contains("row 1") && m.contains("[0, 3)"), "\(m)")
    }

    @Test func idOutOfRange() throws {
        let g = Graph()
        let table = try g.placeholder("E", [4, 2], .float64)
        let ids = try g.placeholder("ids", [1, 3], .int32)
        let out = try g.gather(table, ids: ids)
        let feeds: [Tensor: HostTensor] = [table: try HostTensor([Double](repeating: 1, count: 8), shape: [4, 2]),
                                           ids: try HostTensor([0, -1, 2] as [Int32], shape: [1, 3])]
        let m = message { _ = try CPUReference<Double>().run(g, feeds: feeds, fetch: [out]) }
        #expect(m.contains("gather") && m.contains("id -1") && m.contains("[0, 4)"), "\(m)")
    }

    /// oneHot: bad arguments name op and shapes when the node is made; a label outside
    /// [0, classes) that is not the ignore index names op, label, position and range on both
    /// devices (the CPU when it runs, OpenCL on the host before upload), and the ignore index
    /// itself is allowed.
    @Test func oneHotLabels() throws {
        let g = Graph()
        let labels = try g.placeholder("labels", [2, 3], .int32)
        let floats = try g.placeholder("floats", [2, 3])
        let m1 = message { _ = try g.oneHot(floats, classes: 4) }
        #expect(m1.contains("oneHot") && m1.contains("int32") && m1.contains("[2, 3]"), "\(m1)")
        let m2 = message { _ = try g.oneHot(labels, classes: 0) }
        #expect(m2.contains("oneHot") && m2.contains("classes") && m2.contains("[2, 3]"), "\(m2)")
        let m3 = message { _ = try labels.oneHot(classes: 4, dtype: .int32) }
        #expect(m3.contains("oneHot") && m3.contains("int32") && m3.contains("[2, 3]"), "\(m3)")

        let hot = try labels.oneHot(classes: 4, ignoreIndex: -100)
        let good = try HostTensor([3, -100, 0, 1, 2, -100] as [Int32], shape: [2, 3])
        let bad = try HostTensor([3, -100, 0, 1, 4, -100] as [Int32], shape: [2, 3])
        var devices: [(String, Executable)] = []
        for realType in [DType.float32, .float64] {
            let program = try Compiler.compile(g, fetch: [hot], options: CompileOptions(realType: realType))
            devices.append(("cpu \(realType)", realType == .float64 ? try CPUExecutable<Double>(program: program) : try CPUExecutable<Float>(program: program)))
            if let ctx = OpenCLSupport.context { devices.append(("opencl \(realType)", try OpenCLExecutable(program: program, context: ctx))) }
        }
        for (device, exe) in devices {
            let out = try exe.run(feeds: [labels: good])[0].doubles
            #expect(out == [0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0], "\(device): \(out)")
            let m = message { _ = try exe.run(feeds: [labels: bad]) }
            #expect(m.contains("oneHot") && m.contains("label 4") && m.contains("position 4") && m.contains("[0, 4)")
                    && m.contains("-100"), "\(device): \(m)")
        }
    }

    @Test func emptyBatch() throws {
        let g = Graph()
        let logits = try g.placeholder("logits", [0, 3])
        let labels = try g.placeholder("labels", [0], .int32)
        let m = message { _ = try g.softmaxCrossEntropy(logits: logits, labels: labels) }
        #expect(m.contains("empty batch"), "\(m)")
    }

    @Test func nonScalarLoss() throws {
        let g = Graph()
        let x = try g.parameter("x", [3, 2])
        let y = try x.exp()
        let m = message { _ = try g.gradients(of: y, wrt: [x]) }
        #expect(m.contains("scalar") && m.contains("[3, 2]"), "\(m)")
    }

    @Test func nonDifferentiableOps() throws {
        let g = Graph()
        let x = try g.parameter("x", [3, 2])
        let labels = try g.placeholder("labels", [3], .int32)
        let acc = try g.accuracy(logits: x, labels: labels)
        let m = message { _ = try g.gradients(of: acc, wrt: [x]) }
        #expect(m.contains("accuracy") && m.contains("no gradient"), "\(m)")
    }

    @Test func badFeeds() throws {
        let g = Graph()
        let x = try g.placeholder("x", [2, 2])
        let y = try x.exp()
        let cpu = CPUReference<Float>()
        let m1 = message { _ = try cpu.run(g, feeds: [:], fetch: [y]) }
        #expect(m1.contains("no value") && m1.contains("'x'"), "\(m1)")
        let m2 = message { _ = try cpu.run(g, feeds: [x: try HostTensor([Float](repeating: 0, count: 3), shape: [3])], fetch: [y]) }
        #expect(m2.contains("'x'") && m2.contains("[2, 2]") && m2.contains("[3]"), "\(m2)")
        let m3 = message { _ = try cpu.run(g, feeds: [x: try HostTensor([Int32](repeating: 0, count: 4), shape: [2, 2])], fetch: [y]) }
        #expect(m3.contains("'x'") && m3.contains("int32"), "\(m3)")
        let m4 = message { _ = try HostTensor([Float](repeating: 0, count: 3), shape: [2, 2]) }
        #expect(m4.contains("3 elements") && m4.contains("[2, 2]"), "\(m4)")
    }
}
