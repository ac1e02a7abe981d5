import Foundation
import Kiln

/// `--step-log`: one JSON object per training step.
final class StepLog {
    let handle: FileHandle

    init(path: String, append: Bool) throws {
        if !append || !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw KilnError.file(path: path, message: "cannot create the step log")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw KilnError.file(path: path, message: "cannot open the step log for writing") }
        h.seekToEndOfFile()
        handle = h
    }

    func append(_ p: TrainingProgress) {
        // Integers and a number (null once training diverges), which JSONSerialization always writes.
        guard let line = try? JSONText.string(["epoch": p.epoch, "step": p.step, "loss": p.loss] as [String: Any]) else { return }
        handle.write(Data((line + "\n").utf8))
    }
}
