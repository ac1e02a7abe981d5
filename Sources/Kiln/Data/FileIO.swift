#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The text of the C library's message for `errno`.
func systemErrorMessage(_ code: Int32 = errno) -> String {
    guard let c = strerror(code) else { return "error \(code)" }
    return String(cString: c)
}

/// An open file descriptor that closes itself; reading goes through the C library so that the
/// size is known (from `fstat`) before anything is allocated, and every failure names the path.
final class ReadableFile {
    let path: String
    let descriptor: Int32
    /// The size `fstat` reports when the file was opened.
    let size: Int

    init(path: String) throws {
        self.path = path
        // O_NONBLOCK so that a FIFO path fails the regular-file check instead of blocking here.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw KilnError.file(path: path, message: "cannot open: \(systemErrorMessage())") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let message = systemErrorMessage()
            close(fd)
            throw KilnError.file(path: path, message: "cannot stat: \(message)")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw KilnError.file(path: path, message: "not a regular file")
        }
        descriptor = fd
        size = Int(info.st_size)
    }

    deinit { close(descriptor) }

    /// Reads at most `buffer.count` bytes into `buffer`; returns how many, 0 at end of file.
    func readSome(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = read(descriptor, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw KilnError.file(path: path, message: "read failed: \(systemErrorMessage())")
        }
    }

    /// Fills `buffer` from byte `offset` of the file; throws if the file ends first.
    func readExactly(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, buffer.baseAddress.map { $0 + done }, buffer.count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw KilnError.file(path: path, message: "read failed at byte \(offset + done): \(systemErrorMessage())") }
            guard n > 0 else {
                throw KilnError.file(path: path, message: "file ends at byte \(offset + done), \(buffer.count - done) bytes short of byte \(offset + buffer.count)")
            }
            done += n
        }
    }

    /// The whole file. Allocates only the size `fstat` reported, and checks that the file did not
    /// change size while it was read.
    func readAll() throws -> [UInt8] {
        let expected = size
        var filled = 0
        let bytes = try [UInt8](unsafeUninitializedCapacity: expected) { buffer, initialized in
            while filled < expected {
                let n = try readSome(into: UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[filled...]))
                if n == 0 { break }
                filled += n
            }
            initialized = filled
        }
        guard filled == expected else {
            throw KilnError.file(path: path, message: "file shrank while being read: \(filled) of \(expected) bytes at end of file")
        }
        var probe: UInt8 = 0
        guard try withUnsafeMutableBytes(of: &probe, { try readSome(into: $0) }) == 0 else {
            throw KilnError.file(path: path, message: "file grew while being read past its size of \(expected) bytes")
        }
        return bytes
    }
}

/// Whether something exists at `path`.
func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

/// The bytes of the file at `path`.
func readFileBytes(_ path: String) throws -> [UInt8] {
    try ReadableFile(path: path).readAll()
}

/// Reads a text file line by line in fixed-size chunks, so that a multi-gigabyte file (a GloVe
/// table) is never held in memory at once. Lines end at `\n`; a trailing `\r` is dropped.
/// Each line must be valid UTF-8 and at most `maxLineBytes` long; both are checked here so that
/// every reader reports them the same way, with the line number.
final class LineReader {
    private let file: ReadableFile
    private let maxLineBytes: Int
    private var chunk: [UInt8]
    private var chunkStart = 0
    private var chunkEnd = 0
    private var atEnd = false
    /// The 1-based number of the line last returned.
    private(set) var lineNumber = 0

    var path: String { file.path }

    init(path: String, maxLineBytes: Int = 1 << 20, chunkSize: Int = 1 << 16) throws {
        file = try ReadableFile(path: path)
        self.maxLineBytes = maxLineBytes
        chunk = [UInt8](repeating: 0, count: chunkSize)
    }

    /// The next line without its terminator, or nil at the end of the file.
    func nextLine() throws -> String? {
        var pending: [UInt8] = []
        while true {
            if chunkStart < chunkEnd {
                let newline = chunk[chunkStart..<chunkEnd].firstIndex(of: UInt8(ascii: "\n"))
                let stop = newline ?? chunkEnd
                guard pending.count + (stop - chunkStart) <= maxLineBytes else {
                    throw KilnError.file(path: path, message: "line \(lineNumber + 1) is longer than \(maxLineBytes) bytes")
                }
                pending.append(contentsOf: chunk[chunkStart..<stop])
                chunkStart = stop
                if newline != nil {
                    chunkStart += 1
                    return try finish(pending)
                }
            }
            if atEnd { return pending.isEmpty ? nil : try finish(pending) }
            let n = try chunk.withUnsafeMutableBytes { try file.readSome(into: $0) }
            chunkStart = 0
            chunkEnd = n
            atEnd = n == 0
        }
    }

    private func finish(_ bytes: [UInt8]) throws -> String {
        lineNumber += 1
        let body = bytes.last == UInt8(ascii: "\r") ? bytes.dropLast() : bytes[...]
        guard let line = String(validating: body, as: UTF8.self) else {
            throw KilnError.file(path: path, message: "line \(lineNumber) is not valid UTF-8")
        }
        return line
    }
}
