import Foundation

/// A text for a character-level language model: its characters (Unicode scalars) as ids in a
/// vocabulary of the distinct ones, sorted, split into training and held-out parts.
public struct TextCorpus: Sendable {
    /// The distinct characters, sorted by code point: id i is `characters[i]`.
    public let characters: [Unicode.Scalar]
    public let train: [Int32]
    public let validation: [Int32]
    /// Where the text came from, for messages.
    public let source: String

    /// The license texts every Debian and Ubuntu system ships (package base-files).
    public static let defaultDirectory = "/usr/share/common-licenses"

    /// Reads `path` (a UTF-8 text file, or a directory whose regular files are concatenated in
    /// name order, symbolic links skipped as duplicates), and splits it: the first
    /// `trainFraction` for training, the rest held out.
    public static func load(path: String = defaultDirectory, trainFraction: Double = 0.9, vocabulary: [Unicode.Scalar]? = nil) throws -> TextCorpus {
        let text = try read(path)
        return try TextCorpus(text: text, source: path, trainFraction: trainFraction, vocabulary: vocabulary)
    }

    /// Splits `text`. With `vocabulary` (a checkpoint's), its ids are kept and a character
    /// outside it is an error.
    public init(text: String, source: String = "text", trainFraction: Double = 0.9, vocabulary: [Unicode.Scalar]? = nil) throws {
        let scalars = Array(text.unicodeScalars)
        guard !scalars.isEmpty else { throw KilnError.file(path: source, message: "the text is empty") }
        guard trainFraction > 0, trainFraction < 1 else {
            throw KilnError.invalidArgument(op: "TextCorpus", message: "trainFraction must be in (0, 1), got \(trainFraction)")
        }
        characters = vocabulary ?? Array(Set(scalars)).sorted { $0.value < $1.value }
        let ids = try Self.encode(scalars, characters: characters, source: source)
        let cut = Int(Double(ids.count) * trainFraction)
        train = Array(ids[..<cut])
        validation = Array(ids[cut...])
        self.source = source
    }

    /// The ids of `scalars` in `characters`; a character outside is an error naming it and its
    /// offset.
    public static func encode(_ scalars: [Unicode.Scalar], characters: [Unicode.Scalar], source: String) throws -> [Int32] {
        var index: [Unicode.Scalar: Int32] = [:]
        for (i, c) in characters.enumerated() { index[c] = Int32(i) }
        return try scalars.enumerated().map { offset, c in
            guard let id = index[c] else {
                throw KilnError.invalidValue(op: source, message: "character \(String(reflecting: String(c))) (U+\(String(c.value, radix: 16, uppercase: true))) at offset \(offset) is not in the model's vocabulary of \(characters.count)")
            }
            return id
        }
    }

    /// The text of `ids`.
    public func decode(_ ids: [Int32]) -> String {
        var s = String.UnicodeScalarView()
        for id in ids where id >= 0 && Int(id) < characters.count { s.append(characters[Int(id)]) }
        return String(s)
    }

    static func read(_ path: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw KilnError.file(path: path, message: "no such file or directory")
        }
        var files = [path]
        if isDirectory.boolValue {
            let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
            files = names.map { "\(path)/\($0)" }.filter { file in
                let attributes = try? FileManager.default.attributesOfItem(atPath: file)
                return attributes?[.type] as? FileAttributeType == .typeRegular
            }
            guard !files.isEmpty else { throw KilnError.file(path: path, message: "the directory holds no regular files") }
        }
        var text = ""
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw KilnError.file(path: file, message: "cannot be read")
            }
            guard let s = String(data: data, encoding: .utf8) else {
                throw KilnError.file(path: file, message: "is not UTF-8 text (\(data.count) bytes)")
            }
            text += s
        }
        guard !text.isEmpty else { throw KilnError.file(path: path, message: "the text is empty") }
        return text
    }
}

/// Windows of a token sequence for next-token prediction: inputs `[B, T]` and targets shifted
/// by one, as int32 feeds `tokens` and `targets`.
public struct TextWindows: Sendable {
    public let ids: [Int32]
    public let context: Int

    public init(_ ids: [Int32], context: Int) throws {
        guard ids.count > context else {
            throw KilnError.invalidArgument(op: "TextWindows", message: "\(ids.count) characters do not fill one window of \(context) + 1")
        }
        self.ids = ids
        self.context = context
    }

    /// The windows starting at `starts`.
    public func batch(starts: [Int]) throws -> [String: HostTensor] {
        var x = [Int32](), y = [Int32]()
        x.reserveCapacity(starts.count * context)
        y.reserveCapacity(starts.count * context)
        for s in starts {
            x += ids[s..<s + context]
            y += ids[s + 1..<s + context + 1]
        }
        let shape: Shape = [starts.count, context]
        return ["tokens": try HostTensor(x, shape: shape), "targets": try HostTensor(y, shape: shape)]
    }

    /// `count` windows at random starts, drawn from `(seed, step)` alone, so a resumed run
    /// draws the same ones.
    public func random(count: Int, seed: UInt64, step: Int) throws -> [String: HostTensor] {
        var rng = SeededGenerator(seed: seed &* 0x2545_F491_4F6C_DD1D &+ UInt64(step))
        let last = ids.count - context - 1
        return try batch(starts: (0..<count).map { _ in Int.random(in: 0...last, using: &rng) })
    }

    /// Every non-overlapping window from the start (each predicts `context` characters), in
    /// batches of at most `batchSize`: an evaluation that covers the whole text the same way
    /// every time.
    public func tiling(batchSize: Int) -> [[Int]] {
        let starts = Array(stride(from: 0, through: ids.count - context - 1, by: context))
        return stride(from: 0, to: starts.count, by: batchSize).map { Array(starts[$0..<min($0 + batchSize, starts.count)]) }
    }
}
