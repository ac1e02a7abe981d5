/// Everything a user, a file or a device can cause is reported as a `KilnError` whose message
/// names what was wrong.
public enum KilnError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An op was given inputs whose shapes or dtypes it cannot take.
    case shapeMismatch(op: String, message: String)
    /// An argument is out of its valid range (an axis, a permutation, a count).
    case invalidArgument(op: String, message: String)
    /// A value met at run time is invalid (a label or id out of range, a bad feed).
    case invalidValue(op: String, message: String)
    /// Autodiff was asked for something it cannot give.
    case notDifferentiable(String)
    /// A file could not be read or is malformed.
    case file(path: String, message: String)
    /// A device or backend failure (the call and its error name).
    case device(String)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, message): return "\(op): \(message)"
        case let .invalidArgument(op, message): return "\(op): \(message)"
        case let .invalidValue(op, message): return "\(op): \(message)"
        case let .notDifferentiable(message): return message
        case let .file(path, message): return "\(path): \(message)"
        case let .device(message): return message
        }
    }
}
