/// The worked example of the backprop lecture: f(x, y, z) = (x + y) · max(y, z).
///
/// At x = 1, y = 2, z = 0: f = 6, ∂f/∂x = max(y, z) = 2, ∂f/∂y = max(y, z) + (x + y) = 5 (y is used
/// twice, so its two gradients are summed), ∂f/∂z = 0 (max routes the gradient to y).
public struct LectureExample {
    public let graph: Graph
    public let x, y, z: Tensor
    public let f: Tensor

    public init(dtype: DType = .float64) throws {
        graph = Graph()
        x = try graph.placeholder("x", .scalar, dtype)
        y = try graph.placeholder("y", .scalar, dtype)
        z = try graph.placeholder("z", .scalar, dtype)
        f = try (x + y) * y.maximum(z)
    }

    /// Feeds for the three scalars.
    public func values(x: Double = 1, y: Double = 2, z: Double = 0) throws -> [Tensor: HostTensor] {
        [self.x: try HostTensor([x], shape: .scalar),
         self.y: try HostTensor([y], shape: .scalar),
         self.z: try HostTensor([z], shape: .scalar)]
    }
}
