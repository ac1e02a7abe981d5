import Foundation

/// The float types the CPU backend computes in: the math it needs, for Float and Double.
public protocol KilnFloat: BinaryFloatingPoint, Sendable {
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func tanh(_ x: Self) -> Self
    static func squareRoot(_ x: Self) -> Self
}

extension Float: KilnFloat {
    public static func exp(_ x: Float) -> Float { Foundation.exp(x) }
    public static func log(_ x: Float) -> Float { Foundation.log(x) }
    public static func tanh(_ x: Float) -> Float { Foundation.tanh(x) }
    public static func squareRoot(_ x: Float) -> Float { x.squareRoot() }
}

extension Double: KilnFloat {
    public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    public static func log(_ x: Double) -> Double { Foundation.log(x) }
    public static func tanh(_ x: Double) -> Double { Foundation.tanh(x) }
    public static func squareRoot(_ x: Double) -> Double { x.squareRoot() }
}
