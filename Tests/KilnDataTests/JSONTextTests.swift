import Foundation
import Testing
import Kiln

/// The JSON that Kiln writes: sorted keys, null for non-finite numbers, and a model spec that
/// reads back through its Codable conformance.
@Suite struct JSONTextTests {
    @Test func sortedCompactAndFinite() throws {
        let object: [String: Any] = ["b": 1, "a": [0.5, Double.nan, -Double.infinity], "c": ["y": "x/\"y\"\n", "x": true], "d": Float.nan]
        #expect(try JSONText.string(object) == #"{"a":[0.5,null,null],"b":1,"c":{"x":true,"y":"x/\"y\"\n"},"d":null}"#)
        #expect(try JSONText.string("fragment") == #""fragment""#)
    }

    @Test(arguments: [ModelSpec.mlp(sizes: [784, 256, 10], activation: .tanh),
                      .wordWindow(vocabulary: 100, dim: 50, window: 5, hidden: 64, classes: 9)])
    func modelSpecRoundTrips(spec: ModelSpec) throws {
        #expect(try ModelSpec.from(json: spec.json) == spec)
        // Every field Codable knows is written, so a field added later cannot be left out.
        let codable = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(spec)) as? [String: Any])
        let written = try #require(try JSONSerialization.jsonObject(with: Data(spec.json.utf8)) as? [String: Any])
        #expect(written.keys.sorted() == codable.keys.sorted())
    }
}
