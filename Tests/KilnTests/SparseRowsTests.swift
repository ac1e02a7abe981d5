import Testing
@testable import KilnCPU
import Kiln

/// The CPU backend's embedding gradient as touched rows: found where an update alone reads a
/// scatterAdd, and bitwise equal to the dense gradient it replaces.
@Suite struct SparseRowsTests {
    @Test(arguments: [Optimizer(.momentum(0.9)), .adam()])
    func touchedRowsMatchTheDenseGradient(optimizer: Optimizer) throws {
        let m = try ClassifierGraph.wordWindow(batch: 16, vocabulary: 40, dim: 6, hidden: 7, classes: 5)
        let feeds = try stepGraph(m, optimizer)
        let program = try Compiler.compile(m.graph, fetch: [m.loss], options: CompileOptions(realType: .float32))
        #expect(SparseRows<Float>.candidates(in: program).count == 1, "the table's update should read its gradient as rows")
        // Ids with repeats (16 windows of 5 over 40 rows) and most rows untouched.
        let sparse = try StepTests.train(m, feeds, CPUExecutable<Float>(program: program, sparseRows: true), steps: 4)
        let dense = try StepTests.train(m, feeds, CPUExecutable<Float>(program: program, sparseRows: false), steps: 4)
        #expect(sparse.0 == dense.0, "losses differ by up to \(maxError(sparse.0, dense.0))")
        #expect(sparse.1.keys.sorted() == dense.1.keys.sorted())
        for (name, v) in dense.1 { #expect(sparse.1[name] == v, "\(name) differs by up to \(maxError(sparse.1[name] ?? [], v))") }
    }

    @Test func rowsLoadAsTheDenseTensor() throws {
        let rows = SparseRows<Float>(rows: 7, dim: 3, positions: 4)
        let ids: [Int32] = [5, 1, 5, 6]
        let values: [Float] = (0..<12).map { Float($0) }
        try rows.scatter(ids: ids, count: 4, from: values, op: "test")
        var dense = [Float](repeating: 0, count: 21)
        for (p, id) in ids.enumerated() { for d in 0..<3 { dense[Int(id) * 3 + d] += values[p * 3 + d] } }
        for (start, n) in [(0, 21), (2, 5), (16, 5), (4, 1)] {
            var out = [Float](repeating: -1, count: n)
            out.withUnsafeMutableBufferPointer { rows.load(start: start, n: n, into: $0.baseAddress!) }
            #expect(out == Array(dense[start..<start + n]), "elements \(start)..<\(start + n)")
        }
        #expect(throws: KilnError.self) { try rows.scatter(ids: [7], count: 1, from: values, op: "test") }
    }
}
