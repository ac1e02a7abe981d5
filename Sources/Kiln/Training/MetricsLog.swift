import Foundation

/// Per-epoch figures of any model as JSON lines, with their curves drawn as SVG beside them
/// (`metrics.jsonl` → `metrics.svg`), both rewritten after every epoch. Losses share the left
/// axis; series whose values are all fractions (accuracy, F1) the right one, 0 to 1.
public struct MetricsLog {
    /// One epoch: the figures its curves draw, and its JSON line.
    public struct Point: Sendable {
        public let epoch: Int
        public let values: [String: Double]
        public let line: String
    }

    public let path: String
    /// What a point counts and the curves' x axis: `epoch`, or `step` for runs that evaluate
    /// every so many steps.
    public let axis: String
    public private(set) var points: [Point] = []

    /// A log at `path`; when resuming, the lines already there for epochs (or steps) up to
    /// `keepingEpochsThrough` are kept (a run resumed after epoch 2 keeps epochs 1 and 2).
    public init(path: String, keepingEpochsThrough kept: Int = 0, axis: String = "epoch") throws {
        self.path = path
        self.axis = axis
        guard kept > 0, let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let epoch = object[axis] as? Int, epoch <= kept else { continue }
            let values = object.compactMapValues { $0 as? Double }.filter { !Self.notSeries.contains($0.key) }
            points.append(Point(epoch: epoch, values: values, line: String(line)))
        }
    }

    /// Fields of a line that are not curves.
    static let notSeries: Set<String> = ["epoch", "step", "seconds", "f1", "bits_per_char"]

    public var svgPath: String { (path as NSString).deletingPathExtension + ".svg" }

    /// Appends an epoch: `series` are drawn and written, `extra` (seconds, nested objects) only
    /// written. Rewrites both files.
    public mutating func append(epoch: Int, series: [String: Double], extra: [String: Any] = [:]) throws {
        let object = extra.merging(series) { $1 }.merging([axis: epoch]) { $1 }
        points.append(Point(epoch: epoch, values: series, line: try JSONText.string(object)))
        let lines = points.map(\.line).joined(separator: "\n") + "\n"
        do {
            try Data(lines.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            try Data(svg().utf8).write(to: URL(fileURLWithPath: svgPath), options: .atomic)
        } catch {
            throw KilnError.file(path: path, message: "cannot write metrics: \(error.localizedDescription)")
        }
    }

    /// A built-in task's epoch: train_loss, test_loss, test_accuracy, seconds, and for NER f1
    /// (overall) with per-entity precision, recall and f1.
    public mutating func append(_ r: EpochResult) throws {
        var extra: [String: Any] = ["seconds": r.seconds]
        if let ner = r.ner {
            extra["f1"] = ner.overall.f1
            extra["entities"] = Dictionary(uniqueKeysWithValues: ner.perType.map { type, s in
                (type, ["precision": s.precision, "recall": s.recall, "f1": s.f1])
            })
        }
        try append(epoch: r.epoch, series: ["train_loss": r.trainLoss, "test_loss": r.testLoss, "test_accuracy": r.testAccuracy], extra: extra)
    }

    /// Any model's epoch from `ModelTrainer`: train_loss, and test_loss and test_<metric> for
    /// each metric of its objective on the evaluation data; seconds.
    public mutating func append(_ r: FitEpoch) throws {
        var series = ["train_loss": r.trainLoss]
        if let e = r.evaluation {
            series["test_loss"] = e.loss
            for (name, v) in e.metrics { series["test_\(name)"] = v }
        }
        try append(epoch: r.epoch, series: series, extra: ["seconds": r.seconds])
    }

    /// Every series per epoch: losses (and any series with a value outside [0, 1]) on the left
    /// axis, fractions on the right one.
    public func svg() -> String {
        let w = 640.0, h = 360.0, pad = 50.0
        let epochs = points
        let n = max(epochs.count, 1)
        let names = Set(epochs.flatMap(\.values.keys)).sorted()
        // A series stays on the right axis only while every value is a fraction.
        let isFraction = { (name: String) in
            !name.hasSuffix("loss") && epochs.allSatisfy { p in p.values[name].map { (0...1).contains($0) } ?? true }
        }
        let losses = names.filter { !isFraction($0) }, fractions = names.filter(isFraction)
        let maxLoss = max(epochs.flatMap { p in losses.compactMap { p.values[$0] } }.filter(\.isFinite).max() ?? 1, 1e-9)
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
        s += "<text x=\"\(w / 2)\" y=\"\(h - 10)\" text-anchor=\"middle\">\(axis)</text>"
        let colors = ["#d62728", "#ff9896", "#1f77b4", "#aec7e8", "#2ca02c", "#98df8a", "#9467bd", "#c5b0d5"]
        var legend = pad + 10
        for (i, name) in (losses + fractions).enumerated() {
            let color = colors[i % colors.count], top = losses.contains(name) ? maxLoss : 1
            s += line(epochs.map { $0.values[name] ?? .nan }, top, color)
            let label = name.replacingOccurrences(of: "_", with: " ") + (top == 1 ? " (right axis)" : "")
            s += "<text x=\"\(legend)\" y=\"20\" fill=\"\(color)\">\(label)</text>"
            legend += Double(label.count) * 7 + 15
        }
        return s + "</svg>\n"
    }
}
