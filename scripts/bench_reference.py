#!/usr/bin/env python3
"""Kiln's benchmarks against numpy and PyTorch (CPU), interleaved on this machine.

What it measures (float32 throughout):

  sgemm N=1024, N=2048   C = A @ B for N x N matrices: numpy `a @ b`, PyTorch
                         `torch.mm`, and `kiln bench gemm --device cpu|gpu`.
  sgemm MLP fc1          (128x784) @ (784x256), the MLP's first forward matmul,
                         and (784x128)^T @ (128x256), its weight gradient x^T @ dh:
                         `kiln bench gemm --shape MxKxN [--transpose-a]`.
  W1 epoch               468 training steps of the Fashion-MNIST MLP
                         784-256-128-10 (ReLU), batch 128, softmax cross-entropy
                         (mean), SGD lr 0.01 momentum 0.9, on 4 synthetic batches
                         (features uniform in [-1, 1], random labels) cycled as
                         Kiln does: forward + backward + update. PyTorch uses
                         nn.Linear / F.cross_entropy / torch.optim.SGD; numpy is
                         hand-written backprop with in-place momentum updates.
                         Kiln: `kiln bench step --task fashion-mnist`.
  W2 step                one training step of the word-window classifier:
                         ids [512, 5] from a [20000, 50] embedding table,
                         reshape to [512, 250], Linear 250->128, tanh,
                         Linear 128->5, softmax cross-entropy (mean), SGD
                         lr 0.01 momentum 0.9 on every parameter including the
                         table. The embedding gradient is DENSE in all three
                         (PyTorch nn.Embedding(sparse=False); numpy np.add.at into
                         a zeroed [20000, 50] array; Kiln scatter-adds into a dense
                         gradient), so the momentum update touches the whole table.
                         Timed as blocks of 20 steps, reported per step.
                         Kiln: `kiln bench step --task ner`.

  W4 charlm step         (--charlm) one training step of `kiln train --task charlm`'s
                         character-level GPT (scripts/charlm_reference.py: context
                         128, width 128, 4 layers, 4 heads, batch 32, AdamW with
                         clipping) on 4 random batches of windows of the default
                         corpus, cycled; timed as blocks of 10 steps, reported per
                         step. Kiln: `kiln bench step --task charlm`.

How: the script runs R rounds. In each round, for each workload, it runs every
implementation once (Kiln as a child process with --json, numpy and PyTorch in
this process), alternating Kiln and the references, with the order rotated
from round to round. Each run does its own untimed warm-up and a few timed
repetitions; the run's median is one sample. A cell of the table is the median
of the round samples, with the minimum and maximum over every timed repetition
of every round in brackets (for Kiln: the min_s / max_s it reports). Ratios are
Kiln median / PyTorch median (above 1: Kiln is slower).

Threads: PyTorch uses torch.set_num_threads(2); numpy uses its bundled
OpenBLAS with its default thread count. OPENBLAS_THREAD_TIMEOUT=4 is set
before numpy is imported and in Kiln's environment (Kiln's CPU device calls
the system OpenBLAS), so idle OpenBLAS threads go to sleep at once instead of
spinning on a core that PoCL (Kiln's `gpu` device here) needs.

Budget: with --quick, 3 rounds and fewer repetitions (about 2 minutes on an
otherwise idle 2-core machine); without, 7 rounds and more repetitions (about
6 minutes). Every W1 run, Kiln's included, has one untimed warm-up epoch.
Anything else running on the machine (a `swift build` or `swift test`, say)
distorts every number: the script warns when the CPUs are busy just before it
starts, and at the end reports how many CPUs other processes kept busy during
the run (from /proc/stat minus its own and its children's CPU time). Kiln is
run from a copy of the binary taken at the start (the OpenCL kernels are
embedded in it), so a rebuild during the run cannot mix two builds.

Run from the repository root (or anywhere; paths are resolved from this file):

    python3 scripts/bench_reference.py [--quick] [--rounds R] [--kiln PATH]

Kiln must already be built (`.build/release/kiln` by default); this script does
not build it. It prints a table and, last, one JSON line with every median and
ratio. If torch cannot be imported, the script installs the CPU wheel
(torch==2.13.0+cpu, plus its pure-Python dependencies) with pip and reruns
itself, as scripts/make_golden.py does.
"""

import os

# Before numpy (which torch may import) loads OpenBLAS; inherited by Kiln's processes.
os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"

import argparse  # noqa: E402
import json  # noqa: E402
import hashlib  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_setup import ensure_torch  # noqa: E402

ensure_torch(__file__)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(2)

ROOT = Path(__file__).resolve().parent.parent
IMPLS = ["numpy", "torch", "kiln-cpu", "kiln-gpu"]
LR = 0.01
MOMENTUM = 0.9
W1_SIZES = [784, 256, 128, 10]
W1_BATCH = 128
W1_STEPS = 468
W2_VOCAB, W2_DIM, W2_WINDOW, W2_HIDDEN, W2_CLASSES, W2_BATCH = 20000, 50, 5, 128, 5, 512
W2_BLOCK = 20  # steps per timed repetition, as `kiln bench step --task ner`


def settings(quick):
    """Per-workload warm-up and timed repetitions for one run (one implementation, one round)."""
    if quick:
        return {
            "gemm1024": dict(warmup=1, repeats=5),
            "gemm2048": dict(warmup=1, repeats=3),
            "gemm_mlp": dict(warmup=10, repeats=50),
            "w1": dict(warmup=1, repeats=1),
            "w2": dict(warmup=1, repeats=3),
        }
    return {
        "gemm1024": dict(warmup=2, repeats=10),
        "gemm2048": dict(warmup=1, repeats=5),
        "gemm_mlp": dict(warmup=20, repeats=200),
        "w1": dict(warmup=1, repeats=2),
        "w2": dict(warmup=1, repeats=5),
    }


# ---------------------------------------------------------------------------
# Timing helpers: every function returns a list of seconds, one per timed repetition.


def time_reps(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


class KilnError(Exception):
    pass


def run_kiln(kiln, args):
    """Runs `kiln bench ... --json`; returns (median_s, min_s, max_s) of the repetitions."""
    cmd = [str(kiln), "bench"] + args + ["--json"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise KilnError(f"{' '.join(cmd)} exited {p.returncode}: {(p.stderr or p.stdout).strip()[-400:]}")
    lines = [ln for ln in p.stdout.splitlines() if ln.strip().startswith("{")]
    if not lines:
        raise KilnError(f"{' '.join(cmd)}: no JSON in output: {p.stdout.strip()[-400:]}")
    obj = json.loads(lines[-1])
    return obj["median_s"], obj["min_s"], obj["max_s"]


# ---------------------------------------------------------------------------
# GEMM


class Gemm:
    """C [m, n] = A @ B with inner size k; with trans_a, A is stored [k, m] and read
    transposed (as a weight gradient x^T @ dh reads the layer input)."""

    def __init__(self, m, k, n, trans_a=False):
        rng = np.random.default_rng(0)
        self.a = rng.uniform(-1, 1, (k, m) if trans_a else (m, k)).astype(np.float32)
        self.b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
        self.trans_a = trans_a
        self.ta = torch.from_numpy(self.a.copy())
        self.tb = torch.from_numpy(self.b.copy())
        self.tc = torch.empty(m, n, dtype=torch.float32)
        self.flops = 2.0 * m * k * n

    def numpy(self, warmup, repeats):
        a, b = (self.a.T if self.trans_a else self.a), self.b
        return time_reps(lambda: a @ b, warmup, repeats)

    def torch(self, warmup, repeats):
        a, b, c = (self.ta.t() if self.trans_a else self.ta), self.tb, self.tc
        return time_reps(lambda: torch.mm(a, b, out=c), warmup, repeats)


# ---------------------------------------------------------------------------
# W1: the Fashion-MNIST MLP


def w1_data(seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.uniform(-1, 1, (W1_BATCH, W1_SIZES[0])).astype(np.float32),
             rng.integers(0, W1_SIZES[-1], W1_BATCH)) for _ in range(4)]


class W1Numpy:
    """Hand-written forward/backward of relu(relu(x@W1+b1)@W2+b2)@W3+b3 with momentum SGD."""

    def __init__(self, data):
        rng = np.random.default_rng(1)
        self.params = []
        for fan_in, fan_out in zip(W1_SIZES[:-1], W1_SIZES[1:]):
            bound = 1.0 / np.sqrt(fan_in)
            self.params.append(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32))
            self.params.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
        self.vel = [np.zeros_like(p) for p in self.params]
        self.data = data
        self.rows = np.arange(W1_BATCH)

    def step(self, x, y):
        W1, b1, W2, b2, W3, b3 = self.params
        z1 = x @ W1 + b1
        a1 = np.maximum(z1, 0)
        z2 = a1 @ W2 + b2
        a2 = np.maximum(z2, 0)
        z3 = a2 @ W3 + b3
        e = np.exp(z3 - z3.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        loss = -np.log(p[self.rows, y]).mean()
        g3 = p
        g3[self.rows, y] -= 1
        g3 *= np.float32(1.0 / W1_BATCH)
        gz2 = (g3 @ W3.T) * (z2 > 0)
        gz1 = (gz2 @ W2.T) * (z1 > 0)
        grads = [x.T @ gz1, gz1.sum(0), a1.T @ gz2, gz2.sum(0), a2.T @ g3, g3.sum(0)]
        for prm, v, g in zip(self.params, self.vel, grads):
            v *= np.float32(MOMENTUM)
            v += g
            prm -= np.float32(LR) * v
        return loss

    def epoch(self, steps=W1_STEPS):
        for i in range(steps):
            x, y = self.data[i % 4]
            self.step(x, y)


class W1Torch:
    def __init__(self, data):
        torch.manual_seed(0)
        s = W1_SIZES
        self.model = nn.Sequential(nn.Linear(s[0], s[1]), nn.ReLU(), nn.Linear(s[1], s[2]), nn.ReLU(),
                                   nn.Linear(s[2], s[3]))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.data = [(torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))) for x, y in data]

    def epoch(self, steps=W1_STEPS):
        model, opt = self.model, self.opt
        for i in range(steps):
            x, y = self.data[i % 4]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()


# ---------------------------------------------------------------------------
# W3: the Fashion-MNIST CNN (kiln train --model cnn): conv(1->32, 3x3, pad 1)-BN-ReLU-maxpool 2 ->
# conv(32->64)-BN-ReLU-maxpool 2 -> flatten -> dropout 0.25 -> Linear 3136->128 -> ReLU ->
# dropout 0.25 -> Linear 128->10, Adam lr 1e-3, batch 128


def cnn_model():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10))


class W3Torch:
    def __init__(self, data):
        torch.manual_seed(0)
        self.model = cnn_model()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.data = [(torch.from_numpy(x.copy()).reshape(-1, 1, 28, 28), torch.from_numpy(y.astype(np.int64))) for x, y in data]

    def epoch(self, steps=W1_STEPS):
        model, opt = self.model, self.opt
        model.train()
        for i in range(steps):
            x, y = self.data[i % 4]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()


class W4Torch:
    """The character-level GPT's steps on 4 random batches of windows, as `kiln bench step --task charlm`."""

    def __init__(self):
        import charlm_reference as lm
        self.lm = lm
        chars, train_ids, _ = lm.load_corpus()
        torch.manual_seed(0)
        self.model = lm.GPT(len(chars))
        self.opt = lm.optimizer(self.model)
        gen = torch.Generator()
        gen.manual_seed(0)
        self.data = [lm.random_windows(train_ids, 32, 128, gen) for _ in range(4)]

    def block(self, steps=10):
        for i in range(steps):
            x, y = self.data[i % 4]
            self.lm.train_step(self.model, self.opt, x, y)


# ---------------------------------------------------------------------------
# W2: the word-window classifier


def w2_data(seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, W2_VOCAB, (W2_BATCH, W2_WINDOW)), rng.integers(0, W2_CLASSES, W2_BATCH))
            for _ in range(4)]


class W2Numpy:
    """Hand-written word-window classifier with a dense embedding gradient (np.add.at)."""

    def __init__(self, data):
        rng = np.random.default_rng(2)
        fan1, fan2 = W2_WINDOW * W2_DIM, W2_HIDDEN
        b1, b2 = 1.0 / np.sqrt(fan1), 1.0 / np.sqrt(fan2)
        self.params = [
            rng.standard_normal((W2_VOCAB, W2_DIM)).astype(np.float32),
            rng.uniform(-b1, b1, (fan1, W2_HIDDEN)).astype(np.float32),
            rng.uniform(-b1, b1, W2_HIDDEN).astype(np.float32),
            rng.uniform(-b2, b2, (W2_HIDDEN, W2_CLASSES)).astype(np.float32),
            rng.uniform(-b2, b2, W2_CLASSES).astype(np.float32),
        ]
        self.vel = [np.zeros_like(p) for p in self.params]
        self.data = [(ids.astype(np.intp), y) for ids, y in data]
        self.rows = np.arange(W2_BATCH)
        self.step_count = 0

    def step(self, ids, y):
        E, W1, b1, W2, b2 = self.params
        x = E[ids].reshape(W2_BATCH, W2_WINDOW * W2_DIM)
        h = np.tanh(x @ W1 + b1)
        z = h @ W2 + b2
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        loss = -np.log(p[self.rows, y]).mean()
        g = p
        g[self.rows, y] -= 1
        g *= np.float32(1.0 / W2_BATCH)
        gz = (g @ W2.T) * (1 - h * h)
        gx = (gz @ W1.T).reshape(W2_BATCH * W2_WINDOW, W2_DIM)
        gE = np.zeros_like(E)
        np.add.at(gE, ids.reshape(-1), gx)
        grads = [gE, x.T @ gz, gz.sum(0), h.T @ g, g.sum(0)]
        for prm, v, gr in zip(self.params, self.vel, grads):
            v *= np.float32(MOMENTUM)
            v += gr
            prm -= np.float32(LR) * v
        return loss

    def block(self, steps=W2_BLOCK):
        for _ in range(steps):
            ids, y = self.data[self.step_count % 4]
            self.step_count += 1
            self.step(ids, y)


class W2Torch:
    def __init__(self, data):
        torch.manual_seed(0)
        self.emb = nn.Embedding(W2_VOCAB, W2_DIM, sparse=False)
        self.head = nn.Sequential(nn.Linear(W2_WINDOW * W2_DIM, W2_HIDDEN), nn.Tanh(),
                                  nn.Linear(W2_HIDDEN, W2_CLASSES))
        self.opt = torch.optim.SGD(list(self.emb.parameters()) + list(self.head.parameters()),
                                   lr=LR, momentum=MOMENTUM)
        self.data = [(torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(y.astype(np.int64)))
                     for ids, y in data]
        self.step_count = 0

    def block(self, steps=W2_BLOCK):
        emb, head, opt = self.emb, self.head, self.opt
        for _ in range(steps):
            ids, y = self.data[self.step_count % 4]
            self.step_count += 1
            opt.zero_grad(set_to_none=True)
            x = emb(ids).reshape(W2_BATCH, W2_WINDOW * W2_DIM)
            loss = F.cross_entropy(head(x), y)
            loss.backward()
            opt.step()


# ---------------------------------------------------------------------------
# The benchmark plan: workload -> implementation -> run(round) -> (median_s, min_s, max_s)


def stats_of(seconds):
    return statistics.median(seconds), min(seconds), max(seconds)


def build_plan(kiln, cfg):
    plan = []  # (key, label, unit, scale, {impl: callable or None})

    def kiln_gemm(device, n, c):
        return lambda: run_kiln(kiln, ["gemm", "--device", device, "--size", str(n),
                                       "--repeats", str(c["repeats"]), "--warmup", str(c["warmup"])])

    for n in (1024, 2048):
        c = cfg[f"gemm{n}"]
        g = Gemm(n, n, n)
        plan.append((f"sgemm_{n}", f"sgemm {n}^3 (ms)", "ms", 1e3, g.flops, {
            "numpy": (lambda g=g, c=c: stats_of(g.numpy(c["warmup"], c["repeats"]))),
            "torch": (lambda g=g, c=c: stats_of(g.torch(c["warmup"], c["repeats"]))),
            "kiln-cpu": kiln_gemm("cpu", n, c),
            "kiln-gpu": kiln_gemm("gpu", n, c),
        }))

    # The MLP's own shapes: the first layer forward, and its weight gradient x^T @ dh.
    c = cfg["gemm_mlp"]
    for key, label, (m, k, n), trans_a in [
            ("sgemm_mlp_fc1", "sgemm 128x784 @ 784x256 (ms)", (128, 784, 256), False),
            ("sgemm_mlp_fc1_grad", "sgemm 784x128^T @ 128x256 (ms)", (784, 128, 256), True)]:
        g = Gemm(m, k, n, trans_a)
        kiln_args = lambda device, m=m, k=k, n=n, trans_a=trans_a: (lambda: run_kiln(kiln, [  # noqa: E731
            "gemm", "--device", device, "--shape", f"{m}x{k}x{n}", "--repeats", str(c["repeats"]),
            "--warmup", str(c["warmup"])] + (["--transpose-a"] if trans_a else [])))
        plan.append((key, label, "ms", 1e3, g.flops, {
            "numpy": (lambda g=g: stats_of(g.numpy(c["warmup"], c["repeats"]))),
            "torch": (lambda g=g: stats_of(g.torch(c["warmup"], c["repeats"]))),
            "kiln-cpu": kiln_args("cpu"),
            "kiln-gpu": kiln_args("gpu"),
        }))

    c = cfg["w1"]
    data = w1_data()
    w1n, w1t = W1Numpy(data), W1Torch(data)
    w1_kiln = lambda device, warmup: (lambda: run_kiln(kiln, [  # noqa: E731
        "step", "--task", "fashion-mnist", "--device", device, "--repeats", str(c["repeats"]), "--warmup", str(warmup)]))
    plan.append(("w1_epoch", "W1 epoch, 468 steps (s)", "s", 1.0, None, {
        "numpy": (lambda: stats_of(time_reps(w1n.epoch, c["warmup"], c["repeats"]))),
        "torch": (lambda: stats_of(time_reps(w1t.epoch, c["warmup"], c["repeats"]))),
        "kiln-cpu": w1_kiln("cpu", c["warmup"]),
        "kiln-gpu": w1_kiln("gpu", c["warmup"]),
    }))

    c = cfg["w2"]
    data = w2_data()
    w2n, w2t = W2Numpy(data), W2Torch(data)
    per_step = lambda fn: [t / W2_BLOCK for t in time_reps(fn, c["warmup"], c["repeats"])]  # noqa: E731
    w2_kiln = lambda device: (lambda: run_kiln(kiln, [  # noqa: E731
        "step", "--task", "ner", "--device", device, "--repeats", str(c["repeats"]), "--warmup", str(c["warmup"])]))
    plan.append(("w2_step", "W2 step, batch 512 (ms)", "ms", 1e3, None, {
        "numpy": (lambda: stats_of(per_step(w2n.block))),
        "torch": (lambda: stats_of(per_step(w2t.block))),
        "kiln-cpu": w2_kiln("cpu"),
        "kiln-gpu": w2_kiln("gpu"),
    }))
    if "w3" in cfg:
        c = cfg["w3"]
        w3t = W3Torch(w1_data())
        w3_kiln = lambda device: (lambda: run_kiln(kiln, [  # noqa: E731
            "step", "--task", "fashion-mnist", "--model", "cnn", "--device", device, "--repeats", str(c["repeats"]),
            "--warmup", str(c["warmup"])]))
        plan.append(("w3_epoch", "W3 CNN epoch, 468 steps (s)", "s", 1.0, 468 * 128 * 25.2e6, {
            "numpy": None,
            "torch": (lambda: stats_of(time_reps(w3t.epoch, c["warmup"], c["repeats"]))),
            "kiln-cpu": w3_kiln("cpu"),
            "kiln-gpu": w3_kiln("gpu"),
        }))
    if "w4" in cfg:
        c = cfg["w4"]
        w4t = W4Torch()
        w4_kiln = lambda device: (lambda: run_kiln(kiln, [  # noqa: E731
            "step", "--task", "charlm", "--device", device, "--repeats", str(c["repeats"]), "--warmup", str(c["warmup"])]))
        plan.append(("w4_step", "W4 charlm step, 32x128 tokens (ms)", "ms", 1e3, 23.6e9, {
            "numpy": None,
            "torch": (lambda: stats_of([t / 10 for t in time_reps(w4t.block, c["warmup"], c["repeats"])])),
            "kiln-cpu": w4_kiln("cpu"),
            "kiln-gpu": w4_kiln("gpu"),
        }))
    return plan


def cpu_stat():
    """(busy jiffies, total jiffies) of the whole machine from /proc/stat, or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def snapshot_kiln(kiln):
    """Copies the binary to a temporary folder so that a rebuild during the run cannot mix two
    builds (the OpenCL kernels are embedded in it). Returns (copy, sha256 prefix, mtime)."""
    d = tempfile.mkdtemp(prefix="kiln-bench-")
    copy = Path(d) / "kiln"
    shutil.copy2(kiln, copy)
    digest = hashlib.sha256(copy.read_bytes()).hexdigest()[:12]
    return copy, digest, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(copy.stat().st_mtime))


def busy_cpus(interval=1.0):
    """How many CPUs other processes kept busy over `interval` seconds (from /proc/stat), or None."""
    a = cpu_stat()
    time.sleep(interval)
    b = cpu_stat()
    if not a or not b or b[1] == a[1]:
        return None
    return (os.cpu_count() or 1) * (b[0] - a[0]) / (b[1] - a[1])


def round_order(r):
    """Kiln and the references alternate; the order rotates every round."""
    base = ["kiln-cpu", "torch", "kiln-gpu", "numpy"]
    k = r % len(base)
    return base[k:] + base[:k]


def fmt(x, digits=3):
    if x is None:
        return "n/a"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits - 1}f}" if x >= 1 else f"{x:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds, fewer repetitions (about 2 minutes)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3 with --quick, else 7)")
    ap.add_argument("--kiln", default=str(ROOT / ".build" / "release" / "kiln"), help="the Kiln binary")
    ap.add_argument("--cnn", action="store_true", help="also W3: an epoch of the Fashion-MNIST CNN (minutes per round)")
    ap.add_argument("--only-cnn", action="store_true", help="W3 alone")
    ap.add_argument("--charlm", action="store_true", help="also W4: steps of the character-level GPT")
    ap.add_argument("--only-charlm", action="store_true", help="W4 alone")
    args = ap.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    kiln = Path(args.kiln)
    if not kiln.is_file() or not os.access(kiln, os.X_OK):
        raise SystemExit(f"{kiln}: no Kiln binary (build it first: swift build -c release --product kiln)")
    cfg = settings(args.quick)
    if args.cnn or args.only_cnn:
        cfg["w3"] = dict(warmup=0, repeats=1)
    if args.charlm or args.only_charlm:
        cfg["w4"] = dict(warmup=1, repeats=3)
    original = kiln
    kiln, kiln_sha, kiln_mtime = snapshot_kiln(original)

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; python {platform.python_version()}, "
          f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"OPENBLAS_THREAD_TIMEOUT={os.environ['OPENBLAS_THREAD_TIMEOUT']}; "
          # Which kernels OpenBLAS runs (numpy's and Kiln's CPU device): forced by this variable
          # when set, else detected from the CPU.
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset: detected)')}")
    print(f"# kiln: {original} (sha256 {kiln_sha}..., built {kiln_mtime}), run from a copy in {kiln.parent}")
    print(f"# {rounds} rounds{' (--quick)' if args.quick else ''}; per run: " +
          ", ".join(f"{k} warmup {v['warmup']} x {v['repeats']}" for k, v in cfg.items()))
    busy = busy_cpus()
    if busy is not None and busy > 0.3:
        print(f"# WARNING: {busy:.1f} CPUs were busy just before starting; another process is using the CPUs "
              f"and will distort every number (check with top).")
    sys.stdout.flush()

    t_start = time.perf_counter()
    stat0, own0 = cpu_stat(), own_cpu_seconds()
    plan = build_plan(kiln, cfg)
    if args.only_cnn or args.only_charlm:
        only = {"w3_epoch"} if args.only_cnn else set()
        plan = [p for p in plan if p[0] in only | ({"w4_step"} if args.only_charlm else set())]
    samples = {key: {impl: [] for impl in IMPLS} for key, *_ in plan}  # (median, min, max) per round
    errors = {}
    for r in range(rounds):
        t_round = time.perf_counter()
        for key, _label, _unit, _scale, _flops, impls in plan:
            for impl in round_order(r):
                fn = impls.get(impl)
                if fn is None or (key, impl) in errors:
                    continue
                try:
                    samples[key][impl].append(fn())
                except KilnError as exc:
                    errors[(key, impl)] = str(exc)
                    print(f"! {key} {impl}: {exc}", file=sys.stderr)
        print(f"# round {r + 1}/{rounds}: {time.perf_counter() - t_round:.1f} s", file=sys.stderr)
        sys.stderr.flush()

    total = time.perf_counter() - t_start
    stat1, own1 = cpu_stat(), own_cpu_seconds()

    # Table
    results = {}
    header = f"{'workload':<30}" + "".join(f"{impl + ' median [min-max]':>28}" for impl in IMPLS) + \
        f"{'kiln-cpu/torch':>16}{'kiln-gpu/torch':>16}"
    print()
    print(header)
    print("-" * len(header))
    for key, label, unit, scale, flops, _impls in plan:
        row = {"unit": unit, "median": {}, "min": {}, "max": {}, "rounds": {}}
        cells = []
        for impl in IMPLS:
            s = samples[key][impl]
            if not s:
                cells.append("n/a" if (key, impl) not in errors else "error")
                continue
            med = statistics.median(x[0] for x in s) * scale
            lo = min(x[1] for x in s) * scale
            hi = max(x[2] for x in s) * scale
            row["median"][impl], row["min"][impl], row["max"][impl], row["rounds"][impl] = med, lo, hi, len(s)
            partial = "*" if (key, impl) in errors else ""  # failed in a later round
            cells.append(f"{fmt(med)} [{fmt(lo)}-{fmt(hi)}]{partial}")
        tm = row["median"].get("torch")
        ratios = {}
        for impl in ("kiln-cpu", "kiln-gpu"):
            km = row["median"].get(impl)
            ratios[f"{impl}/torch"] = (km / tm) if (km is not None and tm) else None
        row["ratios"] = ratios
        if flops:
            row["gflops"] = {impl: flops / (m / scale) / 1e9 for impl, m in row["median"].items()}
        results[key] = row
        rtxt = "".join(f"{(format(v, '.2f') + 'x' if v is not None else 'n/a'):>16}" for v in ratios.values())
        print(f"{label:<30}" + "".join(f"{c:>28}" for c in cells) + rtxt)
        if flops:
            print(f"{'  GFLOP/s':<30}" + "".join(
                f"{(format(row['gflops'][i], '.1f') if i in row['gflops'] else ''):>28}" for i in IMPLS))
    print()
    print("Cells: median of per-round medians [min-max over all timed repetitions]; ratios: Kiln median / PyTorch median "
          "(>1 means Kiln is slower). W2: dense embedding gradient everywhere. kiln-gpu is Kiln's OpenCL device.")
    for (key, impl), msg in errors.items():
        done = len(samples[key][impl])
        print(f"ERROR {key} {impl} (not run again after the failure; {done} round(s) before it, marked *): {msg}")
    other_cpus = None
    if stat0 and stat1:
        hz = os.sysconf("SC_CLK_TCK")
        other_cpus = max(0.0, ((stat1[0] - stat0[0]) / hz - (own1 - own0)) / total)
        msg = f"Other processes kept {other_cpus:.2f} CPUs busy on average during the run"
        print(msg + (" -- WARNING: the numbers are distorted; rerun on an idle machine." if other_cpus > 0.1 else "."))
    try:
        changed = hashlib.sha256(original.read_bytes()).hexdigest()[:12] != kiln_sha
    except OSError:
        changed = True
    if changed:
        print(f"Note: {original} changed during the run; every Kiln number above is from the snapshot "
              f"(sha256 {kiln_sha}...).")
    shutil.rmtree(kiln.parent, ignore_errors=True)
    print(f"Total {total:.0f} s; 1-minute load average at the end {os.getloadavg()[0]:.2f} "
          f"(this benchmark alone keeps it near 2).")
    summary = {
        "quick": args.quick, "rounds": rounds, "total_s": round(total, 1), "kiln_sha256": kiln_sha,
        "other_busy_cpus": (round(other_cpus, 3) if other_cpus is not None else None),
        "medians": {k: {"unit": v["unit"], **{i: round(m, 6) for i, m in v["median"].items()}} for k, v in results.items()},
        "ratios": {k: {i: (round(x, 4) if x is not None else None) for i, x in v["ratios"].items()}
                   for k, v in results.items()},
        "errors": {f"{k}/{i}": m for (k, i), m in errors.items()},
    }
    print(json.dumps(summary, separators=(",", ":")))


if __name__ == "__main__":
    main()
