/// The element type of a tensor.
public enum DType: String, Sendable, Hashable, CustomStringConvertible {
    case float32
    case float64
    /// Token ids and class labels.
    case int32

    /// Whether values of this type can carry gradients.
    public var isFloatingPoint: Bool { self != .int32 }

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float32, .int32: return 4
        case .float64: return 8
        }
    }

    public var description: String { rawValue }
}
