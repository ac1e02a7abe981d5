import COpenCL
import Foundation
import KilnCompiler
import KilnGraph

/// Runs a `Program` on an OpenCL device.
///
/// Loading allocates every buffer, builds the program once and binds every kernel's arguments;
/// a run then uploads the feeds without blocking, enqueues the schedule, reads the fetches
/// back without blocking, and synchronizes once.
public final class OpenCLExecutable: Executable {
    public let program: Program
    public let context: CLContext
    public private(set) var counters = ExecutionCounters()
    private let buffers: [CLBuffer]
    private let scratch: [CLBuffer]
    private let clProgram: CLProgram
    private let launches: [(kernel: CLKernel, spec: LaunchSpec)]
    /// Host staging for each feed buffer and each fetch, allocated once.
    private var feedStaging: [Int: UnsafeMutableRawPointer] = [:]
    private var fetchStaging: [UnsafeMutableRawPointer] = []
    /// Int feeds that index something, checked on the host before upload: each value in
    /// [0, limit) or equal to `ignore` (a oneHot's ignore index).
    private let rangeChecks: [(buffer: Int, limit: Int, ignore: Int?, op: String, what: String)]
    private let profiling: Bool
    /// What each matmul kernel (by name) runs as: `vector` or `tiled:<tile>`.
    public let matmulKernels: [String: String]
    /// Check every kernel's outputs for NaN and Inf (default: `CompilerSettings.checkNumerics`,
    /// `KILN_CHECK_NUMERICS=1`): a debugging mode that synchronizes after every kernel.
    public var checkNumerics: Bool
    /// For tests: the next run's final synchronization reports this OpenCL status (say
    /// CL_DEVICE_NOT_AVAILABLE, a lost device) instead of the device's, once.
    public var injectedFault: Int32?
    private var events: [cl_event?]
    /// The launches of each program kernel, in order.
    private let launchesOf: [[Int]]
    private let allReduce: OpenCLAllReduce
    /// Scatter-adds with fed ids, grouped on the host each run.
    private let groupings: [IdGrouping]
    /// Per program kernel: runs, time in its own launches, and time in helper launches (a
    /// packing pass, a fill) with their names.
    private var profile: [Int: (runs: Int, nanoseconds: UInt64, helperNanoseconds: UInt64, helpers: Set<String>)] = [:]

    /// Loads `program` on `context`'s device with `options` (nil: `OpenCLOptions.fromEnvironment()`).
    /// Each matmul's kernel (family and tile) is the fastest measured at its shape on this
    /// device (`MatmulTuner`, its choices cached on disk), unless `options.matmul` fixes it or
    /// `options.tune` is off (then: wide vectors where the device has them, else local-memory tiles).
    /// `collective` is the processes the program's all-reduces sum over (none: this one).
    public convenience init(program: Program, context: CLContext, options: OpenCLOptions? = nil, collective: Collective? = nil) throws {
        try self.init(program: program, context: context, options: options, collective: collective, matmulChoices: nil)
    }

    /// `matmulChoices` fixes each matmul kernel's choice (by index in the schedule); nil
    /// measures them as `options` says.
    init(program: Program, context: CLContext, options: OpenCLOptions?, collective: Collective?,
         matmulChoices: [Int: OpenCLCodegen.MatmulChoice]?) throws {
        let options = try options ?? OpenCLOptions.fromEnvironment()
        self.program = program
        self.context = context
        let device = context.device
        if program.realType == .float64 && !device.supportsDouble {
            throw KilnError.device("\(device.name) has no double precision (cl_khr_fp64); compile the program for float32")
        }
        let total = program.buffers.reduce(0) { $0 + UInt64($1.bytes) }
        guard total <= device.globalMemoryBytes else {
            throw KilnError.device("the program needs \(total) bytes of device memory; \(device.name) has \(device.globalMemoryBytes) bytes")
        }
        var counters = ExecutionCounters()
        var buffers: [CLBuffer] = []
        for decl in program.buffers {
            buffers.append(try CLBuffer(context, bytes: decl.bytes, name: decl.name))
            counters.allocations += 1
        }
        self.buffers = buffers

        // Persistent buffers start at zero (OpenCL leaves new buffers undefined).
        let realSize = program.realType.byteSize
        for (b, decl) in program.buffers.enumerated() where decl.kind != .arena && decl.kind != .feed {
            let zeros = [UInt8](repeating: 0, count: decl.bytes)
            try zeros.withUnsafeBytes { try buffers[b].write(context, from: $0.baseAddress!, bytes: decl.bytes, blocking: true) }
        }
        for (loc, value) in program.constants {
            var v = value, f = Float(value)
            if realSize == 8 {
                try withUnsafeBytes(of: &v) { try buffers[loc.buffer].write(context, from: $0.baseAddress!, bytes: 8, offset: loc.byteOffset, blocking: true) }
            } else {
                try withUnsafeBytes(of: &f) { try buffers[loc.buffer].write(context, from: $0.baseAddress!, bytes: 4, offset: loc.byteOffset, blocking: true) }
            }
        }

        let family = options.matmul?.family ?? MatmulTuner.defaultFamily(device)
        var choices = matmulChoices ?? [:]
        if matmulChoices == nil && options.matmul == nil && options.tune {
            choices = try MatmulTuner.choices(for: program, context: context, options: options, cache: KernelChoiceCache.shared(options))
        }
        let codegen = try OpenCLCodegen(program: program, matmul: family, tile: options.matmul?.tile, choices: choices,
                                        nativeFloatWidth: device.nativeFloatWidth,
                                        computeUnits: device.computeUnits, localMemoryBytes: Int(device.localMemoryBytes),
                                        maxWorkGroupSize: device.maxWorkGroupSize, isGPU: device.isGPU, options: options)
        // One buffer for all the scratch that lives within a kernel (packed panels, partial
        // sums): the queue runs kernels in order, so they take turns (W4 held 100+ MiB of them).
        let transient = codegen.scratchBytes.indices.filter { !codegen.persistentScratch.contains($0) }
        let shared = try transient.isEmpty ? nil
            : CLBuffer(context, bytes: transient.map { codegen.scratchBytes[$0] }.max()!, name: "scratch")
        var scratch: [CLBuffer] = []
        for (i, bytes) in codegen.scratchBytes.enumerated() {
            if let shared, !codegen.persistentScratch.contains(i) { scratch.append(shared); continue }
            scratch.append(try CLBuffer(context, bytes: bytes, name: "scratch \(i)"))
            counters.allocations += 1
        }
        if shared != nil { counters.allocations += 1 }
        self.scratch = scratch
        matmulKernels = Dictionary(uniqueKeysWithValues: codegen.chosen.map { (program.kernels[$0.key].name, $0.value.description) })
        if options.debug {
            for text in codegen.generated { FileHandle.standardError.write(Data((text + "\n").utf8)) }
        }
        // -w: PoCL would print compiler warnings on stderr (KILN_DEBUG=1 shows the build log).
        clProgram = try CLProgram(context, source: codegen.source, options: "-cl-std=CL1.2" + (options.debug ? "" : " -w"),
                                  printBuildLog: options.debug)
        counters.builds += 1
        var launches: [(CLKernel, LaunchSpec)] = []
        var kernelsByFunction: [String: Int] = [:]
        for spec in codegen.launches {
            let k = try CLKernel(clProgram, name: spec.function)
            kernelsByFunction[spec.function, default: 0] += 1

            for (i, arg) in spec.args.enumerated() {
                switch arg {
                case .buffer(let b): try k.set(i, buffers[b])
                case .scratch(let b): try k.set(i, scratch[b])
                case .int(let v): try k.set(i, int: v)
                case .real(let v): try k.set(i, real: v, size: realSize)
                }
            }
            launches.append((k, spec))
        }
        counters.builds += launches.count
        self.launches = launches
        var launchesOf = [[Int]](repeating: [], count: program.kernels.count)
        for (i, l) in launches.enumerated() { launchesOf[l.1.kernel].append(i) }
        self.launchesOf = launchesOf
        allReduce = try OpenCLAllReduce(program: program, context: context, collective: collective)
        groupings = codegen.groupings.map(IdGrouping.init)
        counters.allocations += groupings.count
        counters.allocations += allReduce.allocations

        for (b, decl) in program.buffers.enumerated() where decl.kind == .feed {
            feedStaging[b] = .allocate(byteCount: max(decl.bytes, 8), alignment: 64)
        }
        fetchStaging = program.fetches.map { .allocate(byteCount: max($0.shape.count * ($0.dtype == .int32 ? 4 : realSize), 8), alignment: 64) }
        var checks: [(Int, Int, Int?, String, String)] = []
        for k in program.kernels {
            guard case .node(let op) = k.kind else { continue }
            for index in op.indexInputs(inputs: k.inputs.map(\.shape), output: k.outputs[0].shape) {
                let b = k.inputs[index.input]
                if program.buffers[b.location.buffer].kind == .feed {
                    checks.append((b.location.buffer, index.limit, index.ignore, k.name, index.what))
                }
            }
        }
        rangeChecks = checks
        profiling = options.profile
        checkNumerics = try CompilerSettings.fromEnvironment().checkNumerics
        events = [cl_event?](repeating: nil, count: profiling ? launches.count : 0)
        self.counters = counters
    }

    /// Loads `program` with the environment's options, the matmul family (and tile) given as
    /// `KILN_MATMUL` takes it (`tiled`, `vector`, `tiled:<tile>`; empty: the device's), for tests
    /// and tuning.
    public convenience init(program: Program, context: CLContext, matmul: String?, collective: Collective? = nil) throws {
        var options = try OpenCLOptions.fromEnvironment()
        if let matmul { options.matmul = matmul.isEmpty ? nil : try OpenCLOptions.Matmul(matmul) }
        try self.init(program: program, context: context, options: options, collective: collective)
    }

    deinit {
        if profiling && !profile.isEmpty { FileHandle.standardError.write(Data((profileReport() + "\n").utf8)) }
        for p in feedStaging.values { p.deallocate() }
        for p in fetchStaging { p.deallocate() }
    }

    public func write(_ tensor: Tensor, _ value: HostTensor) throws {
        let b = try program.inputBuffer(tensor, kinds: [.parameter, .state])
        try program.check(value, for: tensor)
        let bytes = program.buffers[b].bytes
        let staging = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 8), alignment: 64)
        defer { staging.deallocate() }
        stage(value, into: staging)
        try buffers[b].write(context, from: staging, bytes: value.shape.count * elementSize(value.dtype), blocking: true)
    }

    public func read(_ tensor: Tensor) throws -> HostTensor {
        let b = try program.inputBuffer(tensor, kinds: [.parameter, .state])
        let node = tensor.node
        let staging = UnsafeMutableRawPointer.allocate(byteCount: max(program.buffers[b].bytes, 8), alignment: 64)
        defer { staging.deallocate() }
        try buffers[b].read(context, into: staging, bytes: node.shape.count * elementSize(node.dtype))
        return unstage(staging, shape: node.shape, dtype: node.dtype)
    }

    public func run(feeds: [Tensor: HostTensor]) throws -> [HostTensor] {
        let byBuffer = try program.feedsByBuffer(feeds)
        for check in rangeChecks {
            guard case .int32(let v)? = byBuffer[check.buffer]?.storage else { continue }
            if let p = v.firstIndex(where: { ($0 < 0 || Int($0) >= check.limit) && Int($0) != check.ignore }) {
                let name = program.buffers[check.buffer].name
                let ignored = check.ignore.map { " and is not the ignore index \($0)" } ?? ""
                throw KilnError.invalidValue(op: check.op, message: "\(check.what) \(v[p]) at position \(p) of '\(name)' is outside [0, \(check.limit))\(ignored)")
            }
        }
        for (b, value) in byBuffer {
            let staging = feedStaging[b]!
            stage(value, into: staging)
            let bytes = value.shape.count * elementSize(value.dtype)
            try buffers[b].write(context, from: staging, bytes: bytes, blocking: false)
            counters.uploads += 1
            counters.uploadBytes += bytes
        }
        for g in groupings {
            guard case .int32(let ids)? = byBuffer[g.spec.idsBuffer]?.storage else { continue }
            counters.uploadBytes += try g.group(ids, context: context, scratch: scratch)
            counters.uploads += 4
        }
        for (k, kernel) in program.kernels.enumerated() {
            switch kernel.kind {
            case .allReduceStart(let b):
                let reads = try allReduce.start(b, kernel: kernel, buffers: buffers)
                counters.downloads += reads.count
                counters.downloadBytes += reads.bytes
            case .allReduceFinish(let b):
                let writes = try allReduce.finish(b, kernel: kernel, buffers: buffers)
                counters.uploads += writes.count
                counters.uploadBytes += writes.bytes
            default:
                for i in launchesOf[k] {
                    let launch = launches[i]
                    if profiling {
                        try launch.kernel.enqueue(context, global: launch.spec.global, local: launch.spec.local, event: &events[i])
                    } else {
                        try launch.kernel.enqueue(context, global: launch.spec.global, local: launch.spec.local, event: nil)
                    }
                }
                try allReduce.progress()
            }
            if checkNumerics { try checkOutputs(of: k) }
        }
        for (f, o) in program.fetches.enumerated() {
            let bytes = o.shape.count * elementSize(o.dtype)
            try check(clEnqueueReadBuffer(context.queue, buffers[o.location.buffer].mem, cl_bool(CL_FALSE), o.location.byteOffset,
                                          bytes, fetchStaging[f], 0, nil, nil), "clEnqueueReadBuffer(fetch \(f))")
            counters.downloads += 1
            counters.downloadBytes += bytes
        }
        if let fault = injectedFault {
            injectedFault = nil
            try context.finish()
            try check(fault, "clFinish")
        }
        try context.finish()
        counters.runs += 1
        if profiling { try collectProfile() }
        return program.fetches.enumerated().map { f, o in unstage(fetchStaging[f], shape: o.shape, dtype: o.dtype) }
    }

    /// Writes zeros into every feed buffer (for timing kernels on defined values).
    func zeroFeeds() throws {
        for (b, decl) in program.buffers.enumerated() where decl.kind == .feed {
            let zeros = [UInt8](repeating: 0, count: decl.bytes)
            try zeros.withUnsafeBytes { try buffers[b].write(context, from: $0.baseAddress!, bytes: decl.bytes, blocking: true) }
        }
    }

    /// Seconds per run of program kernel `k`'s launches, by the wall clock from enqueue to
    /// finish: after a first run (which builds what the driver builds lazily), repeated until
    /// about `budget` seconds have passed (twice where one run takes half of it), or measured
    /// once if one run takes longer than `giveUpAfter` (a candidate already known to lose).
    func secondsPerRun(kernel k: Int, budget: Double, giveUpAfter: Double = .infinity) throws -> Double {
        func runs(_ count: Int) throws -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<count {
                for i in launchesOf[k] {
                    try launches[i].kernel.enqueue(context, global: launches[i].spec.global, local: launches[i].spec.local, event: nil)
                }
            }
            try context.finish()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(count)
        }
        _ = try runs(1)
        let once = try runs(1)
        if once > giveUpAfter { return once }
        // A long run is timed twice: one stall (another process on the cores) must not make a
        // kernel look 10x slower and lose for good, since the choice is cached.
        if once >= budget / 2 { return min(once, try runs(1)) }
        return min(once, try runs(max(1, min(100, Int(budget / max(once, 1e-7))))))
    }

    private func checkOutputs(of k: Int) throws {
        let kernel = program.kernels[k]
        for (i, o) in kernel.outputs.enumerated() where o.dtype != .int32 {
            let bytes = o.shape.count * elementSize(o.dtype)
            var host = [UInt8](repeating: 0, count: max(bytes, 8))
            try host.withUnsafeMutableBytes { try buffers[o.location.buffer].read(context, into: $0.baseAddress!, bytes: bytes, offset: o.location.byteOffset) }
            let values = unstage(&host, shape: o.shape, dtype: o.dtype).doubles
            if let e = values.firstIndex(where: { !$0.isFinite }) {
                throw program.nonFinite(kernel: kernel, output: i, element: e, value: values[e], run: counters.runs + 1)
            }
        }
    }

    private func elementSize(_ dtype: DType) -> Int { dtype == .int32 ? 4 : program.realType.byteSize }

    /// Copies a host tensor into staging memory in the device's element type.
    private func stage(_ value: HostTensor, into p: UnsafeMutableRawPointer) {
        let double = program.realType == .float64
        switch value.storage {
        case .int32(let v): v.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        case .float32(let v):
            if double { for (i, x) in v.enumerated() { p.storeBytes(of: Double(x), toByteOffset: i * 8, as: Double.self) } }
            else { v.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
        case .float64(let v):
            if double { v.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
            else { for (i, x) in v.enumerated() { p.storeBytes(of: Float(x), toByteOffset: i * 4, as: Float.self) } }
        }
    }

    private func unstage(_ p: UnsafeMutableRawPointer, shape: Shape, dtype: DType) -> HostTensor {
        let n = shape.count
        if dtype == .int32 {
            return HostTensor(unchecked: shape, .int32(Array(UnsafeBufferPointer(start: p.assumingMemoryBound(to: Int32.self), count: n))))
        }
        if program.realType == .float64 {
            return HostTensor(unchecked: shape, .float64(Array(UnsafeBufferPointer(start: p.assumingMemoryBound(to: Double.self), count: n))))
        }
        return HostTensor(unchecked: shape, .float32(Array(UnsafeBufferPointer(start: p.assumingMemoryBound(to: Float.self), count: n))))
    }

    private func collectProfile() throws {
        for (i, launch) in launches.enumerated() {
            guard let e = events[i] else { continue }
            var start: cl_ulong = 0, end: cl_ulong = 0
            try check(clGetEventProfilingInfo(e, cl_profiling_info(CL_PROFILING_COMMAND_START), 8, &start, nil), "clGetEventProfilingInfo")
            try check(clGetEventProfilingInfo(e, cl_profiling_info(CL_PROFILING_COMMAND_END), 8, &end, nil), "clGetEventProfilingInfo")
            clReleaseEvent(e)
            events[i] = nil
            let k = launch.spec.kernel
            var entry = profile[k] ?? (0, 0, 0, [])
            if launch.spec.function == program.kernels[k].name || !launches.contains(where: { $0.spec.kernel == k && $0.spec.function == program.kernels[k].name }) {
                entry.runs += 1
                entry.nanoseconds += end &- start
            } else {
                entry.helperNanoseconds += end &- start
                entry.helpers.insert(launch.spec.function)
            }
            profile[k] = entry
        }
    }

    /// Per kernel: runs, total milliseconds, GFLOP/s (matmuls) or GB/s (the rest), and the
    /// time of helper launches (packing, fills), from OpenCL event timestamps (collected when
    /// `OpenCLOptions.profile`, `KILN_PROFILE=1`).
    public func profileReport() -> String {
        var lines = ["kernel                                  runs   total ms   rate"]
        var total: UInt64 = 0
        for (k, entry) in profile.sorted(by: { $0.value.nanoseconds + $0.value.helperNanoseconds > $1.value.nanoseconds + $1.value.helperNanoseconds }) {
            let kernel = program.kernels[k]
            let seconds = Double(entry.nanoseconds) / 1e9
            total += entry.nanoseconds + entry.helperNanoseconds
            let rate: String
            if case .matmul = kernel.kind {
                rate = String(format: "%.1f GFLOP/s", Double(kernel.flops * entry.runs) / max(seconds, 1e-12) / 1e9)
                    + (matmulKernels[kernel.name].map { " (\($0))" } ?? "")
            } else {
                rate = String(format: "%.2f GB/s", Double(kernel.bytesMoved(realSize: program.realType.byteSize) * entry.runs) / max(seconds, 1e-12) / 1e9)
            }
            var line = kernel.name.padding(toLength: 40, withPad: " ", startingAt: 0)
                + String(format: "%6d %10.3f   ", entry.runs, seconds * 1e3) + rate
            if entry.helperNanoseconds > 0 {
                line += String(format: "   + %.3f ms in %@", Double(entry.helperNanoseconds) / 1e6, entry.helpers.sorted().joined(separator: ", "))
            }
            lines.append(line)
        }
        lines.append(String(format: "total %.3f ms on %@", Double(total) / 1e6, context.device.name))
        return lines.joined(separator: "\n")
    }
}
