/// The layouts a built-in model's parameters can be exported in.
public enum ParameterLayout: String, Sendable, CaseIterable {
    /// Kiln's own: names as the model has them (`fc1.weight`), Linear weights `[in, out]`.
    case kiln
    /// PyTorch's: the names of the equivalent torch.nn module and nn.Linear's `[out, in]`
    /// weights, so that `model.load_state_dict(safetensors.torch.load_file(path))` takes them.
    /// The MLP is `nn.Sequential(nn.Linear, nn.ReLU, ..., nn.Linear)` (`0.weight`, `2.weight`,
    /// ...); the word-window model has `words` (nn.Embedding), `hidden` and `out` (nn.Linear).
    case pytorch
}

extension ModelSpec {
    /// The model's parameters alone (no optimizer state) from a checkpoint's tensors, named and
    /// laid out as `layout` says. Every parameter must be present with its shape.
    public func exportParameters(_ tensors: [String: HostTensor], layout: ParameterLayout) throws -> [String: HostTensor] {
        let model = try build(batch: 1)
        var out: [String: HostTensor] = [:]
        for p in model.parameters.tensors {
            let name = p.node.label
            guard let v = tensors[name] else {
                throw KilnError.invalidValue(op: "export", message: "the checkpoint has no parameter '\(name)' \(p.shape)")
            }
            guard v.shape == p.shape else {
                throw KilnError.invalidValue(op: "export", message: "parameter '\(name)' is \(v.shape) in the checkpoint, \(p.shape) in the model")
            }
            switch layout {
            case .kiln: out[name] = v
            case .pytorch:
                let (module, field) = (name.split(separator: ".").dropLast().joined(separator: "."), String(name.split(separator: ".").last!))
                let torchModule: String
                switch kind {
                case .mlp:
                    // fc<i> is the (i-1)-th Linear: index 2(i-1) of the Sequential, between ReLUs.
                    guard module.hasPrefix("fc"), let i = Int(module.dropFirst(2)) else {
                        throw KilnError.invalidValue(op: "export", message: "unexpected MLP parameter '\(name)'")
                    }
                    torchModule = "\(2 * (i - 1))"
                case .wordWindow, .cnn: torchModule = module
                }
                switch field {
                // Linear weights are [in, out] here, [out, in] in torch; convolutions' are alike.
                case "weight" where v.shape.rank == 2: out["\(torchModule).weight"] = try v.transposed2D()
                case "table": out["\(torchModule).weight"] = v
                default: out["\(torchModule).\(field)"] = v
                }
            }
        }
        return out
    }
}

extension HostTensor {
    /// A 2-D tensor's transpose.
    public func transposed2D() throws -> HostTensor {
        guard shape.rank == 2 else {
            throw KilnError.shapeMismatch(op: "transpose", message: "needs a 2-D tensor, got \(shape)")
        }
        let (r, c) = (shape[0], shape[1])
        func t<T>(_ v: [T]) -> [T] { (0..<r * c).map { v[($0 % r) * c + $0 / r] } }
        switch storage {
        case .float32(let v): return try HostTensor(t(v), shape: [c, r])
        case .float64(let v): return try HostTensor(t(v), shape: [c, r])
        case .int32(let v): return try HostTensor(t(v), shape: [c, r])
        }
    }
}
