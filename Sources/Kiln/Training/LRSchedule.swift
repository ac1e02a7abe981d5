import Foundation

/// The learning rate as a function of the step: fed to the compiled step every time, so a
/// schedule costs nothing.
public enum LRSchedule: Sendable, Hashable {
    case constant
    /// Multiplies by `gamma` every `every` steps.
    case step(every: Int, gamma: Double)
    /// Linear warm-up over `warmup` steps, then a cosine decay to 0 at `total` steps.
    case cosine(warmup: Int, total: Int)

    /// The rate at `step` (counting from 0) for a base rate.
    public func rate(base: Double, step: Int) -> Double {
        switch self {
        case .constant: return base
        case let .step(every, gamma): return base * pow(gamma, Double(step / max(every, 1)))
        case let .cosine(warmup, total):
            if step < warmup { return base * Double(step + 1) / Double(warmup) }
            let progress = Double(step - warmup) / Double(max(total - warmup, 1))
            return base * 0.5 * (1 + cos(Double.pi * min(progress, 1)))
        }
    }
}
