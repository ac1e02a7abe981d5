/// Reads `KILN_*` variables from an environment for the layers' settings types
/// (`CompilerSettings`, `CPUSettings`, `OpenCLOptions`, `MPISettings`), each of which reads its
/// own variables in one place. An unset or empty variable gives nil (the setting's default); a
/// value the variable cannot take is a `KilnError` naming the variable and the value.
public struct SettingsReader {
    public let environment: [String: String]

    public init(_ environment: [String: String]) {
        self.environment = environment
    }

    /// The variable's text; nil when unset or empty.
    public func string(_ name: String) -> String? {
        guard let value = environment[name], !value.isEmpty else { return nil }
        return value
    }

    /// A switch: `1` on, `0` off.
    public func flag(_ name: String) throws -> Bool? {
        guard let value = string(name) else { return nil }
        switch value {
        case "1": return true
        case "0": return false
        default: throw invalid(name, value, "is not 0 or 1")
        }
    }

    /// A whole number of at least `minimum`.
    public func integer(_ name: String, minimum: Int = 1) throws -> Int? {
        guard let value = string(name) else { return nil }
        guard let n = Int(value), n >= minimum else { throw invalid(name, value, "is not a whole number of at least \(minimum)") }
        return n
    }

    /// The error for a value the variable cannot take.
    public func invalid(_ name: String, _ value: String, _ why: String) -> KilnError {
        KilnError.invalidArgument(op: name, message: "'\(value)' \(why)")
    }
}
