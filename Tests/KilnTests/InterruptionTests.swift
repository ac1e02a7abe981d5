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
