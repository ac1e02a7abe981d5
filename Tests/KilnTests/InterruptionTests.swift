import Foundation
import Testing
import Kiln

/// Interrupted training loses nothing: a stop mid-epoch resumes on the same trajectory, and a
/// process killed at any moment leaves the previous or the new checkpoint, whole.
@Suite struct InterruptionTests {
    static var repository: URL { Fixtures.directory.deletingLastPathComponent().deletingLastPathComponent() }

    /// Stopping mid-epoch (as Ctrl-C does), checkpointing and resuming gives the same epochs,
    /// bitwise on the CPU.
    @Test func stopMidEpochAndResume() throws {
        let task = try TrainingTests.smallTask()
        var straight: [Double] = []
        try Trainer(task: task, options: TrainingTests.options(.cpu, epochs: 2)).train(finished: { straight.append($0.trainLoss) })

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-stop-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = try Trainer(task: task, options: TrainingTests.options(.cpu, epochs: 2))
        var steps = 0
        first.shouldStop = { steps += 1; return steps == 3 }
        var resumed: [Double] = []
        #expect(try first.train(finished: { resumed.append($0.trainLoss) }) == false)
        #expect(first.epochStep == 3)
        try first.saveCheckpoint(to: path)
        let second = try Trainer(task: task, options: TrainingTests.options(.cpu, epochs: 2))
        try second.resume(from: path)
        #expect(try second.train(finished: { resumed.append($0.trainLoss) }))
        #expect(resumed == straight)
    }

    /// The transformer tagger resumes from its checkpoint on the same trajectory: one epoch,
    /// then a second after `--resume`, ends bitwise where two straight epochs do; a checkpoint
    /// of another task is refused by name.
    @Test func taggerResumesFromItsCheckpoint() throws {
        guard let kiln = kilnExecutable() else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-tagger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = Self.repository.appendingPathComponent("data/ner-sample").path
        func train(epochs: Int, checkpoint: String, resume: Bool = false, task: [String] = ["--model", "transformer"]) throws -> (Int32, String) {
            try runProgram(kiln, ["train", "--task", "ner", "--data", data, "--device", "cpu", "--epochs", "\(epochs)", "--batch-size", "32",
                                  "--dim", "8", "--width", "16", "--layers", "1", "--heads", "2", "--checkpoint", checkpoint]
                                 + task + (resume ? ["--resume"] : []))
        }
        let straight = dir.appendingPathComponent("straight.safetensors").path, split = dir.appendingPathComponent("split.safetensors").path
        #expect(try train(epochs: 2, checkpoint: straight).0 == 0)
        #expect(try train(epochs: 1, checkpoint: split).0 == 0)
        let (status, text) = try train(epochs: 2, checkpoint: split, resume: true)
        #expect(status == 0 && text.contains("Resumed from") && text.contains("epoch 2/2"), "\(text)")
        let a = try SafeTensorsFile.read(path: straight), b = try SafeTensorsFile.read(path: split)
        #expect(a.metadata["epoch"] == "2" && b.metadata["epoch"] == "2" && a.tensors.count == b.tensors.count)
        for (name, t) in a.tensors { #expect(t.doubles == b.tensors[name]?.doubles, "\(name)") }

        let window = dir.appendingPathComponent("window.safetensors").path
        #expect(try train(epochs: 1, checkpoint: window, task: ["--hidden", "16"]).0 == 0)
        let (refused, message) = try train(epochs: 2, checkpoint: window, resume: true)
        #expect(refused != 0 && message.contains("not a checkpoint of `kiln train --task ner --model transformer`"), "\(message)")
    }

    /// `kiln train` killed with SIGKILL at 50 random moments (many during checkpoint writes):
    /// the checkpoint on disk always reads back whole, its epoch never goes backwards, and
    /// `--resume` continues from it.
    @Test func sigkillNeverCorruptsTheCheckpoint() throws {
        guard let kiln = kilnExecutable() else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-kill-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let checkpoint = dir.appendingPathComponent("ner.safetensors").path
        func train(epochs: Int) throws -> Process {
            let p = Process()
            p.executableURL = kiln
            p.currentDirectoryURL = Self.repository
            p.arguments = ["train", "--task", "ner", "--device", "cpu", "--epochs", "\(epochs)", "--batch-size", "64",
                           "--dim", "8", "--hidden", "16", "--checkpoint", checkpoint, "--resume"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        var rng = SeededGenerator(seed: 2024)
        var lastEpoch = 0, kills = 0
        for _ in 0..<50 {
            let p = try train(epochs: 100_000)
            Thread.sleep(forTimeInterval: Double.random(in: 0.05...0.8, using: &rng))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            kills += 1
            guard FileManager.default.fileExists(atPath: checkpoint) else { continue }
            let file = try SafeTensorsFile.read(path: checkpoint)
            let epoch = try #require(file.metadata["epoch"].flatMap(Int.init))
            #expect(epoch >= lastEpoch, "the checkpoint went back from epoch \(lastEpoch) to \(epoch)")
            #expect(file.tensors.count == 10)   // 5 parameters and their 5 momentum buffers
            lastEpoch = epoch
        }
        #expect(kills == 50)
        #expect(lastEpoch > 0, "no checkpoint was ever completed")
        let finish = try train(epochs: lastEpoch + 1)
        finish.waitUntilExit()
        #expect(finish.terminationStatus == 0)
        let file = try SafeTensorsFile.read(path: checkpoint)
        #expect(file.metadata["epoch"] == "\(lastEpoch + 1)")
    }
}
