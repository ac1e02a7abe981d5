import COpenBLAS
import Foundation

/// The float types the CPU backend computes in: the math it needs, for Float and Double.
public protocol KilnFloat: BinaryFloatingPoint, Sendable {
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func tanh(_ x: Self) -> Self
    static func squareRoot(_ x: Self) -> Self
    /// C = op(A) · op(B) for row-major A (`lda` columns), B (`ldb` columns), C `[m, n]`,
    /// through OpenBLAS.
    static func gemm(_ ta: Bool, _ tb: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Self>, lda: Int,
                     b: UnsafePointer<Self>, ldb: Int, c: UnsafeMutablePointer<Self>)
}

private func blasTranspose(_ t: Bool) -> CBLAS_TRANSPOSE { t ? CblasTrans : CblasNoTrans }

extension Float: KilnFloat {
    public static func exp(_ x: Float) -> Float { Foundation.exp(x) }
    public static func log(_ x: Float) -> Float { Foundation.log(x) }
    public static func tanh(_ x: Float) -> Float { Foundation.tanh(x) }
    public static func squareRoot(_ x: Float) -> Float { x.squareRoot() }
    public static func gemm(_ ta: Bool, _ tb: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, blasTranspose(ta), blasTranspose(tb), blasint(m), blasint(n), blasint(k), 1,
                    a, blasint(max(lda, 1)), b, blasint(max(ldb, 1)), 0, c, blasint(max(n, 1)))
    }
}

extension Double: KilnFloat {
    public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    public static func log(_ x: Double) -> Double { Foundation.log(x) }
    public static func tanh(_ x: Double) -> Double { Foundation.tanh(x) }
    public static func squareRoot(_ x: Double) -> Double { x.squareRoot() }
    public static func gemm(_ ta: Bool, _ tb: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int,
                            b: UnsafePointer<Double>, ldb: Int, c: UnsafeMutablePointer<Double>) {
        cblas_dgemm(CblasRowMajor, blasTranspose(ta), blasTranspose(tb), blasint(m), blasint(n), blasint(k), 1,
                    a, blasint(max(lda, 1)), b, blasint(max(ldb, 1)), 0, c, blasint(max(n, 1)))
    }
}
