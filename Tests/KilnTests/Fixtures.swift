import Foundation
import Kiln

/// A tensor as the golden files store it: shape and row-major data.
struct FixtureTensor: Decodable {
    let shape: [Int]
    let data: [Double]

    func host(_ dtype: DType) throws -> HostTensor {
        switch dtype {
        case .int32: return try HostTensor(data.map { Int32($0) }, shape: Shape(shape))
        case .float32: return try HostTensor(data.map { Float($0) }, shape: Shape(shape))
        case .float64: return try HostTensor(data, shape: Shape(shape))
        }
    }
}

/// One op case of Tests/Fixtures/ops.json, written by scripts/make_golden.py from PyTorch.
struct GoldenCase: Decodable {
    let name: String
    let op: String
    let attrs: [String: OpAttribute]
    let inputs: [FixtureTensor]
    let output: FixtureTensor
    let upstream: FixtureTensor?
    let grads: [FixtureTensor?]
}

struct ModelFixture: Decodable {
    let x: FixtureTensor?
    let ids: FixtureTensor?
    let labels: FixtureTensor
    let params: [String: FixtureTensor]
    let logits: FixtureTensor
    let loss: FixtureTensor
    let grads: [String: FixtureTensor]
}

enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func load<T: Decodable>(_ name: String, as: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static let opCases: [GoldenCase] = {
        struct File: Decodable { let cases: [GoldenCase] }
        return (try? load("ops.json", as: File.self).cases) ?? []
    }()
}

extension GoldenCase {
    /// The op in the catalogue (nil for a name it does not know).
    var kind: OpKind? { OpKind(rawValue: op) }
    /// Which inputs are int32 (ids and labels).
    var intInputs: Set<Int> { kind?.intInputs ?? [] }

    /// Builds the case's op on placeholders named in0, in1, ... in a new graph.
    func build(dtype: DType = .float64, into g: Graph = Graph(), prefix: String = "") throws -> (Graph, [Tensor], Tensor) {
        guard let kind else { throw KilnError.invalidArgument(op: op, message: "unknown op in fixture \(name)") }
        let ins = try inputs.enumerated().map { i, t in
            try g.placeholder("\(prefix)in\(i)", Shape(t.shape), intInputs.contains(i) ? .int32 : dtype)
        }
        return (g, ins, try kind.make(g, ins, attrs, dtype: dtype))
    }

    func feeds(_ ins: [Tensor], dtype: DType = .float64) throws -> [Tensor: HostTensor] {
        var feeds: [Tensor: HostTensor] = [:]
        for (i, t) in ins.enumerated() { feeds[t] = try inputs[i].host(intInputs.contains(i) ? .int32 : dtype) }
        return feeds
    }
}

/// Asserts-free comparison used by tests: the largest |a - b| / max(1, |b|).
func maxError(_ a: [Double], _ b: [Double]) -> Double {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
}

/// The message of the error `body` throws, or "no error".
func thrownMessage(_ body: () throws -> Void) -> String {
    do { try body() } catch { return "\(error)" }
    return "no error"
}
