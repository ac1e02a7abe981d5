import KilnGraph

/// Groups a schedule's `allReduce` nodes into buckets and places each bucket's start and
/// finish kernels.
///
/// Gradients are ready in the order the backward pass computes them. Taking them in that
/// order, a bucket fills up to `capacity` bytes; its start kernel runs right after the last of
/// its tensors is computed and its finish right before the first kernel that reads a sum. So
/// while the first buckets cross the network, the rest of the backward pass goes on, and the
/// optimizer's updates (which read the sums) wait only for the buckets they need.
enum AllReduceBuckets {
    static func place(in kernels: inout [PendingKernel], fusion: Fusion, realSize: Int, capacity: Int) -> [AllReduceBucket] {
        let nodes = fusion.nodes
        var pending = nodes.filter { fusion.needed[$0.id] && $0.op == .allReduce }.map(\.id)
        var buckets: [AllReduceBucket] = []
        func storage(_ id: Int) -> Int {
            var x = fusion.resolve(id)
            while nodes[x].op == .reshape { x = fusion.resolve(nodes[x].inputs[0]) }
            return x
        }
        // Rounds: an all-reduce of another all-reduce's sum waits for the round after it.
        while !pending.isEmpty {
            let unplaced = Set(pending)
            let ready = pending.filter { !unplaced.contains(storage(nodes[$0].inputs[0])) }
            guard !ready.isEmpty else { break }
            pending.removeAll { ready.contains($0) }

            var producerAt: [Int: Int] = [:], firstReaderAt: [Int: Int] = [:]
            for (k, kernel) in kernels.enumerated() {
                for o in kernel.outputs { producerAt[o] = k }
                for i in kernel.inputs where firstReaderAt[storage(i)] == nil { firstReaderAt[storage(i)] = k }
            }
            let members = ready.map { a -> (node: Int, input: Int, ready: Int, needed: Int, bytes: Int) in
                let input = fusion.resolve(nodes[a].inputs[0])
                return (a, input, producerAt[storage(input)] ?? -1, firstReaderAt[a] ?? kernels.count,
                        nodes[a].shape.count * realSize)
            }.sorted { ($0.ready, $0.node) < ($1.ready, $1.node) }

            // Greedy in order of readiness: a bucket closes when it is full, or when its next
            // tensor is computed only after some sum in the bucket is already needed.
            var groups: [[Int]] = []
            var current: [Int] = [], bytes = 0, lastReady = -1, firstNeeded = Int.max
            for (m, member) in members.enumerated() {
                if !current.isEmpty && (bytes + member.bytes > capacity || max(lastReady, member.ready) >= min(firstNeeded, member.needed)) {
                    groups.append(current)
                    (current, bytes, lastReady, firstNeeded) = ([], 0, -1, Int.max)
                }
                current.append(m)
                bytes += member.bytes
                lastReady = max(lastReady, member.ready)
                firstNeeded = min(firstNeeded, member.needed)
            }
            if !current.isEmpty { groups.append(current) }

            var startsAt: [Int: [PendingKernel]] = [:], finishesAt: [Int: [PendingKernel]] = [:]
            for group in groups {
                let b = buckets.count
                var offsets: [Int] = [], elements = 0
                for m in group {
                    offsets.append(elements)
                    elements += nodes[members[m].node].shape.count
                }
                let sums = group.map { members[$0].node }
                buckets.append(AllReduceBucket(nodes: sums, offsets: offsets, elements: elements))
                let lastReady = group.map { members[$0].ready }.max()!
                let firstNeeded = max(group.map { members[$0].needed }.min()!, lastReady + 1)
                startsAt[lastReady + 1, default: []].append(
                    PendingKernel(kind: .allReduceStart(bucket: b), inputs: group.map { members[$0].input }, outputs: [],
                                  nodes: [], root: sums.max()!))
                finishesAt[firstNeeded, default: []].append(
                    PendingKernel(kind: .allReduceFinish(bucket: b), inputs: [], outputs: sums, nodes: sums, root: sums.max()!))
            }
            var placed: [PendingKernel] = []
            for k in 0...kernels.count {
                placed += startsAt[k] ?? []
                placed += finishesAt[k] ?? []
                if k < kernels.count { placed.append(kernels[k]) }
            }
            kernels = placed
        }
        return buckets
    }
}
