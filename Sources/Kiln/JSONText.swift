import Foundation

/// The one way Kiln writes JSON (checkpoint headers, metrics and step logs, `--json` output):
/// Foundation's JSONSerialization, compact, keys sorted so that the same values always give
/// the same text.
public enum JSONText {
    /// `value` (String-keyed dictionaries, arrays, strings, numbers, Bool, NSNull) as compact
    /// JSON. JSON has no NaN or infinity, so non-finite numbers are written as null.
    public static func string(_ value: Any) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: finite(value),
                                              options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        return String(decoding: data, as: UTF8.self)
    }

    private static func finite(_ value: Any) -> Any {
        switch value {
        case let d as Double where !d.isFinite: return NSNull()
        case let f as Float where !f.isFinite: return NSNull()
        case let array as [Any]: return array.map(finite)
        case let object as [String: Any]: return object.mapValues(finite)
        default: return value
        }
    }
}
