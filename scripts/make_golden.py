#!/usr/bin/env python3
"""Generate PyTorch golden-value fixtures for Kiln's Swift tests.

Writes three JSON files under Tests/Fixtures/ (relative to the repository root):

  ops.json     {"cases": [...]}: per-op forward outputs and backward gradients
               (neg, exp, log, sqrt, tanh, sigmoid, relu, add, sub, mul, div,
               maximum, minimum, gelu, geluDerivative, erf, sum, mean, max, matmul (batched too), transpose, reshape, softmax, logSoftmax,
               broadcastTo, gather, scatterAdd, softmaxCrossEntropy, argmax, accuracy, maxPool (also
               of channels-last windows),
               oneHot, unfold, fold, select, slice, pad, concat).
               Each case is {"name", "op", "attrs", "inputs", "output",
               "upstream", "grads"} where grads[i] = d(sum(output * upstream))
               / d(inputs[i]), or null for integer inputs and for the
               non-differentiable ops (argmax, accuracy, oneHot, whose upstream
               is null).
  mlp.json     a 2-layer ReLU MLP with softmax cross-entropy: inputs, params,
               logits, loss and parameter gradients.
  conv.json    conv2d -> relu -> max_pool2d -> conv2d (stride, dilation) -> avg_pool2d, and a
               padded max pool with a tie: input, weights, output, gradients; batch norm's
               training step (output, gradients, running statistics) and evaluation.
  transformer.json  a tiny character-level GPT (scripts/charlm_reference.py): parameters under
               Kiln's names, ids, targets, logits, loss and every parameter's gradient.
  window.json  the word-window NER classifier (embedding lookup -> concat ->
               tanh layer -> linear -> softmax cross-entropy): ids, labels,
               params (E, W1, b1, W2, b2), logits, loss and gradients.

Conventions: every tensor is {"shape": [...], "data": [...]} with data
flattened row-major (C order); scalars have shape [] and one data element.
Floats are float64 written with full (round-trip) precision; integer tensors
are written as JSON integers. Linear layers are y = x @ W + b with W of shape
[in, out]. Softmax cross-entropy is F.cross_entropy with reduction='mean'.
Everything is computed in torch.float64 from fixed seeds, so reruns give
identical files (for the same torch version).

Run from anywhere:

    python3 scripts/make_golden.py

If torch cannot be imported, the script installs the CPU wheel
(torch==2.13.0+cpu, plus its pure-Python dependencies) with pip and reruns
itself. The Swift tests read the JSON files directly; Python is not needed to
run them.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_setup import ensure_torch  # noqa: E402

ensure_torch(__file__)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_default_dtype(torch.float64)
DT = torch.float64

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "Tests" / "Fixtures"


# ---------------------------------------------------------------------------
# Tensor <-> JSON helpers


def tj(t):
    """Tensor (or None) -> {"shape", "data"} (or None)."""
    if t is None:
        return None
    t = t.detach()
    shape = list(t.shape)
    if t.is_floating_point():
        data = t.double().flatten().tolist()
    else:
        data = [int(v) for v in t.flatten().tolist()]
    return {"shape": shape, "data": data}


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def write_dict(path, obj):
    """One top-level key per line, compact values."""
    lines = [f"  {json.dumps(k)}: {dumps(v)}" for k, v in obj.items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")


def write_cases(path, cases):
    body = ",\n".join("  " + dumps(c) for c in cases)
    path.write_text('{"cases": [\n' + body + "\n]}\n")


QUANT = 64.0


def q(t):
    """Round to a multiple of 1/64: keeps the JSON short and makes linear ops exact."""
    return torch.round(t * QUANT) / QUANT


def randn(*shape):
    """Seeded standard-normal values, quantized to multiples of 1/64."""
    return q(torch.randn(shape, dtype=DT))


def rand(*shape):
    """Seeded uniform [0, 1) values, quantized to multiples of 1/64."""
    return q(torch.rand(shape, dtype=DT))


# ---------------------------------------------------------------------------
# ops.json


class Cases:
    def __init__(self):
        self.cases = []
        self.names = set()

    def add(self, name, op, attrs, inputs, fn, differentiable=True, check=None):
        assert name not in self.names, name
        self.names.add(name)
        if check is not None:
            assert check(*inputs), f"{name}: input check failed (accidental tie?)"
        leaves = []
        for x in inputs:
            x = x.detach().clone()
            if differentiable and x.is_floating_point():
                x.requires_grad_(True)
            leaves.append(x)
        out = fn(*leaves)
        if differentiable:
            upstream = randn(*out.shape)
            float_leaves = [x for x in leaves if x.requires_grad]
            gs = torch.autograd.grad(out, float_leaves, grad_outputs=upstream, allow_unused=True)
            gmap = {id(x): (g if g is not None else torch.zeros_like(x)) for x, g in zip(float_leaves, gs)}
            grads = [tj(gmap.get(id(x))) for x in leaves]
        else:
            upstream = None
            grads = [None for _ in leaves]
        self.cases.append({
            "name": name,
            "op": op,
            "attrs": attrs,
            "inputs": [tj(x) for x in leaves],
            "output": tj(out),
            "upstream": tj(upstream),
            "grads": grads,
        })


def build_ops():
    torch.manual_seed(0)
    c = Cases()

    # ---- unary
    c.add("neg_2x3", "neg", {}, [randn(2, 3)], lambda x: -x)
    c.add("exp_2x3", "exp", {}, [randn(2, 3)], torch.exp)
    c.add("log_2x3", "log", {}, [rand(2, 3) * 3 + 0.125], torch.log)
    c.add("sqrt_2x3", "sqrt", {}, [rand(2, 3) * 3 + 0.125], torch.sqrt)
    c.add("tanh_2x3", "tanh", {}, [randn(2, 3) * 1.5], torch.tanh)
    c.add("sigmoid_2x3", "sigmoid", {}, [randn(2, 3) * 2], torch.sigmoid)
    r = randn(3, 4)
    r[0, 1] = 0.0
    r[1, 2] = 0.0
    r[2, 0] = 0.0
    c.add("relu_3x4_with_zeros", "relu", {}, [r], torch.relu)
    c.add("exp_scalar", "exp", {}, [randn()], torch.exp)

    # ---- binary
    def pos_away(*shape):
        """Values with |v| in [0.5, 2.0], random sign (safe denominators)."""
        mag = rand(*shape) * 1.5 + 0.5
        sign = torch.where(rand(*shape) < 0.5, -1.0, 1.0)
        return mag * sign

    binops = {
        "add": torch.add,
        "sub": torch.sub,
        "mul": torch.mul,
        "div": torch.div,
        "maximum": torch.maximum,
        "minimum": torch.minimum,
    }
    def no_equal(a, b):
        a, b = torch.broadcast_tensors(a, b)
        return not bool((a == b).any())

    for op, fn in binops.items():
        rhs = pos_away if op == "div" else randn
        chk = no_equal if op in ("maximum", "minimum") else None
        c.add(f"{op}_same_2x3", op, {}, [randn(2, 3), rhs(2, 3)], fn, check=chk)
        c.add(f"{op}_bcast_3x1x4_2x1", op, {}, [randn(3, 1, 4), rhs(2, 1)], fn, check=chk)
        c.add(f"{op}_bcast_2x3_scalar", op, {}, [randn(2, 3), rhs()], fn, check=chk)
        if op in ("sub", "div", "maximum"):
            c.add(f"{op}_bcast_scalar_2x3", op, {}, [randn(), rhs(2, 3)], fn, check=chk)
        if op in ("add", "mul"):
            c.add(f"{op}_bcast_1x4_3x1", op, {}, [randn(1, 4), rhs(3, 1)], fn, check=chk)

    # maximum / minimum with exact ties
    for op in ("maximum", "minimum"):
        fn = binops[op]
        a = randn(2, 4)
        b = randn(2, 4)
        b[0, 0] = a[0, 0]
        b[0, 2] = a[0, 2]
        b[1, 1] = a[1, 1]
        b[1, 3] = a[1, 3]
        c.add(f"{op}_ties_same_2x4", op, {}, [a, b], fn)
        s = torch.tensor(0.25)
        a = randn(2, 3)
        a[0, 1] = 0.25
        a[1, 2] = 0.25
        c.add(f"{op}_ties_bcast_2x3_scalar", op, {}, [a, s], fn)

    # ---- reductions over a [2, 3, 4] tensor
    red_specs = [
        ([0], False), ([1], True), ([2], False), ([2], True),
        ([0, 2], True), ([1, 2], False),
        ([0, 1, 2], False), ([0, 1, 2], True),
    ]

    def unique_max(axes):
        def chk(x):
            m = torch.amax(x, dim=axes, keepdim=True)
            return bool(((x == m).sum(dim=axes) == 1).all())
        return chk

    red_fns = {
        "sum": lambda axes, keep: (lambda x: torch.sum(x, dim=axes, keepdim=keep)),
        "mean": lambda axes, keep: (lambda x: torch.mean(x, dim=axes, keepdim=keep)),
        "max": lambda axes, keep: (lambda x: torch.amax(x, dim=axes, keepdim=keep)),
    }
    for op, mk in red_fns.items():
        for axes, keep in red_specs:
            name = f"{op}_2x3x4_axes{''.join(map(str, axes))}_{'keep' if keep else 'nokeep'}"
            c.add(name, op, {"axes": axes, "keepDims": keep}, [randn(2, 3, 4)], mk(axes, keep),
                  check=unique_max(axes) if op == "max" else None)
    # amax with ties: small integer values so maxima repeat
    t = torch.tensor([[[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 0.5, -1.0, 0.5]],
                      [[3.0, 1.0, 3.0, 3.0], [0.0, 2.0, 1.0, 2.0], [0.5, 0.5, 0.25, 0.0]]])
    c.add("max_ties_2x3x4_axes2_nokeep", "max", {"axes": [2], "keepDims": False}, [t],
          lambda x: torch.amax(x, dim=[2], keepdim=False))
    c.add("max_ties_2x3x4_axes0_keep", "max", {"axes": [0], "keepDims": True}, [t],
          lambda x: torch.amax(x, dim=[0], keepdim=True))
    c.add("max_ties_2x3x4_axes012_nokeep", "max", {"axes": [0, 1, 2], "keepDims": False}, [t],
          lambda x: torch.amax(x, dim=[0, 1, 2], keepdim=False))
    c.add("max_ties_2x3x4_axes12_keep", "max", {"axes": [1, 2], "keepDims": True}, [t],
          lambda x: torch.amax(x, dim=[1, 2], keepdim=True))

    # ---- matmul (M=3, K=5, N=4)
    M, K, N = 3, 5, 4
    for ta in (False, True):
        for tb in (False, True):
            a = randn(K, M) if ta else randn(M, K)
            b = randn(N, K) if tb else randn(K, N)

            def mm(x, y, ta=ta, tb=tb):
                return (x.t() if ta else x) @ (y.t() if tb else y)

            name = f"matmul_3x5x4_tA{int(ta)}_tB{int(tb)}"
            c.add(name, "matmul", {"transposeA": ta, "transposeB": tb}, [a, b], mm)
    c.add("matmul_1x3_3x1", "matmul", {"transposeA": False, "transposeB": False},
          [randn(1, 3), randn(3, 1)], lambda x, y: x @ y)

    # ---- transpose
    c.add("transpose_3x5_perm10", "transpose", {"perm": [1, 0]}, [randn(3, 5)],
          lambda x: x.permute(1, 0))
    c.add("transpose_2x3x4_perm201", "transpose", {"perm": [2, 0, 1]}, [randn(2, 3, 4)],
          lambda x: x.permute(2, 0, 1))
    c.add("transpose_2x3x4_perm120", "transpose", {"perm": [1, 2, 0]}, [randn(2, 3, 4)],
          lambda x: x.permute(1, 2, 0))

    # ---- reshape
    c.add("reshape_2x3x4_to_6x4", "reshape", {"shape": [6, 4]}, [randn(2, 3, 4)],
          lambda x: x.reshape(6, 4))
    c.add("reshape_2x6_to_3x2x2", "reshape", {"shape": [3, 2, 2]}, [randn(2, 6)],
          lambda x: x.reshape(3, 2, 2))
    c.add("reshape_1_to_scalar", "reshape", {"shape": []}, [randn(1)],
          lambda x: x.reshape(()))

    # ---- broadcastTo
    c.add("broadcastTo_3x1_to_2x3x4", "broadcastTo", {"shape": [2, 3, 4]}, [randn(3, 1)],
          lambda x: torch.broadcast_to(x, (2, 3, 4)))
    c.add("broadcastTo_scalar_to_2x2", "broadcastTo", {"shape": [2, 2]}, [randn()],
          lambda x: torch.broadcast_to(x, (2, 2)))
    c.add("broadcastTo_4_to_3x4", "broadcastTo", {"shape": [3, 4]}, [randn(4)],
          lambda x: torch.broadcast_to(x, (3, 4)))

    # ---- gather (embedding lookup)
    ids = torch.tensor([[1, 4, 1], [6, 1, 4]], dtype=torch.int64)  # repeated ids
    c.add("gather_ids2x3_table7x4_repeats", "gather", {}, [ids, randn(7, 4)],
          lambda i, tab: tab[i])
    ids = torch.tensor([[0, 0, 0, 0]], dtype=torch.int64)
    c.add("gather_ids1x4_table3x2_allsame", "gather", {}, [ids, randn(3, 2)],
          lambda i, tab: tab[i])

    # ---- softmax cross-entropy
    labels = torch.tensor([2, 0, 4, 1], dtype=torch.int64)
    c.add("softmaxCrossEntropy_4x5_moderate", "softmaxCrossEntropy", {},
          [randn(4, 5) * 2, labels], lambda z, y: F.cross_entropy(z, y, reduction="mean"))
    huge = torch.tensor([[1e4, -1e4, 0.0],
                         [-1e4, -1e4, 1e4],
                         [1e4, 1e4, -1e4]])
    c.add("softmaxCrossEntropy_3x3_huge", "softmaxCrossEntropy", {},
          [huge, torch.tensor([1, 2, 0], dtype=torch.int64)],
          lambda z, y: F.cross_entropy(z, y, reduction="mean"))

    # ---- argmax / accuracy (no ties: continuous random values)
    c.add("argmax_4x5_axis1", "argmax", {"axis": 1}, [randn(4, 5)],
          lambda x: torch.argmax(x, dim=1), differentiable=False, check=unique_max([1]))
    logits = randn(5, 3)
    pred = torch.argmax(logits, dim=1)
    labels = pred.clone()
    labels[1] = (pred[1] + 1) % 3
    labels[3] = (pred[3] + 2) % 3  # 3 of 5 correct -> 0.6
    c.add("accuracy_5x3", "accuracy", {}, [logits, labels],
          lambda z, y: (torch.argmax(z, dim=1) == y).to(DT).mean(), differentiable=False,
          check=lambda z, y: unique_max([1])(z))

    # ---- scatterAdd (the gradient of gather): repeated ids accumulate into their rows
    ids = torch.tensor([[1, 4, 1], [6, 1, 4]], dtype=torch.int64)
    c.add("scatterAdd_ids2x3_values2x3x4_rows7", "scatterAdd", {"rows": 7}, [ids, randn(2, 3, 4)],
          lambda i, v: torch.zeros(7, 4, dtype=DT).index_add(0, i.reshape(-1), v.reshape(-1, 4)))

    # ---- oneHot: F.one_hot as floats; a label equal to ignoreIndex gives a row of zeros (how
    # losses implement ignore_index), also when the ignore index is itself a class
    def one_hot(classes, ignore=None):
        def fn(y):
            keep = torch.ones_like(y, dtype=torch.bool) if ignore is None else y != ignore
            hot = F.one_hot(torch.where(keep, y, torch.zeros_like(y)), classes).to(DT)
            return hot * keep.unsqueeze(-1).to(DT)
        return fn

    c.add("oneHot_labels2x3_classes5", "oneHot", {"classes": 5},
          [torch.tensor([[1, 4, 1], [0, 3, 2]], dtype=torch.int64)], one_hot(5), differentiable=False)
    c.add("oneHot_labels5_classes3_ignore-100", "oneHot", {"classes": 3, "ignoreIndex": -100},
          [torch.tensor([2, -100, 0, 1, -100], dtype=torch.int64)], one_hot(3, -100), differentiable=False)
    c.add("oneHot_labels2x2_classes4_ignore1", "oneHot", {"classes": 4, "ignoreIndex": 1},
          [torch.tensor([[1, 3], [0, 1]], dtype=torch.int64)], one_hot(4, 1), differentiable=False)
    c.add("oneHot_scalar_classes1", "oneHot", {"classes": 1},
          [torch.tensor(0, dtype=torch.int64)], one_hot(1), differentiable=False)

    # ---- unfold / fold: F.unfold and F.fold, in Kiln's layout: patches [N, OH, OW, C, KH, KW]
    # (F.unfold's [N, C*KH*KW, OH*OW] reshaped and permuted), folded back to [N, C, H, W]
    def window(kernel, stride, padding, dilation):
        return {"kernel": list(kernel), "stride": list(stride), "padding": list(padding), "dilation": list(dilation)}

    def out_size(size, k, s, p, d):
        return (size + 2 * p - d * (k - 1) - 1) // s + 1

    def window_case(h, w, kernel, stride, padding, dilation):
        """The window's attrs, output size, F.unfold/F.fold arguments and case-name tag."""
        oh, ow = (out_size(h, kernel[0], stride[0], padding[0], dilation[0]),
                  out_size(w, kernel[1], stride[1], padding[1], dilation[1]))
        kw = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation)
        tag = "k%dx%d_s%dx%d_p%dx%d_d%dx%d" % (kernel + stride + padding + dilation)
        return window(kernel, stride, padding, dilation), oh, ow, kw, tag

    for (h, w, kernel, stride, padding, dilation) in [(5, 6, (3, 3), (1, 1), (1, 1), (1, 1)),
                                                    (7, 6, (2, 3), (2, 1), (1, 0), (1, 2))]:
        attrs, oh, ow, kw, tag = window_case(h, w, kernel, stride, padding, dilation)

        def unfold(x, kw=kw, oh=oh, ow=ow, kernel=kernel):
            n, ch = x.shape[0], x.shape[1]
            return F.unfold(x, **kw).reshape(n, ch, kernel[0], kernel[1], oh, ow).permute(0, 4, 5, 1, 2, 3)

        def fold(cols, kw=kw, h=h, w=w):
            n, oh_, ow_, ch, k0, k1 = cols.shape
            return F.fold(cols.permute(0, 3, 4, 5, 1, 2).reshape(n, ch * k0 * k1, oh_ * ow_), output_size=(h, w), **kw)

        c.add("unfold_2x2x%dx%d_%s" % (h, w, tag), "unfold", attrs, [randn(2, 2, h, w)], unfold)
        c.add("fold_to_2x2x%dx%d_%s" % (h, w, tag), "fold", dict(attrs, height=h, width=w),
              [randn(2, oh, ow, 2, kernel[0], kernel[1])], fold)

    # ---- maxPool: F.max_pool2d; inputs on a 1/64 grid, so some windows hold ties, which go
    # to the first largest element in both
    for (h, w, kernel, stride, padding, dilation) in [(6, 6, (2, 2), (2, 2), (0, 0), (1, 1)),
                                                    (7, 6, (3, 3), (2, 1), (1, 1), (1, 1)),
                                                    (7, 8, (2, 3), (1, 2), (1, 1), (2, 1))]:
        tag = "k%dx%d_s%dx%d_p%dx%d_d%dx%d" % (kernel + stride + padding + dilation)
        c.add("maxPool_2x3x%dx%d_%s" % (h, w, tag), "maxPool", window(kernel, stride, padding, dilation), [randn(2, 3, h, w)],
              lambda x, kernel=kernel, stride=stride, padding=padding, dilation=dilation:
              F.max_pool2d(x, kernel, stride=stride, padding=padding, dilation=dilation))

    # ---- batched matmul: torch.matmul over leading axes [2, 3], each transpose form
    for ta in (False, True):
        for tb in (False, True):
            a = randn(2, 3, 5, 3) if ta else randn(2, 3, 3, 5)
            b = randn(2, 3, 4, 5) if tb else randn(2, 3, 5, 4)

            def bmm(x, y, ta=ta, tb=tb):
                return torch.matmul(x.transpose(-1, -2) if ta else x, y.transpose(-1, -2) if tb else y)

            c.add(f"matmul_batched_2x3_3x5x4_tA{int(ta)}_tB{int(tb)}", "matmul", {"transposeA": ta, "transposeB": tb}, [a, b], bmm)

    # ---- gelu (tanh approximation) and erf, over [-3, 3]
    c.add("gelu_5x7", "gelu", {}, [randn(5, 7) * 1.5], lambda x: F.gelu(x, approximate="tanh"))
    c.add("erf_5x7", "erf", {}, [randn(5, 7) * 1.5], torch.erf)

    # ---- layerNorm / rmsNorm over the last axis, without weights (eps 1e-5)
    c.add("layerNorm_3x2x8", "layerNorm", {}, [randn(3, 2, 8) * 2 + 1], lambda x: F.layer_norm(x, (8,), eps=1e-5))
    c.add("layerNorm_4x5", "layerNorm", {}, [randn(4, 5)], lambda x: F.layer_norm(x, (5,), eps=1e-5))
    c.add("rmsNorm_3x2x8", "rmsNorm", {}, [randn(3, 2, 8) * 2 + 1], lambda x: F.rms_norm(x, (8,), eps=1e-5))

    # ---- softmax / logSoftmax: F.softmax and F.log_softmax along each axis
    for axis in (0, 1, 2):
        c.add(f"softmax_2x3x4_axis{axis}", "softmax", {"axis": axis}, [randn(2, 3, 4) * 3],
              lambda x, axis=axis: F.softmax(x, dim=axis))
        c.add(f"logSoftmax_2x3x4_axis{axis}", "logSoftmax", {"axis": axis}, [randn(2, 3, 4) * 3],
              lambda x, axis=axis: F.log_softmax(x, dim=axis))

    # ---- select (torch.where(m != 0, x, 0)), with zeros in the mask
    m = torch.tensor([[1.0, 0.0, -0.5], [0.0, 0.0, 2.0]])
    x = randn(2, 3)
    c.add("select_2x3_zeros", "select", {}, [m, x], lambda m, x: torch.where(m != 0, x, torch.zeros(())))
    c.add("select_bcast_2x1_2x3", "select", {}, [torch.tensor([[0.0], [1.0]]), randn(2, 3)],
          lambda m, x: torch.where(m != 0, x, torch.zeros(())))

    # ---- slice (x[s:e:k] on every axis), pad (F.pad; interior padding by strided assignment), concat (torch.cat)
    def sliced(starts, ends, steps):
        return lambda x: x[tuple(slice(s, e, k) for s, e, k in zip(starts, ends, steps))]
    for starts, ends, steps in [([1, 0, 1], [3, 5, 4], [1, 2, 2]), ([0, 3, 0], [3, 5, 3], [2, 1, 3]), ([0, 2, 0], [3, 2, 4], [1, 1, 1])]:
        name = "slice_3x5x4_" + "_".join(f"{s}to{e}by{k}" for s, e, k in zip(starts, ends, steps))
        c.add(name, "slice", {"starts": starts, "ends": ends, "steps": steps}, [randn(3, 5, 4)], sliced(starts, ends, steps))

    def padded(low, high, interior, value):
        def fn(x):
            dims = [lo + hi + (n - 1) * (i + 1) + 1 for n, lo, hi, i in zip(x.shape, low, high, interior)]
            out = torch.full(dims, float(value), dtype=x.dtype)
            index = tuple(slice(lo, lo + (n - 1) * (i + 1) + 1, i + 1) for n, lo, i in zip(x.shape, low, interior))
            out = out.clone()
            out[index] = x
            return out
        return fn
    c.add("pad_3x4_1_2_0_3", "pad", {"low": [1, 0], "high": [2, 3], "value": 0}, [randn(3, 4)],
          lambda x: F.pad(x, (0, 3, 1, 2)))
    c.add("pad_2x3x2_value_minus1", "pad", {"low": [0, 2, 1], "high": [1, 0, 1], "value": -1}, [randn(2, 3, 2)],
          lambda x: F.pad(x, (1, 1, 2, 0, 0, 1), value=-1.0))
    c.add("pad_3x4_interior_1_2", "pad", {"low": [1, 0], "high": [0, 2], "interior": [1, 2], "value": 2}, [randn(3, 4)],
          padded([1, 0], [0, 2], [1, 2], 2))

    c.add("concat_axis0_2x3_1x3_3x3", "concat", {"axis": 0}, [randn(2, 3), randn(1, 3), randn(3, 3)], lambda *xs: torch.cat(xs, 0))
    c.add("concat_axis1_2x1x4_2x3x4", "concat", {"axis": 1}, [randn(2, 1, 4), randn(2, 3, 4)], lambda *xs: torch.cat(xs, 1))
    c.add("concat_axis_last_2x2_2x1_2x0_2x3", "concat", {"axis": -1}, [randn(2, 2), randn(2, 1), randn(2, 0), randn(2, 3)],
          lambda *xs: torch.cat(xs, -1))

    # ---- gelu's derivative (last, so that the cases above keep their values): PyTorch's
    # gradient of gelu(approximate="tanh"), itself differentiable
    def gelu_derivative(x):
        return torch.autograd.grad(F.gelu(x, approximate="tanh").sum(), x, create_graph=True)[0]

    c.add("geluDerivative_5x7", "geluDerivative", {}, [randn(5, 7) * 1.5], gelu_derivative)

    # ---- maxPool of channels-last windows ([N, H, W, C]; after the cases above, so that they
    # keep their values): F.max_pool2d between permutes
    for (h, w, ch, kernel, stride, padding, dilation) in [(6, 8, 16, (2, 2), (2, 2), (0, 0), (1, 1)),
                                                        (7, 6, 3, (3, 3), (2, 1), (1, 1), (1, 1))]:
        tag = "k%dx%d_s%dx%d_p%dx%d_d%dx%d" % (kernel + stride + padding + dilation)
        c.add("maxPool_channels_last_2x%dx%dx%d_%s" % (h, w, ch, tag), "maxPool",
              dict(window(kernel, stride, padding, dilation), channelsLast=True), [randn(2, h, w, ch)],
              lambda x, kernel=kernel, stride=stride, padding=padding, dilation=dilation:
              F.max_pool2d(x.permute(0, 3, 1, 2), kernel, stride=stride, padding=padding, dilation=dilation).permute(0, 2, 3, 1))

    # ---- unfold / fold of channels-last windows: images [N, H, W, C], patches [N, OH, OW, KH,
    # KW, C] (F.unfold of the permuted images, reshaped and permuted to that order)
    for (h, w, ch, kernel, stride, padding, dilation) in [(5, 6, 4, (3, 3), (1, 1), (1, 1), (1, 1)),
                                                        (7, 6, 3, (2, 3), (2, 1), (1, 0), (1, 2))]:
        attrs, oh, ow, kw, tag = window_case(h, w, kernel, stride, padding, dilation)
        attrs = dict(attrs, channelsLast=True)

        def unfold_last(x, kw=kw, oh=oh, ow=ow, kernel=kernel):
            n, ch = x.shape[0], x.shape[3]
            cols = F.unfold(x.permute(0, 3, 1, 2), **kw).reshape(n, ch, kernel[0], kernel[1], oh, ow)
            return cols.permute(0, 4, 5, 2, 3, 1)

        def fold_last(cols, kw=kw, h=h, w=w):
            n, oh_, ow_, k0, k1, ch = cols.shape
            flat = cols.permute(0, 5, 3, 4, 1, 2).reshape(n, ch * k0 * k1, oh_ * ow_)
            return F.fold(flat, output_size=(h, w), **kw).permute(0, 2, 3, 1)

        c.add("unfold_channels_last_2x%dx%dx%d_%s" % (h, w, ch, tag), "unfold", attrs, [randn(2, h, w, ch)], unfold_last)
        c.add("fold_channels_last_to_2x%dx%dx%d_%s" % (h, w, ch, tag), "fold", dict(attrs, height=h, width=w),
              [randn(2, oh, ow, kernel[0], kernel[1], ch)], fold_last)
    return c.cases


# ---------------------------------------------------------------------------
# mlp.json


def build_mlp():
    torch.manual_seed(1)
    x = randn(4, 6)
    labels = torch.tensor([0, 2, 1, 2], dtype=torch.int64)
    params = {
        "W1": randn(6, 5) * 0.5,
        "b1": randn(5) * 0.1,
        "W2": randn(5, 3) * 0.5,
        "b2": randn(3) * 0.1,
    }
    for p in params.values():
        p.requires_grad_(True)
    pre = x @ params["W1"] + params["b1"]
    assert bool((pre != 0).all()), "pre-activation hit exactly 0 (relu kink)"
    h = torch.relu(pre)
    logits = h @ params["W2"] + params["b2"]
    loss = F.cross_entropy(logits, labels, reduction="mean")
    loss.backward()
    return {
        "x": tj(x),
        "labels": tj(labels),
        "params": {k: tj(v) for k, v in params.items()},
        "logits": tj(logits),
        "loss": tj(loss),
        "grads": {k: tj(v.grad) for k, v in params.items()},
    }, h


# ---------------------------------------------------------------------------
# window.json


def build_window():
    torch.manual_seed(2)
    V, D, W, B, H, C = 12, 4, 5, 3, 6, 5
    # id 7 repeats inside window 0; ids 3 and 7 repeat across windows; 0 appears once.
    ids = torch.tensor([[7, 3, 7, 10, 1],
                        [3, 5, 9, 3, 7],
                        [0, 11, 3, 2, 5]], dtype=torch.int64)
    labels = torch.tensor([1, 4, 0], dtype=torch.int64)
    params = {
        "E": randn(V, D) * 0.5,
        "W1": randn(W * D, H) * 0.3,
        "b1": randn(H) * 0.1,
        "W2": randn(H, C) * 0.5,
        "b2": randn(C) * 0.1,
    }
    for p in params.values():
        p.requires_grad_(True)
    x = params["E"][ids].reshape(B, W * D)
    h = torch.tanh(x @ params["W1"] + params["b1"])
    logits = h @ params["W2"] + params["b2"]
    loss = F.cross_entropy(logits, labels, reduction="mean")
    loss.backward()
    return {
        "ids": tj(ids),
        "labels": tj(labels),
        "params": {k: tj(v) for k, v in params.items()},
        "logits": tj(logits),
        "loss": tj(loss),
        "grads": {k: tj(v.grad) for k, v in params.items()},
    }


def build_conv():
    """A small CNN's pieces as torch.nn.functional computes them: conv2d (padding 1) -> relu ->
    max_pool2d 2 -> conv2d (stride 2, dilation 2, no padding, no bias) -> avg_pool2d (3, stride
    1, padding 1), with ties in the max pool (equal values in a window), the output, and the
    gradients of sum(output * upstream) for the input and every weight."""
    torch.manual_seed(5)
    x = randn(2, 3, 9, 8)
    x[0, 0, 0:2, 0:2] = 0.75          # a window of four equal values: the first gets the gradient
    w1, b1 = randn(4, 3, 3, 3) * 0.3, randn(4) * 0.1
    w2 = randn(5, 4, 2, 2) * 0.3
    leaves = [t.clone().requires_grad_(True) for t in (x, w1, b1, w2)]
    xl, w1l, b1l, w2l = leaves
    h = F.max_pool2d(F.relu(F.conv2d(xl, w1l, b1l, padding=1)), 2)
    y = F.avg_pool2d(F.conv2d(h, w2l, stride=2, dilation=2), 3, stride=1, padding=1)
    upstream = randn(*y.shape)
    grads = torch.autograd.grad(y, leaves, grad_outputs=upstream)
    # Without the relu, the tie in the first max-pool window reaches the input.
    xt = x.clone().requires_grad_(True)
    pooled = F.max_pool2d(xt, 2, padding=1)
    up2 = randn(*pooled.shape)
    (gt,) = torch.autograd.grad(pooled, [xt], grad_outputs=up2)
    # Batch norm (nn.BatchNorm2d, momentum 0.1): a training step's output and gradients and
    # the running statistics after it, then evaluation with them.
    bn = torch.nn.BatchNorm2d(3).double()
    with torch.no_grad():
        bn.weight.copy_(randn(3) * 0.5 + 1)
        bn.bias.copy_(randn(3) * 0.5)
    xb = (randn(4, 3, 5, 5) * 2 + 1).requires_grad_(True)
    yb = bn(xb)
    upb = randn(*yb.shape)
    gb = torch.autograd.grad(yb, [xb, bn.weight, bn.bias], grad_outputs=upb)
    bn.eval()
    xe = randn(2, 3, 5, 5)
    with torch.no_grad():
        ye = bn(xe)
    batch_norm = {
        "bn_x": tj(xb), "bn_weight": tj(bn.weight), "bn_bias": tj(bn.bias), "bn_output": tj(yb), "bn_upstream": tj(upb),
        "bn_grad_x": tj(gb[0]), "bn_grad_weight": tj(gb[1]), "bn_grad_bias": tj(gb[2]),
        "bn_running_mean": tj(bn.running_mean), "bn_running_var": tj(bn.running_var), "bn_eval_x": tj(xe), "bn_eval_output": tj(ye),
    }
    # Grouped convolutions (F.conv2d with groups): 2 groups of 2 channels with bias, depthwise
    # with a channel multiplier of 2 and stride 2, and plain depthwise with dilation 2.
    torch.manual_seed(6)
    xg = randn(2, 4, 6, 5)
    wg, bg = randn(6, 2, 3, 3) * 0.3, randn(6) * 0.1
    wm, wd = randn(8, 1, 3, 3) * 0.3, randn(4, 1, 3, 3) * 0.3
    gl = [t.clone().requires_grad_(True) for t in (xg, wg, bg, wm, wd)]
    outs = [F.conv2d(gl[0], gl[1], gl[2], padding=1, groups=2), F.conv2d(gl[0], gl[3], stride=2, padding=1, groups=4),
            F.conv2d(gl[0], gl[4], padding=2, dilation=2, groups=4)]
    ups = [randn(*o.shape) for o in outs]
    ggrads = torch.autograd.grad(sum((o * u).sum() for o, u in zip(outs, ups)), gl)
    grouped = {"grouped_x": tj(xg), "grouped_w": tj(wg), "grouped_b": tj(bg), "multiplier_w": tj(wm), "depthwise_w": tj(wd)}
    for name, o, u in zip(("grouped", "multiplier", "depthwise"), outs, ups):
        grouped[f"{name}_output"], grouped[f"{name}_upstream"] = tj(o), tj(u)
    for name, gr in zip(("x", "w", "b", "multiplier_w", "depthwise_w"), ggrads):
        grouped[f"grouped_grad_{name}"] = tj(gr)
    # Transposed convolutions (F.conv_transpose2d): stride 2, padding 1, output padding 1 with
    # bias (upsampling 4x5 to 8x10), and dilation 2 without bias.
    torch.manual_seed(7)
    xt = randn(2, 3, 4, 5)
    wt1, bt1, wt2 = randn(3, 4, 3, 3) * 0.3, randn(4) * 0.1, randn(3, 2, 2, 2) * 0.3
    tl = [t.clone().requires_grad_(True) for t in (xt, wt1, bt1, wt2)]
    touts = [F.conv_transpose2d(tl[0], tl[1], tl[2], stride=2, padding=1, output_padding=1),
             F.conv_transpose2d(tl[0], tl[3], dilation=2)]
    tups = [randn(*o.shape) for o in touts]
    tgrads = torch.autograd.grad(sum((o * u).sum() for o, u in zip(touts, tups)), tl)
    transposed = {"transposed_x": tj(xt), "transposed_w1": tj(wt1), "transposed_b1": tj(bt1), "transposed_w2": tj(wt2),
                  "transposed_output1": tj(touts[0]), "transposed_upstream1": tj(tups[0]),
                  "transposed_output2": tj(touts[1]), "transposed_upstream2": tj(tups[1])}
    for name, gr in zip(("x", "w1", "b1", "w2"), tgrads):
        transposed[f"transposed_grad_{name}"] = tj(gr)
    return batch_norm | grouped | transposed | {
        "x": tj(x), "w1": tj(w1), "b1": tj(b1), "w2": tj(w2), "output": tj(y), "upstream": tj(upstream),
        "grad_x": tj(grads[0]), "grad_w1": tj(grads[1]), "grad_b1": tj(grads[2]), "grad_w2": tj(grads[3]),
        "maxpool_pad1": tj(pooled), "maxpool_upstream": tj(up2), "maxpool_grad_x": tj(gt),
    }


def build_transformer():
    """A tiny version of the character-level GPT (scripts/charlm_reference.py, the model of
    `kiln train --task charlm`) in float64: vocabulary 7, context 6, width 8, 2 layers, 2 heads,
    batch 3. Its parameters under Kiln's names and layouts (Linear weights [in, out]), ids and
    targets, the logits, the mean cross-entropy and every parameter's gradient."""
    import charlm_reference as lm
    torch.manual_seed(11)
    model = lm.GPT(7, context=6, width=8, layers=2, heads=2).double()
    with torch.no_grad():   # away from the initialization's small values, so every term counts
        for name, p in model.named_parameters():
            p.copy_(randn(*p.shape) * (0.5 if p.dim() >= 2 else 0.2) + (1.0 if name.endswith("ln1.weight") or name.endswith("ln2.weight") or name == "ln.weight" else 0.0))
    ids = torch.randint(0, 7, (3, 6))
    targets = torch.randint(0, 7, (3, 6))
    logits = model(ids)
    loss = F.cross_entropy(logits.reshape(-1, 7), targets.reshape(-1))
    loss.backward()
    rename = {"tokens.weight": "tokens.table", "ln.weight": "norm.weight", "ln.bias": "norm.bias", "head.weight": "head.weight",
              "positions": "positions"}
    parts = {"ln1": "attentionNorm", "q": "attention.query", "k": "attention.key", "v": "attention.value",
             "o": "attention.output", "ln2": "mlpNorm", "fc": "expand", "proj": "contract"}
    params, grads = {}, {}
    for name, p in model.named_parameters():
        linear = name == "head.weight"
        if name.startswith("blocks."):
            _, i, part, kind = name.split(".")
            kiln = f"blocks.{i}.{parts[part]}.{kind}"
            linear = kind == "weight" and part not in ("ln1", "ln2")
        else:
            kiln = rename[name]
        params[kiln] = tj(p.detach().t() if linear else p.detach())
        grads[kiln] = tj(p.grad.t() if linear else p.grad)
    return {"config": {"vocabulary": 7, "context": 6, "width": 8, "layers": 2, "heads": 2},
            "ids": tj(ids), "targets": tj(targets), "params": params, "logits": tj(logits), "loss": tj(loss), "grads": grads}


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    cases = build_ops()
    write_cases(OUT_DIR / "ops.json", cases)
    mlp, h = build_mlp()
    assert (h > 0).any() and (h == 0).any(), "MLP fixture should exercise both relu branches"
    write_dict(OUT_DIR / "mlp.json", mlp)
    write_dict(OUT_DIR / "window.json", build_window())
    write_dict(OUT_DIR / "conv.json", build_conv())
    write_dict(OUT_DIR / "transformer.json", build_transformer())
    for name in ("ops.json", "mlp.json", "window.json", "conv.json", "transformer.json"):
        p = OUT_DIR / name
        print(f"wrote {p.relative_to(ROOT)} ({p.stat().st_size} bytes)")
    print(f"{len(cases)} op cases, torch {torch.__version__}")


if __name__ == "__main__":
    main()
