import Foundation
import Testing
import Kiln

@Suite struct SafeTensorsTests {
    static func sample() throws -> SafeTensorsFile {
        SafeTensorsFile(tensors: [
            "W1": try HostTensor([1.5, -2, 3.25, .pi, 0, -0.0] as [Float], shape: [2, 3]),
            "b1": try HostTensor([1e-300, -7, 2.5] as [Double], shape: [3]),
            "step": try HostTensor([42] as [Int32], shape: []),
            "ids": try HostTensor([Int32.min, -1, 0, Int32.max], shape: [2, 2]),
            "empty": try HostTensor([] as [Float], shape: [0, 4]),
        ], metadata: ["format": "pt", "note": "quote \" backslash \\ newline \n é"])
    }

    /// The bytes of a safetensors file with the given header text and data.
    static func raw(_ header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        let n = length ?? UInt64(h.count)
        return (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + h + data
    }

    @Test func roundTripF32F64I32() throws {
        let dir = try Support.temporaryDirectory()
        let path = dir + "/model.safetensors"
        let original = try Self.sample()
        try original.write(to: path)
        let back = try SafeTensorsFile.read(path: path)
        #expect(back == original)
        let bytes = try Support.read(path)
        let headerLength = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
        #expect(headerLength % 8 == 0)
        #expect(bytes.count == 8 + headerLength + 24 + 24 + 0 + 16 + 4)
        // Written atomically: nothing but the target is left in the directory.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["model.safetensors"])
        // Overwriting replaces the file whole.
        try SafeTensorsFile(tensors: ["x": try HostTensor([1] as [Float], shape: [1])]).write(to: path)
        #expect(try SafeTensorsFile.read(path: path).tensors.keys.sorted() == ["x"])
        let m = Support.message { try SafeTensorsFile(tensors: [:]).write(to: dir + "/no/such/dir/x.safetensors") }
        #expect(m.contains("cannot create temporary file"), "\(m)")
    }

    @Test func interoperatesWithPythonSafetensors() throws {
        guard (try? Support.run(["python3", "-c", "import safetensors.numpy, numpy"]).status) == 0 else {
            print("skipped: python3 with safetensors and numpy is not available (pip install safetensors numpy)")
            return
        }
        let dir = try Support.temporaryDirectory()
        let path = dir + "/kiln.safetensors"
        try Self.sample().write(to: path)
        let load = """
        import json, sys
        from safetensors.numpy import load_file
        from safetensors import safe_open
        t = load_file(sys.argv[1])
        with safe_open(sys.argv[1], "np") as f: meta = f.metadata()
        print(json.dumps({"meta": meta, "t": {k: [str(v.dtype), list(v.shape), v.ravel().tolist()] for k, v in t.items()}}, sort_keys=True))
        """
        let (status, output) = try Support.run(["python3", "-c", load, path])
        #expect(status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(output)) as? [String: Any])
        #expect(json["meta"] as? [String: String] == Self.sampleMetadata)
        let t = try #require(json["t"] as? [String: [Any]])
        #expect(t["W1"]?[0] as? String == "float32" && t["W1"]?[1] as? [Int] == [2, 3])
        #expect((t["W1"]?[2] as? [Double])?.map(Float.init) == [1.5, -2, 3.25, .pi, 0, 0])
        #expect(t["b1"]?[0] as? String == "float64" && t["b1"]?[2] as? [Double] == [1e-300, -7, 2.5])
        #expect(t["step"]?[0] as? String == "int32" && t["step"]?[1] as? [Int] == [] && t["step"]?[2] as? [Int] == [42])
        #expect(t["ids"]?[2] as? [Int] == [Int(Int32.min), -1, 0, Int(Int32.max)])
        #expect(t["empty"]?[1] as? [Int] == [0, 4])

        let save = """
        import sys, numpy as np
        from safetensors.numpy import save_file
        save_file({"a": np.arange(6, dtype=np.float32).reshape(3, 2), "z": np.array([7, -8], dtype=np.int32),
                   "d": np.array([[0.1]], dtype=np.float64)}, sys.argv[1], metadata={"epoch": "3"})
        """
        let pyPath = dir + "/python.safetensors"
        #expect(try Support.run(["python3", "-c", save, pyPath]).status == 0)
        let fromPython = try SafeTensorsFile.read(path: pyPath)
        #expect(fromPython.metadata == ["epoch": "3"])
        #expect(fromPython.tensors["a"] == (try HostTensor([0, 1, 2, 3, 4, 5] as [Float], shape: [3, 2])))
        #expect(fromPython.tensors["z"] == (try HostTensor([7, -8] as [Int32], shape: [2])))
        #expect(fromPython.tensors["d"] == (try HostTensor([0.1] as [Double], shape: [1, 1])))
    }

    static let sampleMetadata = ["format": "pt", "note": "quote \" backslash \\ newline \n é"]

    /// Each hostile file throws a message naming its problem.
    @Test(arguments: [
        ("truncated length", [1, 2, 3], "too short for the 8-byte header length"),
        ("length 2^63", raw("{}", length: 1 << 63), "header length 9223372036854775808"),
        ("length past end", raw("{}", length: 1000), "runs past the end of the file: only 2 bytes follow"),
        ("non-UTF-8", raw("{\"a\u{1}\":1}").enumerated().map { $0.offset == 11 ? 0xFF : $0.element }, "not valid UTF-8 at byte 11"),
        ("not JSON", raw("{\"a\": }"), "header (bytes 8..<15) is not valid JSON: "),
        ("array", raw("[1, 2]"), "header is a JSON array, not an object"),
        ("trailing", raw("{} x"), "is not valid JSON"),
        ("deep", raw(String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)), "is not valid JSON"),
        ("NUL", raw("{}\u{0}"), "header has a NUL byte at byte 10"),
        ("unknown dtype", raw(#"{"w": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0]), "unknown dtype \"Q7\""),
        ("F16", raw(#"{"w": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0]), "dtype F16 is not supported"),
        ("negative shape", raw(#"{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0]), "shape [-1]: -1 is not a non-negative integer"),
        ("float shape", raw(#"{"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0]), "not a non-negative integer"),
        ("integral float shape", raw(#"{"w": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0]), "shape [1.0]: 1.0 is not a non-negative integer"),
        ("boolean shape", raw(#"{"w": {"dtype": "F32", "shape": [true], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0]), "shape [true]: true is not a non-negative integer"),
        ("boolean offset", raw(#"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [false, 4]}}"#, data: [0, 0, 0, 0]), "data_offsets is not a pair of non-negative integers"),
        ("huge shape", raw(#"{"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 0], "data_offsets": [0, 0]}}"#), "has too many elements"),
        ("byte count", raw(#"{"w": {"dtype": "F64", "shape": [2], "data_offsets": [0, 8]}}"#, data: [UInt8](repeating: 0, count: 8)), "needs 16 bytes but data_offsets [0, 8] hold 8"),
        ("out of range", raw(#"{"w": {"dtype": "I32", "shape": [2], "data_offsets": [4, 12]}}"#, data: [UInt8](repeating: 0, count: 8)), "run past the data section of 8 bytes"),
        ("huge offset", raw(#"{"w": {"dtype": "I32", "shape": [1], "data_offsets": [0, 18446744073709551616]}}"#), "data_offsets is not a pair of non-negative integers"),
        ("backwards", raw(#"{"w": {"dtype": "I32", "shape": [0], "data_offsets": [4, 0]}}"#, data: [0, 0, 0, 0]), "end before they begin"),
        ("overlap", raw(#"{"a": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "I32", "shape": [1], "data_offsets": [4, 8]}}"#, data: [UInt8](repeating: 0, count: 8)), "overlaps tensor \"a\""),
        ("gap", raw(#"{"a": {"dtype": "I32", "shape": [1], "data_offsets": [4, 8]}}"#, data: [UInt8](repeating: 0, count: 8)), "gap in the data section: bytes 0..<4"),
        ("excess", raw(#"{"a": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}}"#, data: [UInt8](repeating: 0, count: 6)), "2 bytes at the end of the data section"),
        ("metadata", raw(#"{"__metadata__": {"k": 1}}"#), "value of \"k\" is a number, not a string"),
        ("metadata boolean", raw(#"{"__metadata__": {"k": true}}"#), "value of \"k\" is a boolean, not a string"),
        ("missing field", raw(#"{"w": {"dtype": "I32", "shape": [0]}}"#), "has no \"data_offsets\""),
    ] as [(String, [UInt8], String)])
    func hostileFilesThrowNamingTheProblem(name: String, bytes: [UInt8], expected: String) throws {
        let path = try Support.temporaryDirectory() + "/hostile.safetensors"
        try Support.write(bytes, to: path)
        let m = Support.message { _ = try SafeTensorsFile.read(path: path) }
        #expect(m.contains(path) && m.contains(expected), "\(name): \(m)")
    }

    @Test func truncatedRealFile() throws {
        let dir = try Support.temporaryDirectory()
        let path = dir + "/model.safetensors"
        try Self.sample().write(to: path)
        let bytes = try Support.read(path)
        for cut in [4, 8, 20, bytes.count - 3] {
            try Support.write(Array(bytes[0..<cut]), to: path)
            let m = Support.message { _ = try SafeTensorsFile.read(path: path) }
            #expect(m.contains("safetensors:") && m != "no error", "cut at \(cut): \(m)")
        }
    }
}
