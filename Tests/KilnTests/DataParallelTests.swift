import Foundation
import Testing
import Kiln

/// `mpirun -np 2 kiln train`: the same trajectory as one process, and every failure stops the
/// whole job with a message naming the rank. These tests run the `kiln` binary under Open MPI's
/// `mpirun`; without it they skip, unless `KILN_REQUIRE_MPI=1` (set by CI) makes that a failure.
@Suite(.serialized) struct DataParallelTests {
    static var repository: URL { Fixtures.directory.deletingLastPathComponent().deletingLastPathComponent() }

    static let mpirun: URL? = {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin"]
        for dir in path {
            let url = URL(fileURLWithPath: dir).appendingPathComponent("mpirun")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }()

    static func requireMPI() -> URL? {
        if mpirun == nil && ProcessInfo.processInfo.environment["KILN_REQUIRE_MPI"] == "1" {
            Issue.record("KILN_REQUIRE_MPI=1 but mpirun is not on PATH (apt-get install openmpi-bin)")
        }
        return mpirun
    }

    /// A small Fashion-MNIST-format data set (IDX files): 1000 training images (so the last
    /// batch of 64 is partial), 200 test images, 10 classes each with a pattern of its own.
    static func makeImages() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-mpi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var rng = SeededGenerator(seed: 31)
        for (prefix, n) in [("train", 1000), ("t10k", 200)] {
            var images = Data([0, 0, 8, 3] + bigEndian(n) + bigEndian(28) + bigEndian(28))
            var labels = Data([0, 0, 8, 1] + bigEndian(n))
            for _ in 0..<n {
                let c = Int(rng.next() % 10)
                labels.append(UInt8(c))
                for p in 0..<784 {
                    let pattern = (p / 28 + c) % 10 < 3 ? 150.0 : 0.0
                    images.append(UInt8(min(255, pattern + Double(rng.next() % 100))))
                }
            }
            try images.write(to: dir.appendingPathComponent("\(prefix)-images-idx3-ubyte"))
            try labels.write(to: dir.appendingPathComponent("\(prefix)-labels-idx1-ubyte"))
        }
        return dir
    }

    static func bigEndian(_ v: Int) -> [UInt8] { [24, 16, 8, 0].map { UInt8((v >> $0) & 0xff) } }

    struct Run {
        let status: Int32
        let output: String
    }

    /// Runs `kiln` (under `mpirun` when `mpi` is given) and waits at most `timeout` seconds.
    static func run(_ arguments: [String], mpi: [String]? = nil, environment: [String: String] = [:], timeout: Double = 180) throws -> Run {
        guard let kiln = kilnExecutable() else { return Run(status: -1, output: "") }
        let p = Process()
        if let mpi, let mpirun {
            p.executableURL = mpirun
            // Root in CI containers; two ranks on a small machine; no kernel-assisted copies,
            // which containers often forbid.
            p.arguments = ["--oversubscribe", "--mca", "btl_vader_single_copy_mechanism", "none"] + mpi.flatMap { part in
                part == ":" ? [":"] : part == "KILN" ? [kiln.path] : [part]
            } + (mpi.contains("KILN") ? [] : [kiln.path] + arguments)
        } else {
            p.executableURL = kiln
            p.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        for (k, v) in environment { env[k] = v }
        p.environment = env
        p.currentDirectoryURL = repository
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-mpi-out-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let handle = try FileHandle(forWritingTo: out)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if p.isRunning {
            kill(-p.processIdentifier, SIGKILL)
            p.terminate()
            p.waitUntilExit()
            Issue.record("timed out after \(timeout) s: \(p.arguments ?? [])")
        }
        p.waitUntilExit()
        try handle.close()
        return Run(status: p.terminationStatus, output: (try? String(contentsOf: out, encoding: .utf8)) ?? "")
    }

    static func stepLosses(_ path: String) throws -> [Double] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return object["loss"] as! Double
        }
    }

    static func accuracies(_ output: String) -> [String] {
        output.components(separatedBy: "\n").compactMap { line in
            line.range(of: "test accuracy ").map { String(line[$0.upperBound...].prefix(6)) }
        }
    }

    /// Two processes, each with half of every global batch of 64, follow one process's
    /// trajectory: every step's loss within 1e-4 relative (float32 sums in another order) over
    /// two epochs that each end with a partial batch, and the same test accuracy.
    @Test(arguments: DeviceKind.allCases)
    func twoProcessesFollowOne(device: DeviceKind) throws {
        guard Self.requireMPI() != nil else { return }
        if device == .gpu && OpenCLSupport.context == nil { return }
        let data = try Self.makeImages()
        defer { try? FileManager.default.removeItem(at: data) }
        let one = data.appendingPathComponent("one.jsonl").path, two = data.appendingPathComponent("two.jsonl").path
        let args = ["train", "--device", device.rawValue, "--data", data.path, "--hidden", "32", "--epochs", "2",
                    "--batch-size", "64", "--lr", "0.05", "--seed", "3"]
        let single = try Self.run(args + ["--step-log", one])
        try #require(single.status == 0, "\(single.output)")
        let job = try Self.run(args + ["--step-log", two], mpi: ["-np", "2"])
        try #require(job.status == 0, "\(job.output)")
        #expect(job.output.contains("Data parallel: 2 processes"))
        let a = try Self.stepLosses(one), b = try Self.stepLosses(two)
        #expect(a.count == 32 && b.count == 32)   // 16 steps an epoch, the last of 40 examples
        for (i, (x, y)) in zip(a, b).enumerated() {
            #expect(abs(x - y) <= 1e-4 * abs(x), "step \(i + 1): one process \(x), two \(y)")
        }
        #expect(a.last! < a.first! * 0.5, "the loss should fall: \(a.first!) -> \(a.last!)")
        #expect(Self.accuracies(single.output) == Self.accuracies(job.output), "\(single.output)\n\(job.output)")
        #expect(Self.accuracies(job.output).count == 2)   // one line: only rank 0 reports
    }

    /// The word-window model (embedding gradients, NER evaluation gathered from both shards).
    @Test func nerUnderTwoProcesses() throws {
        guard Self.requireMPI() != nil else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-mpi-ner-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let args = ["train", "--task", "ner", "--device", "cpu", "--epochs", "2", "--batch-size", "64", "--dim", "8", "--hidden", "16"]
        let single = try Self.run(args + ["--step-log", dir.appendingPathComponent("one").path])
        let job = try Self.run(args + ["--step-log", dir.appendingPathComponent("two").path], mpi: ["-np", "2"])
        try #require(single.status == 0 && job.status == 0, "\(single.output)\n\(job.output)")
        let a = try Self.stepLosses(dir.appendingPathComponent("one").path), b = try Self.stepLosses(dir.appendingPathComponent("two").path)
        #expect(a.count == b.count && !a.isEmpty)
        for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-4 * abs(x)) }
        func f1(_ s: String) -> [String] { s.components(separatedBy: "\n").compactMap { l in l.range(of: "F1 ").map { String(l[$0.upperBound...].prefix(6)) } }.filter { !$0.isEmpty } }
        #expect(f1(single.output).last == f1(job.output).last, "\(single.output)\n\(job.output)")
    }

    /// A job resumed from rank 0's checkpoint (read by rank 0 alone and sent to the other)
    /// continues on the uninterrupted job's trajectory.
    @Test func resumeUnderTwoProcesses() throws {
        guard Self.requireMPI() != nil else { return }
        let data = try Self.makeImages()
        defer { try? FileManager.default.removeItem(at: data) }
        let checkpoint = data.appendingPathComponent("job.safetensors").path
        let args = ["train", "--device", "cpu", "--data", data.path, "--hidden", "16", "--batch-size", "64", "--seed", "5"]
        let straight = try Self.run(args + ["--epochs", "2", "--step-log", data.appendingPathComponent("straight").path], mpi: ["-np", "2"])
        let first = try Self.run(args + ["--epochs", "1", "--checkpoint", checkpoint], mpi: ["-np", "2"])
        let second = try Self.run(args + ["--epochs", "2", "--checkpoint", checkpoint, "--resume",
                                          "--step-log", data.appendingPathComponent("resumed").path], mpi: ["-np", "2"])
        try #require(straight.status == 0 && first.status == 0 && second.status == 0, "\(first.output)\n\(second.output)")
        #expect(second.output.contains("Resumed from"), "\(second.output)")
        let a = try Self.stepLosses(data.appendingPathComponent("straight").path)
        let b = try Self.stepLosses(data.appendingPathComponent("resumed").path)
        #expect(a.count == 32 && b.count == 16)   // the resumed job logs only its second epoch
        for (x, y) in zip(a.suffix(16), b) { #expect(x == y, "resumed \(y), straight \(x)") }
        #expect(Self.accuracies(straight.output).last == Self.accuracies(second.output).last)
    }

    /// A process that fails (its data shard is unreadable) stops the whole job, naming its rank
    /// and the cause, instead of leaving the other waiting in a collective.
    @Test func aFailingRankStopsTheJob() throws {
        guard Self.requireMPI() != nil else { return }
        let good = try Self.makeImages()
        defer { try? FileManager.default.removeItem(at: good) }
        let bad = good.appendingPathComponent("bad")
        try FileManager.default.createDirectory(at: bad, withIntermediateDirectories: true)
        for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            var bytes = try Data(contentsOf: good.appendingPathComponent(name))
            if name == "train-images-idx3-ubyte" { bytes = bytes.prefix(5000) }
            try bytes.write(to: bad.appendingPathComponent(name))
        }
        let common = ["train", "--device", "cpu", "--hidden", "16", "--epochs", "1"]
        let job = try Self.run([], mpi: ["-np", "1", "KILN"] + common + ["--data", good.path, ":", "-np", "1", "KILN"] + common + ["--data", bad.path],
                               timeout: 120)
        #expect(job.status != 0)
        #expect(job.output.contains("rank 1 of 2 failed"), "\(job.output)")
        #expect(job.output.contains("train-images-idx3-ubyte"), "\(job.output)")
    }

    /// A rank killed mid-run (SIGKILL: no chance to say anything) ends the job: mpirun names
    /// it, the others stop, and rank 0's last checkpoint is whole.
    @Test func aKilledRankStopsTheJob() throws {
        guard Self.requireMPI() != nil, let kiln = kilnExecutable() else { return }
        let data = try Self.makeImages()
        defer { try? FileManager.default.removeItem(at: data) }
        let checkpoint = data.appendingPathComponent("run.safetensors").path
        let p = Process()
        p.executableURL = Self.mpirun
        p.arguments = ["--oversubscribe", "--mca", "btl_vader_single_copy_mechanism", "none", "-np", "2", kiln.path, "train",
                       "--device", "cpu", "--data", data.path, "--hidden", "16", "--epochs", "100000", "--checkpoint", checkpoint]
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        p.environment = env
        let log = data.appendingPathComponent("output.txt")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        var deadline = Date().addingTimeInterval(90)
        while !FileManager.default.fileExists(atPath: checkpoint) && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        try #require(FileManager.default.fileExists(atPath: checkpoint), "no checkpoint was written")
        let rank1 = try #require(Self.process(rank: 1, argument: checkpoint), "rank 1 not found")
        kill(rank1, SIGKILL)
        deadline = Date().addingTimeInterval(60)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        let stopped = !p.isRunning
        if !stopped { p.terminate() }
        p.waitUntilExit()
        try handle.close()
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(stopped, "the job went on after rank 1 was killed")
        #expect(p.terminationStatus != 0)
        #expect(text.contains("rank 1"), "\(text.suffix(2000))")
        #expect(Self.process(rank: 0, argument: checkpoint) == nil, "rank 0 still runs")
        let file = try SafeTensorsFile.read(path: checkpoint)
        #expect(file.tensors.count == 8)   // 4 parameters and their momentum buffers
    }

    /// The pid of the kiln process of `rank` whose command line contains `argument`.
    static func process(rank: Int, argument: String) -> Int32? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for e in entries {
            guard let pid = Int32(e),
                  let cmd = FileManager.default.contents(atPath: "/proc/\(e)/cmdline"),
                  let env = FileManager.default.contents(atPath: "/proc/\(e)/environ") else { continue }
            let args = cmd.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard args.first?.hasSuffix("kiln") == true, args.contains(argument) else { continue }
            let vars = env.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if vars.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return pid }
        }
        return nil
    }

    /// Processes started with different configurations all stop with one message naming the
    /// difference.
    @Test func mismatchedConfigurationsAreRefused() throws {
        guard Self.requireMPI() != nil else { return }
        let data = try Self.makeImages()
        defer { try? FileManager.default.removeItem(at: data) }
        let common = ["train", "--device", "cpu", "--data", data.path, "--hidden", "16", "--epochs", "1"]
        let job = try Self.run([], mpi: ["-np", "1", "KILN"] + common + ["--batch-size", "64", ":", "-np", "1", "KILN"] + common + ["--batch-size", "32"],
                               timeout: 120)
        #expect(job.status != 0)
        #expect(job.output.contains("rank 1 has batch size 32, rank 0 has batch size 64"), "\(job.output)")
        let uneven = try Self.run(common + ["--batch-size", "63"], mpi: ["-np", "2"], timeout: 120)
        #expect(uneven.status != 0)
        #expect(uneven.output.contains("a global batch of 63 examples does not split evenly over 2 processes"), "\(uneven.output)")
    }

    /// `--distributed` outside mpirun, and a job whose MPI library cannot be loaded, are
    /// refused with what to do.
    @Test func withoutMPI() throws {
        let plain = try Self.run(["train", "--distributed", "--device", "cpu", "--epochs", "1"])
        #expect(plain.status == 1)
        #expect(plain.output.contains("not started by mpirun"), "\(plain.output)")
        guard Self.requireMPI() != nil else { return }
        let job = try Self.run(["train", "--device", "cpu", "--epochs", "1"], mpi: ["-np", "2"],
                               environment: ["KILN_MPI_LIBRARY": "libmpi-missing.so"], timeout: 60)
        #expect(job.status != 0)
        #expect(job.output.contains("could not load Open MPI's library"), "\(job.output)")
    }
}
