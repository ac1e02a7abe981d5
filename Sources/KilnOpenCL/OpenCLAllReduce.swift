import COpenCL
import KilnCompiler
import KilnGraph

/// The OpenCL side of a program's all-reduce buckets.
///
/// With other processes, a bucket's start enqueues reads of its tensors into host memory (the
/// device goes on with the next kernels), and its finish sums them across processes and
/// enqueues the writes back; reads that completed early are summed while the device still
/// computes the rest of the backward pass. In a single process the bucket stays on the device:
/// a start copies into a device buffer of its own and a finish copies out.
final class OpenCLAllReduce {
    let collective: Collective?
    let program: Program
    let context: CLContext
    private let realSize: Int
    private let host: [UnsafeMutableRawPointer]
    private let device: [CLBuffer]
    private var readDone: [cl_event?]
    private var handles: [Int?]
    private var started: [Int] = []

    var distributed: Bool { (collective?.size ?? 1) > 1 }

    init(program: Program, context: CLContext, collective: Collective?) throws {
        self.program = program
        self.context = context
        self.collective = collective
        realSize = program.realType.byteSize
        let distributed = (collective?.size ?? 1) > 1
        host = distributed ? program.buckets.map { .allocate(byteCount: max($0.elements * program.realType.byteSize, 64), alignment: 64) } : []
        device = distributed ? [] : try program.buckets.enumerated().map { b, bucket in
            try CLBuffer(context, bytes: max(bucket.elements * program.realType.byteSize, 64), name: "all-reduce bucket \(b)")
        }
        readDone = [cl_event?](repeating: nil, count: program.buckets.count)
        handles = [Int?](repeating: nil, count: program.buckets.count)
    }

    deinit {
        for p in host { p.deallocate() }
        for e in readDone { if let e { clReleaseEvent(e) } }
    }

    var allocations: Int { host.count + device.count }

    private func span(_ b: Int, _ i: Int) -> (offset: Int, bytes: Int) {
        let r = program.buckets[b].range(of: i)
        return (r.lowerBound * realSize, r.count * realSize)
    }

    /// Host <-> device copies and their bytes (nothing in a single process).
    typealias Transfers = (count: Int, bytes: Int)

    /// Returns the device-to-host reads it enqueued.
    func start(_ b: Int, kernel: Kernel, buffers: [CLBuffer]) throws -> Transfers {
        var reads: Transfers = (0, 0)
        for (i, o) in kernel.inputs.enumerated() {
            let (offset, bytes) = span(b, i)
            guard bytes > 0 else { continue }
            let source = buffers[o.location.buffer].mem
            if distributed {
                var event: cl_event?
                try check(clEnqueueReadBuffer(context.queue, source, cl_bool(CL_FALSE), o.location.byteOffset, bytes,
                                              host[b] + offset, 0, nil, &event),
                          "clEnqueueReadBuffer(all-reduce bucket \(b))")
                // The queue is in order: the last read's completion means the bucket is in.
                if let old = readDone[b] { clReleaseEvent(old) }
                readDone[b] = event
                reads.count += 1
                reads.bytes += bytes
            } else {
                try check(clEnqueueCopyBuffer(context.queue, source, device[b].mem, o.location.byteOffset, offset, bytes, 0, nil, nil),
                          "clEnqueueCopyBuffer(all-reduce bucket \(b))")
            }
        }
        if distributed {
            started.append(b)
            try check(clFlush(context.queue), "clFlush")   // the device starts on the reads now
        }
        return reads
    }

    /// Returns the host-to-device writes it enqueued.
    func finish(_ b: Int, kernel: Kernel, buffers: [CLBuffer]) throws -> Transfers {
        var writes: Transfers = (0, 0)
        if distributed {
            // Sum every bucket up to this one, and any later one whose read is already done.
            for s in started where handles[s] == nil && (s <= b || isComplete(readDone[s])) {
                try startSum(s)
            }
            started.removeAll { handles[$0] != nil }
            if let h = handles[b] {
                handles[b] = nil
                try collective!.wait(h)
            }
        }
        for (i, o) in kernel.outputs.enumerated() {
            let (offset, bytes) = span(b, i)
            guard bytes > 0 else { continue }
            let target = buffers[o.location.buffer].mem
            if distributed {
                try check(clEnqueueWriteBuffer(context.queue, target, cl_bool(CL_FALSE), o.location.byteOffset, bytes, host[b] + offset, 0, nil, nil),
                          "clEnqueueWriteBuffer(all-reduce bucket \(b))")
                writes.count += 1
                writes.bytes += bytes
            } else {
                try check(clEnqueueCopyBuffer(context.queue, device[b].mem, target, offset, o.location.byteOffset, bytes, 0, nil, nil),
                          "clEnqueueCopyBuffer(all-reduce bucket \(b))")
            }
        }
        return writes
    }

    private func startSum(_ b: Int) throws {
        if let e = readDone[b] {
            var wait: cl_event? = e
            try check(clWaitForEvents(1, &wait), "clWaitForEvents(all-reduce bucket \(b))")
            clReleaseEvent(e)
            readDone[b] = nil
        }
        handles[b] = try collective!.startSum(host[b], count: program.buckets[b].elements, dtype: program.realType)
    }

    private func isComplete(_ event: cl_event?) -> Bool {
        guard let event else { return true }
        var status: cl_int = 0
        guard clGetEventInfo(event, cl_event_info(CL_EVENT_COMMAND_EXECUTION_STATUS), MemoryLayout<cl_int>.size, &status, nil) == CL_SUCCESS else { return false }
        return status == CL_COMPLETE
    }

    /// Lets sums in flight progress (called between launches).
    func progress() throws {
        if handles.contains(where: { $0 != nil }) { try collective?.progress() }
    }
}
