import Foundation

/// Kernel choices measured on a device, kept on disk so that a later load measures nothing: per
/// device (platform, name, OpenCL and driver versions) and matmul shape, the choice and every
/// candidate's time. One JSON file (`kernel-choices.json` in `OpenCLOptions.cacheDirectory`),
/// read once per process and rewritten whole (to a temporary file, then renamed) when a
/// measurement adds to it, so processes sharing it never see half a file. A file that cannot be
/// read or written leaves the choices in this process's memory only.
public final class KernelChoiceCache: @unchecked Sendable {
    /// One shape's measurement.
    public struct Entry: Sendable, Equatable {
        /// The fastest candidate, as `vector` or `tiled:<tile>`.
        public let choice: String
        /// Milliseconds per run of each candidate measured.
        public let milliseconds: [String: Double]
    }

    /// The file format's version. 2: the vector family's second register block became a
    /// candidate, so choices measured without it are measured again.
    public static let version = 2

    /// The file, nil to keep choices in memory only.
    public let file: URL?
    private let lock = NSLock()
    private var loaded = false
    private var devices: [String: [String: Entry]] = [:]

    public init(file: URL?) {
        self.file = file
    }

    private static let sharedLock = NSLock()
    nonisolated(unsafe) private static var caches: [String: KernelChoiceCache] = [:]

    /// The process's cache for `options.cacheDirectory` (nil: in memory only).
    public static func shared(_ options: OpenCLOptions) -> KernelChoiceCache {
        let path = options.cacheDirectory.map { URL(fileURLWithPath: $0).appendingPathComponent("kernel-choices.json").path } ?? ""
        sharedLock.lock()
        defer { sharedLock.unlock() }
        if let c = caches[path] { return c }
        let c = KernelChoiceCache(file: path.isEmpty ? nil : URL(fileURLWithPath: path))
        caches[path] = c
        return c
    }

    /// What choices are cached under for `device`.
    public static func key(_ device: CLDeviceInfo) -> String {
        "\(device.platform) | \(device.name) | \(device.version) | driver \(device.driverVersion)"
    }

    /// The measured entry for `shape` on `device`, if any.
    public func entry(device: CLDeviceInfo, shape: String) -> Entry? {
        lock.lock()
        defer { lock.unlock() }
        loadOnce()
        return devices[Self.key(device)]?[shape]
    }

    /// Every entry for `device`, by shape.
    public func entries(device: CLDeviceInfo) -> [String: Entry] {
        lock.lock()
        defer { lock.unlock() }
        loadOnce()
        return devices[Self.key(device)] ?? [:]
    }

    /// Adds `entries` for `device`, and writes the file with whatever other processes have added
    /// to it meanwhile.
    public func store(device: CLDeviceInfo, _ entries: [String: Entry]) {
        lock.lock()
        defer { lock.unlock() }
        loadOnce()
        let key = Self.key(device)
        devices[key, default: [:]].merge(entries) { _, new in new }
        guard let file else { return }
        var merged = Self.read(file)
        for (d, shapes) in devices { merged[d, default: [:]].merge(shapes) { _, mine in mine } }
        devices = merged
        var object: [String: Any] = [:]
        for (d, shapes) in merged {
            object[d] = shapes.mapValues { ["choice": $0.choice, "ms": $0.milliseconds] as [String: Any] }
        }
        guard let data = try? JSONSerialization.data(withJSONObject: ["version": Self.version, "devices": object], options: [.sortedKeys, .prettyPrinted])
        else { return }
        try? FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? data.write(to: file, options: .atomic)
    }

    private func loadOnce() {
        guard !loaded else { return }
        loaded = true
        if let file { devices = Self.read(file) }
    }

    /// The file's entries; nothing where it is missing, unreadable or of another version (then
    /// the choices are measured again and the file rewritten).
    private static func read(_ file: URL) -> [String: [String: Entry]] {
        guard let data = try? Data(contentsOf: file),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              object["version"] as? Int == version, let devices = object["devices"] as? [String: [String: Any]] else { return [:] }
        var result: [String: [String: Entry]] = [:]
        for (d, shapes) in devices {
            for (shape, value) in shapes {
                guard let e = value as? [String: Any], let choice = e["choice"] as? String,
                      let ms = e["ms"] as? [String: Double] else { continue }
                result[d, default: [:]][shape] = Entry(choice: choice, milliseconds: ms)
            }
        }
        return result
    }
}
