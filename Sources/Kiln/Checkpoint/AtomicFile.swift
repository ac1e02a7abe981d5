#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file so that readers see either the old contents or the complete new ones, even
/// across a crash: the bytes go to a temporary file in the same directory (so the rename stays
/// within one file system), are flushed to disk with fsync, and the temporary file is renamed
/// over the target; the directory is then synced so the rename itself is durable.
final class AtomicFileWriter {
    let path: String
    let temporaryPath: String
    private var descriptor: Int32
    /// Whether the temporary file is still there (not yet renamed or removed).
    private var temporaryExists = true

    /// Runs `body` with a writer for `path`, then commits; on any error the temporary file is
    /// removed and the target left as it was.
    static func withFile(replacing path: String, _ body: (AtomicFileWriter) throws -> Void) throws {
        let writer = try AtomicFileWriter(path: path)
        do {
            try body(writer)
            try writer.commit()
        } catch {
            writer.abandon()
            throw error
        }
    }

    private init(path: String) throws {
        self.path = path
        let (directory, name) = Self.split(path)
        guard !name.isEmpty else { throw KilnError.file(path: path, message: "not a file name") }
        temporaryPath = "\(directory)/.\(name).tmp-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw KilnError.file(path: path, message: "cannot create temporary file \(temporaryPath): \(systemErrorMessage())")
        }
    }

    deinit { abandon() }

    /// The directory (without trailing slash; "." when none) and the last component of `path`.
    static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = write(descriptor, bytes.baseAddress.map { $0 + done }, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw KilnError.file(path: path, message: "write to \(temporaryPath) failed: \(systemErrorMessage())") }
            done += n
        }
    }

    func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try append($0) }
    }

    private func commit() throws {
        guard fsync(descriptor) == 0 else { throw KilnError.file(path: path, message: "fsync of \(temporaryPath) failed: \(systemErrorMessage())") }
        let closed = close(descriptor)
        descriptor = -1
        guard closed == 0 else { throw KilnError.file(path: path, message: "close of \(temporaryPath) failed: \(systemErrorMessage())") }
        guard rename(temporaryPath, path) == 0 else {
            throw KilnError.file(path: path, message: "rename from \(temporaryPath) failed: \(systemErrorMessage())")
        }
        temporaryExists = false
        // Best effort: some file systems cannot sync a directory, and the data is already safe.
        let directory = open(Self.split(path).directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }

    /// Closes and removes the temporary file, unless it has become the target.
    private func abandon() {
        if descriptor >= 0 {
            close(descriptor)
            descriptor = -1
        }
        if temporaryExists {
            unlink(temporaryPath)
            temporaryExists = false
        }
    }
}
