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

/// Values that golden files give as JSON objects of any of a few kinds.
enum FixtureAttr: Decodable {
    case int(Int), bool(Bool), ints([Int])
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else { self = .ints(try c.decode([Int].self)) }
    }
    var int: Int { if case .int(let i) = self { return i }; return 0 }
    var bool: Bool { if case .bool(let b) = self { return b }; return false }
    var ints: [Int] { if case .ints(let v) = self { return v }; return [] }
}

/// One op case of Tests/Fixtures/ops.json, written by scripts/make_golden.py from PyTorch.
struct OpCase: Decodable {
    let name: String
    let op: String
    let attrs: [String: FixtureAttr]
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

    static let opCases: [OpCase] = {
        struct File: Decodable { let cases: [OpCase] }
        return (try? load("ops.json", as: File.self).cases) ?? []
    }()
}

extension OpCase {
    /// Which inputs are int32 (ids and labels).
    var intInputs: Set<Int> {
        switch op {
        case "gather": return [0]
        case "softmaxCrossEntropy", "accuracy": return [1]
        default: return []
        }
    }

    /// Builds the case's op on placeholders named in0, in1, ... in a new graph.
    func build(dtype: DType = .float64, into g: Graph = Graph(), prefix: String = "") throws -> (Graph, [Tensor], Tensor) {
        let ins = try inputs.enumerated().map { i, t in
            try g.placeholder("\(prefix)in\(i)", Shape(t.shape), intInputs.contains(i) ? .int32 : dtype)
        }
        let out: Tensor
        switch op {
        case "gather": out = try g.gather(ins[1], ids: ins[0])
        case "softmaxCrossEntropy": out = try g.softmaxCrossEntropy(logits: ins[0], labels: ins[1])
        case "accuracy": out = try g.accuracy(logits: ins[0], labels: ins[1])
        case "argmax": out = try g.argmax(ins[0], axis: attrs["axis"]!.int)
        case "matmul": out = try g.matmul(ins[0], ins[1], transposeA: attrs["transposeA"]!.bool, transposeB: attrs["transposeB"]!.bool)
        case "transpose": out = try g.transpose(ins[0], perm: attrs["perm"]!.ints)
        case "reshape": out = try g.reshape(ins[0], Shape(attrs["shape"]!.ints))
        case "broadcastTo": out = try g.broadcast(ins[0], to: Shape(attrs["shape"]!.ints))
        default:
            if let u = UnaryOp(rawValue: op) { out = try g.unary(u, ins[0]) }
            else if let b = BinaryOp(rawValue: op) { out = try g.binary(b, ins[0], ins[1]) }
            else if let r = ReduceOp(rawValue: op) {
                out = try g.reduce(r, ins[0], axes: attrs["axes"]!.ints, keepDims: attrs["keepDims"]!.bool)
            } else { throw KilnError.invalidArgument(op: op, message: "unknown op in fixture") }
        }
        return (g, ins, out)
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
