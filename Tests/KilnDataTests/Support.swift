import Foundation
import Kiln

/// Helpers shared by the data tests: temporary directories, external commands, error messages.
enum Support {
    /// The sample NER corpus shipped in `data/ner-sample`.
    static let nerFixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("data").appendingPathComponent("ner-sample").path

    /// One directory per test process holding every test's temporary files; removed at exit.
    static let temporaryRoot: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-data-tests-\(UUID().uuidString)").path
        atexit { try? FileManager.default.removeItem(atPath: Support.temporaryRoot) }
        return path
    }()

    /// A fresh empty directory under `temporaryRoot`.
    static func temporaryDirectory() throws -> String {
        let path = temporaryRoot + "/" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func read(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// The message of the error `body` throws, or "no error".
    static func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    /// Runs `arguments` (looked up on PATH) with `input` on stdin; returns exit status and stdout.
    static func run(_ arguments: [String], input: [UInt8] = []) throws -> (status: Int32, output: [UInt8]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Feed stdin from another thread so a large input cannot deadlock against a full stdout pipe.
        let writer = Thread {
            stdin.fileHandleForWriting.write(Data(input))
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, [UInt8](output))
    }

    /// `bytes` compressed by the `gzip` command.
    static func gzip(_ bytes: [UInt8], level: Int = 6) throws -> [UInt8] {
        let (status, output) = try run(["gzip", "-c", "-n", "-\(level)"], input: bytes)
        guard status == 0 else { throw KilnError.file(path: "gzip", message: "exit status \(status)") }
        return output
    }
}

func fileExistsAt(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

extension Support {
    static func remove(_ path: String) throws { try FileManager.default.removeItem(atPath: path) }
}
