/// A data-parallel job's side of the built-in tasks' training: the same configuration in every
/// process, and rank 0's state copied to the others.
extension Trainer {
    /// What must be the same in every process of a job, one `key value` per line.
    var configuration: String {
        ["task \(task.name)", "model \(task.spec.summary)", "training examples \(task.train.count)", "test examples \(task.test.count)",
         "batch size \(options.batchSize)", "epochs \(options.epochs)", "learning rate \(options.learningRate)",
         "optimizer \(options.optimizer.rule) weight decay \(options.optimizer.weightDecay)", "schedule \(options.schedule)",
         "seed \(options.seed)", "drop last \(options.dropLast)", "device \(options.device.rawValue)",
         "fusion \(options.fusion.map(String.init) ?? "default")", "vocabulary \(task.vocabulary?.tokens.count ?? 0)",
         "all-reduce buckets \(program.buckets.map(\.elements))"].joined(separator: "\n")
    }

    /// Throws the same error in every process when some process was started with another
    /// configuration, naming the first difference of each.
    func checkSameConfiguration(_ job: MPICollective) throws {
        let all = try job.gather(configuration)
        let reference = all[0].split(separator: "\n", omittingEmptySubsequences: false)
        var differences: [String] = []
        for (r, text) in all.enumerated().dropFirst() where text != all[0] {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            let i = (0..<min(lines.count, reference.count)).first { lines[$0] != reference[$0] } ?? min(lines.count, reference.count)
            let theirs = i < lines.count ? String(lines[i]) : "(nothing)", ours = i < reference.count ? String(reference[i]) : "(nothing)"
            differences.append("rank \(r) has \(theirs), rank 0 has \(ours)")
        }
        if !differences.isEmpty {
            throw JobError(message: "the processes were started with different configurations: " + differences.joined(separator: "; "))
        }
    }

    /// Copies rank 0's parameters, optimizer state and place in training to every process.
    public func synchronize() throws {
        guard let job = options.job, job.size > 1 else { return }
        // Every process holds the same model and training program, so all send and receive the
        // same tensors in the same order: the parameters, then every optimizer state tensor of
        // the program (zeros where a process has none yet: only rank 0 read a checkpoint).
        var parameters = try step.parameterValues(), state = try step.optimizerState()
        for name in parameters.keys.sorted() { parameters[name] = try job.broadcast(parameters[name]!) }
        for decl in program.buffers.filter({ $0.kind == .state }).sorted(by: { $0.name < $1.name }) {
            let node = program.graph.nodes[decl.node!]
            state[decl.name] = try job.broadcast(state[decl.name] ?? HostTensor.zeros(node.shape, node.dtype))
        }
        var counters = [Double(epoch), Double(epochStep), Double(step.steps), epochLossSum, Double(epochExamples)]
        try counters.withUnsafeMutableBytes { try job.broadcast($0.baseAddress!, bytes: $0.count) }
        try step.restore(parameters: parameters, optimizerState: state, steps: Int(counters[2]))
        epoch = Int(counters[0])
        epochStep = Int(counters[1])
        epochLossSum = counters[3]
        epochExamples = Int(counters[4])
    }
}
