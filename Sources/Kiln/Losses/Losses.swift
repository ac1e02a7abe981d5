// Losses as PyTorch's torch.nn.functional defines them, each the mean over the batch (over
// every element for regression losses), built from graph ops so that autodiff derives their
// gradients. A prediction and a target of different shapes are an error naming both, where
// broadcasting would silently pair every prediction with every target.

/// Mean squared error: mean((prediction − target)²).
public func mseLoss(_ prediction: Tensor, _ target: Tensor) throws -> Tensor {
    try requireSameShape("mseLoss", prediction, target)
    let d = try prediction - target
    return try (d * d).mean()
}

/// Mean absolute error: mean(|prediction − target|).
public func l1Loss(_ prediction: Tensor, _ target: Tensor) throws -> Tensor {
    try requireSameShape("l1Loss", prediction, target)
    return try absolute(prediction - target).mean()
}

/// Huber loss: 0.5·d² where |d| < delta, else delta·(|d| − 0.5·delta), with d = prediction − target.
public func huberLoss(_ prediction: Tensor, _ target: Tensor, delta: Double = 1) throws -> Tensor {
    try requireSameShape("huberLoss", prediction, target)
    guard delta > 0, delta.isFinite else {
        throw KilnError.invalidArgument(op: "huberLoss", message: "delta must be a positive number, got \(delta)")
    }
    let a = try absolute(prediction - target)
    let q = try a.minimum(a.graph.constant(delta, a.dtype))   // |d| clipped at delta
    return try (q * q * 0.5 + (a - q) * delta).mean()
}

/// Binary cross-entropy of logits against targets in [0, 1] (PyTorch's
/// binary_cross_entropy_with_logits): mean(max(x, 0) − x·t + log(1 + e^−|x|)), finite for any logits.
public func binaryCrossEntropyWithLogits(_ logits: Tensor, _ target: Tensor) throws -> Tensor {
    try requireSameShape("binaryCrossEntropyWithLogits", logits, target)
    let zero = logits.graph.constant(0, logits.dtype)
    let softplusOfMinusAbs = try (try -absolute(logits)).exp() + 1
    return try (logits.maximum(zero) - logits * target + softplusOfMinusAbs.log()).mean()
}

/// log(softmax(x)) along `axis`, x − max − log Σ exp(x − max) so that large values stay
/// finite: one kernel forward and one backward (`Graph.softmax(_:axis:log:)`).
public func logSoftmax(_ x: Tensor, axis: Int = -1) throws -> Tensor {
    try x.graph.softmax(x, axis: axis, log: true)
}

/// Cross-entropy of logits `[N, C]` (or `[N, T, C]`, any leading axes) against int32 class
/// labels `[N]` (`[N, T]`), the mean over the labels that count, as PyTorch's cross_entropy:
/// - `labelSmoothing` ε: the target is 1 − ε at the label plus ε/C spread over every class;
/// - `ignoreIndex`: labels equal to it (padding) add nothing and are not counted.
/// Without either it is the fused `softmaxCrossEntropy` kernel.
public func crossEntropy(_ logits: Tensor, _ labels: Tensor, labelSmoothing: Double = 0, ignoreIndex: Int? = nil) throws -> Tensor {
    let (z, y) = try classRows("crossEntropy", logits, labels)
    guard (0.0..<1.0).contains(labelSmoothing) else {
        throw KilnError.invalidArgument(op: "crossEntropy", message: "labelSmoothing must be in [0, 1), got \(labelSmoothing)")
    }
    if labelSmoothing == 0 && ignoreIndex == nil {
        return try z.graph.softmaxCrossEntropy(logits: z, labels: y)
    }
    let classes = z.shape[1]
    let logp = try logSoftmax(z, axis: 1)
    let hot = try z.graph.oneHot(y, classes: classes, ignoreIndex: ignoreIndex, dtype: z.dtype)
    let counted = try hot.sum(axes: [1], keepDims: true)          // 1 for a label that counts, 0 for an ignored one
    let target = try hot * (1 - labelSmoothing) + counted * (labelSmoothing / Double(classes))
    return try -(target * logp).sum() / counted.sum()
}

/// Negative log-likelihood of log-probabilities `[N, C]` (any leading axes) against int32
/// labels, the mean over the labels that count (those not equal to `ignoreIndex`).
public func nllLoss(_ logProbabilities: Tensor, _ labels: Tensor, ignoreIndex: Int? = nil) throws -> Tensor {
    let (logp, y) = try classRows("nllLoss", logProbabilities, labels)
    let hot = try logp.graph.oneHot(y, classes: logp.shape[1], ignoreIndex: ignoreIndex, dtype: logp.dtype)
    return try -(hot * logp).sum() / hot.sum()
}

/// |x|, whose gradient at 0 is 0 as PyTorch's (maximum splits it evenly between x and −x).
func absolute(_ x: Tensor) throws -> Tensor { try x.maximum(-x) }

private func requireSameShape(_ op: String, _ prediction: Tensor, _ target: Tensor) throws {
    guard prediction.shape == target.shape else {
        throw KilnError.shapeMismatch(op: op, message: "prediction \(prediction.shape) and target \(target.shape) differ; broadcasting them would pair every prediction with every target, so reshape one to the other's shape")
    }
    guard prediction.dtype == target.dtype, prediction.dtype.isFloatingPoint else {
        throw KilnError.shapeMismatch(op: op, message: "prediction and target must be of one float type, got \(prediction.dtype) and \(target.dtype)")
    }
}

/// Logits `S + [C]` and int32 labels `S` as rows `[N, C]` and `[N]`.
private func classRows(_ op: String, _ logits: Tensor, _ labels: Tensor) throws -> (Tensor, Tensor) {
    guard logits.dtype.isFloatingPoint, labels.dtype == .int32, logits.shape.rank >= 2,
          Array(logits.shape.dims.dropLast()) == labels.shape.dims else {
        throw KilnError.shapeMismatch(op: op, message: "needs float logits S + [C] and int32 labels S, got \(logits.dtype) \(logits.shape) and \(labels.dtype) \(labels.shape)")
    }
    guard logits.shape.rank > 2 else { return (logits, labels) }
    let classes = logits.shape.dims.last!
    return (try logits.reshaped([-1, classes]), try labels.reshaped([labels.shape.count]))
}
