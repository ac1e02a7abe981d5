import Foundation
import Kiln

/// Per-epoch metrics as JSON lines, with a loss/accuracy curve written as SVG beside them
/// (`metrics.jsonl` → `metrics.svg`), both rewritten after every epoch.
public struct MetricsLog {
    /// The figures of one epoch that the curve draws, and its JSON line.
    public struct Point: Sendable {
        public let epoch: Int
        public let trainLoss, testLoss, testAccuracy: Double
        public let line: String
    }

    public let path: String
    public private(set) var points: [Point] = []

    /// A log at `path`; when resuming, the lines already there for epochs up to `keepingEpochsThrough`
    /// are kept (a run resumed after epoch 2 keeps epochs 1 and 2).
    public init(path: String, keepingEpochsThrough kept: Int = 0) throws {
        self.path = path
        guard kept > 0, let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let epoch = object["epoch"] as? Int, epoch <= kept else { continue }
            points.append(Point(epoch: epoch, trainLoss: object["train_loss"] as? Double ?? .nan,
                                testLoss: object["test_loss"] as? Double ?? .nan,
                                testAccuracy: object["test_accuracy"] as? Double ?? .nan, line: String(line)))
        }
    }

    public var svgPath: String { (path as NSString).deletingPathExtension + ".svg" }

    /// Appends an epoch and rewrites both files.
    public mutating func append(_ r: EpochResult) throws {
        points.append(Point(epoch: r.epoch, trainLoss: r.trainLoss, testLoss: r.testLoss, testAccuracy: r.testAccuracy, line: try Self.json(r)))
        let lines = points.map(\.line).joined(separator: "\n") + "\n"
        do {
            try Data(lines.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            try Data(svg().utf8).write(to: URL(fileURLWithPath: svgPath), options: .atomic)
        } catch {
            throw KilnError.file(path: path, message: "cannot write metrics: \(error.localizedDescription)")
        }
    }

    /// One epoch as a JSON object: epoch, train_loss, test_loss, test_accuracy, seconds, and
    /// for NER f1 (overall) with per-entity precision, recall and f1.
    public static func json(_ r: EpochResult) throws -> String {
        var object: [String: Any] = ["epoch": r.epoch, "train_loss": r.trainLoss, "test_loss": r.testLoss,
                                     "test_accuracy": r.testAccuracy, "seconds": r.seconds]
        if let ner = r.ner {
            object["f1"] = ner.overall.f1
            object["entities"] = Dictionary(uniqueKeysWithValues: ner.perType.map { type, s in
                (type, ["precision": s.precision, "recall": s.recall, "f1": s.f1])
            })
        }
        return try JSONText.string(object)
    }

    /// Train and test loss (left axis) and test accuracy (right axis, 0 to 1) per epoch.
    public func svg() -> String {
        let w = 640.0, h = 360.0, pad = 50.0
        let epochs = points
        let n = max(epochs.count, 1)
        let maxLoss = max(epochs.flatMap { [$0.trainLoss, $0.testLoss] }.filter(\.isFinite).max() ?? 1, 1e-9)
        func x(_ i: Int) -> Double { pad + (w - 2 * pad) * (n == 1 ? 0.5 : Double(i) / Double(n - 1)) }
        func y(_ v: Double, _ top: Double) -> Double { h - pad - (h - 2 * pad) * min(max(v / top, 0), 1) }
        func line(_ values: [Double], _ top: Double, _ color: String) -> String {
            let points = values.enumerated().map { String(format: "%.1f,%.1f", x($0.offset), y($0.element, top)) }.joined(separator: " ")
            let dots = values.enumerated().map { String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%@\"/>", x($0.offset), y($0.element, top), color) }.joined()
            return "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points)\"/>" + dots
        }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        s += "<line x1=\"\(pad)\" y1=\"\(h - pad)\" x2=\"\(w - pad)\" y2=\"\(h - pad)\" stroke=\"black\"/>"
        s += "<line x1=\"\(pad)\" y1=\"\(pad)\" x2=\"\(pad)\" y2=\"\(h - pad)\" stroke=\"black\"/>"
        s += "<line x1=\"\(w - pad)\" y1=\"\(pad)\" x2=\"\(w - pad)\" y2=\"\(h - pad)\" stroke=\"black\"/>"
        s += String(format: "<text x=\"5\" y=\"%.0f\">%.3g</text><text x=\"5\" y=\"%.0f\">0</text>", pad, maxLoss, h - pad)
        s += "<text x=\"\(w - pad + 5)\" y=\"\(pad)\">1.0</text><text x=\"\(w - pad + 5)\" y=\"\(h - pad)\">0</text>"
        for (i, r) in epochs.enumerated() { s += String(format: "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%d</text>", x(i), h - pad + 15, r.epoch) }
        s += "<text x=\"\(w / 2)\" y=\"\(h - 10)\" text-anchor=\"middle\">epoch</text>"
        s += line(epochs.map(\.trainLoss), maxLoss, "#d62728") + line(epochs.map(\.testLoss), maxLoss, "#ff9896")
        s += line(epochs.map(\.testAccuracy), 1, "#1f77b4")
        s += "<text x=\"\(pad + 10)\" y=\"20\" fill=\"#d62728\">train loss</text><text x=\"\(pad + 100)\" y=\"20\" fill=\"#ff9896\">test loss</text>"
        s += "<text x=\"\(pad + 190)\" y=\"20\" fill=\"#1f77b4\">test accuracy (right axis)</text></svg>\n"
        return s
    }
}
