/// A tensor's value in host memory: what is fed into a run and what a run returns.
public struct HostTensor: Sendable, Equatable, CustomStringConvertible {
    /// The elements, row-major.
    public enum Storage: Sendable, Equatable {
        case float32([Float])
        case float64([Double])
        case int32([Int32])
    }

    public let shape: Shape
    public let storage: Storage

    /// A tensor from row-major elements; throws when their count does not fit the shape.
    public init(shape: Shape, storage: Storage) throws {
        let count: Int
        switch storage {
        case .float32(let v): count = v.count
        case .float64(let v): count = v.count
        case .int32(let v): count = v.count
        }
        guard count == shape.count else {
            throw KilnError.invalidArgument(op: "HostTensor", message: "\(count) elements do not fill shape \(shape) (\(shape.count) elements)")
        }
        self.shape = shape
        self.storage = storage
    }

    /// For backends, whose element counts are right by construction.
    package init(unchecked shape: Shape, _ storage: Storage) {
        self.shape = shape
        self.storage = storage
    }

    public init(_ values: [Float], shape: Shape) throws { try self.init(shape: shape, storage: .float32(values)) }
    public init(_ values: [Double], shape: Shape) throws { try self.init(shape: shape, storage: .float64(values)) }
    public init(_ values: [Int32], shape: Shape) throws { try self.init(shape: shape, storage: .int32(values)) }
    /// A float32 scalar.
    public init(scalar: Float) { self.shape = .scalar; self.storage = .float32([scalar]) }

    public var dtype: DType {
        switch storage {
        case .float32: return .float32
        case .float64: return .float64
        case .int32: return .int32
        }
    }

    /// The elements as Double, whatever the storage.
    public var doubles: [Double] {
        switch storage {
        case .float32(let v): return v.map(Double.init)
        case .float64(let v): return v
        case .int32(let v): return v.map(Double.init)
        }
    }

    /// The elements as Float, whatever the storage.
    public var floats: [Float] {
        switch storage {
        case .float32(let v): return v
        case .float64(let v): return v.map(Float.init)
        case .int32(let v): return v.map(Float.init)
        }
    }

    /// The first element as Double: the value of a scalar.
    public var scalarValue: Double { doubles.first ?? .nan }

    public var description: String { "\(dtype) \(shape)" }
}

extension HostTensor {
    /// Zeros of a shape and dtype.
    public static func zeros(_ shape: Shape, _ dtype: DType) throws -> HostTensor {
        switch dtype {
        case .float32: return try HostTensor([Float](repeating: 0, count: shape.count), shape: shape)
        case .float64: return try HostTensor([Double](repeating: 0, count: shape.count), shape: shape)
        case .int32: return try HostTensor([Int32](repeating: 0, count: shape.count), shape: shape)
        }
    }

    /// The same values in another float type (an int32 tensor only as itself).
    public func converted(to dtype: DType) throws -> HostTensor {
        if dtype == self.dtype { return self }
        switch dtype {
        case .float32 where self.dtype.isFloatingPoint: return try HostTensor(floats, shape: shape)
        case .float64 where self.dtype.isFloatingPoint: return try HostTensor(doubles, shape: shape)
        default: throw KilnError.invalidValue(op: "convert", message: "cannot convert \(self.dtype) \(shape) to \(dtype)")
        }
    }
}
