import Foundation
/// The OpenCL C sources under Kernels/, embedded into the binary at build time so that Kiln
/// needs no files beside it.
public enum KernelSources {
    /// The source without its `//` comment lines: templates describe their placeholders in
    /// comments, which instantiation must not touch.
    static func text(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }.joined(separator: "\n")
    }

    /// The `real` type and extensions.
    public static let prelude = text(PackageResources.prelude_cl)
    /// Elementwise functions and `fill`.
    public static let elementwise = text(PackageResources.elementwise_cl)
    /// The local-memory tiled matmul template (GPUs).
    public static let matmul = text(PackageResources.matmul_cl)
    /// The wide-vector register-blocked matmul template (CPU OpenCL devices).
    public static let matmulVector = text(PackageResources.matmul_vector_cl)
    /// The work-group tree reduction template.
    public static let reduce = text(PackageResources.reduce_cl)
    /// The column reduction template: leading axes, a work-item per output.
    public static let reduceColumns = text(PackageResources.reduce_columns_cl)
    /// Softmax cross-entropy, its gradient, and accuracy.
    public static let softmaxCrossEntropy = text(PackageResources.softmax_xent_cl)
    /// Softmax and log-softmax along an axis, and their gradients.
    public static let softmax = text(PackageResources.softmax_cl)
    /// Layer norm and RMS norm over the last axis, and their gradients.
    public static let normalize = text(PackageResources.normalize_cl)
    /// Embedding gather and scatter-add (plain, and over ids grouped on the host).
    public static let embedding = text(PackageResources.embedding_cl)
    /// The index of the largest value along an axis.
    public static let argmax = text(PackageResources.argmax_cl)

    /// Every kernel file, by file name: each new file under Kernels/ needs its line here.
    public static let all: [String: String] = [
        "prelude.cl": prelude, "elementwise.cl": elementwise, "matmul.cl": matmul, "matmul_vector.cl": matmulVector,
        "reduce.cl": reduce, "reduce_columns.cl": reduceColumns, "softmax_xent.cl": softmaxCrossEntropy, "softmax.cl": softmax, "normalize.cl": normalize,
        "embedding.cl": embedding, "argmax.cl": argmax,
    ]
}
