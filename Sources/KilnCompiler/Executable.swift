import Foundation
import KilnGraph

/// A program loaded on a backend: buffers allocated and kernels built once, then run many
/// times. Parameters and state stay with the backend between runs.
public protocol Executable: AnyObject {
    var program: Program { get }
    /// Sets a parameter's or state tensor's value.
    func write(_ tensor: Tensor, _ value: HostTensor) throws
    /// Reads a parameter's or state tensor's current value.
    func read(_ tensor: Tensor) throws -> HostTensor
    /// Runs the schedule once with these feeds and returns the fetched tensors, in order.
    func run(feeds: [Tensor: HostTensor]) throws -> [HostTensor]
    /// What the backend has allocated, built and copied so far.
    var counters: ExecutionCounters { get }
    /// Stop at the first kernel that writes NaN or Inf, naming it (slow; for debugging).
    var checkNumerics: Bool { get set }
}

extension Executable {
    /// Writes the parameter and state values among `values` into the executable and returns
    /// the rest of its inputs' values: the feeds for `run(feeds:)`. Values of tensors that are
    /// not inputs of the program are left out.
    public func writeInputs(_ values: [Tensor: HostTensor]) throws -> [Tensor: HostTensor] {
        var feeds: [Tensor: HostTensor] = [:]
        for decl in program.buffers {
            guard let id = decl.node else { continue }
            let t = program.graph.tensor(id)
            guard let v = values[t] else { continue }
            if decl.kind == .feed { feeds[t] = v } else { try write(t, v) }
        }
        return feeds
    }
}

/// Counts kept by each backend where the work happens, so tests can prove that a step
/// allocates nothing and builds nothing after the first.
public struct ExecutionCounters: Sendable, Hashable {
    /// Buffers allocated (host memory on the CPU, device buffers on OpenCL).
    public var allocations = 0
    /// Kernels or programs built.
    public var builds = 0
    /// Host-to-device writes and their bytes.
    public var uploads = 0
    public var uploadBytes = 0
    /// Device-to-host reads and their bytes.
    public var downloads = 0
    public var downloadBytes = 0
    /// Runs completed.
    public var runs = 0

    public init() {}
}

extension Program {
    /// The buffer of a feed, parameter or state tensor, or an error naming the tensor.
    public func inputBuffer(_ t: Tensor, kinds: Set<BufferDecl.Kind>) throws -> Int {
        guard t.graph === graph else {
            throw KilnError.invalidArgument(op: "run", message: "tensor \(t) belongs to another graph")
        }
        guard let b = buffer(for: t.id), kinds.contains(buffers[b].kind) else {
            let what = kinds.contains(.feed) ? "a feed" : "a parameter or state tensor"
            throw KilnError.invalidArgument(op: "run", message: "\(t.node.label) is not \(what) of this program")
        }
        return b
    }

    /// Checks a feed's value against the node it is for: shape and dtype (a float64 value for
    /// a float32 placeholder is refused rather than rounded silently).
    public func check(_ value: HostTensor, for t: Tensor) throws {
        let node = t.node
        guard value.shape == node.shape else {
            throw KilnError.invalidValue(op: "run", message: "'\(node.label)' expects shape \(node.shape), got \(value.shape)")
        }
        guard value.dtype == node.dtype else {
            throw KilnError.invalidValue(op: "run", message: "'\(node.label)' expects \(node.dtype), got \(value.dtype)")
        }
    }

    /// The buffer a run's feed goes to: nil for a feed of the graph that this program does
    /// not read (it is ignored); an error for anything that is not a feed of the graph.
    public func feedBuffer(_ t: Tensor) throws -> Int? {
        guard t.graph === graph, t.node.op == .input(.feed) else {
            throw KilnError.invalidArgument(op: "run", message: "\(t) is not a feed (placeholder) of this program's graph")
        }
        return buffer(for: t.id)
    }

    /// Checks a run's feeds (a value of the right shape and kind for every feed the program
    /// reads; nothing that is not a feed of the graph) and returns them by buffer.
    public func feedsByBuffer(_ feeds: [Tensor: HostTensor]) throws -> [Int: HostTensor] {
        for id in feedNodes {
            let t = graph.tensor(id)
            guard let value = feeds[t] else {
                throw KilnError.invalidValue(op: "run", message: "no value given for feed '\(t.node.label)' \(t.dtype) \(t.shape)")
            }
            try check(value, for: t)
        }
        var byBuffer: [Int: HostTensor] = [:]
        for (t, value) in feeds {
            if let b = try feedBuffer(t) { byBuffer[b] = value }
        }
        return byBuffer
    }

    /// Every feed the program reads, which `run` must be given.
    public var feedNodes: [Int] { buffers.filter { $0.kind == .feed }.compactMap(\.node) }
}

extension Program {
    /// The error for a kernel that wrote a non-finite value: the kernel, the tensor, the
    /// element, the inputs, and the run.
    public func nonFinite(kernel k: Kernel, output: Int, element: Int, value: Double, run: Int) -> KilnError {
        let o = k.outputs[output]
        let inputs = k.inputs.map { "\(graph.nodes[$0.node].label) \($0.shape)" }.joined(separator: ", ")
        let ops = k.nodes.map { graph.nodes[$0].op.name }.joined(separator: ", ")
        return KilnError.invalidValue(op: k.name, message: "wrote \(value) at element \(element) of \(graph.nodes[o.node].label) \(o.shape) in run \(run) (ops: \(ops); inputs: \(inputs))")
    }
}
