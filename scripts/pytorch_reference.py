#!/usr/bin/env python3
"""PyTorch reference for Kiln's Fashion-MNIST MLP (784-256-128-10, ReLU).

Two subcommands:

  golden          Writes two fixtures under Tests/Fixtures/ (relative to the
                  repository root):

                  fmnist_init.safetensors  float32 initial weights drawn with
                      torch.manual_seed(0) by nn.Linear's default init
                      (fc1, fc2, fc3 in that order, weight before bias), stored
                      in Kiln's layout: fcN.weight is [in, out] (the transpose
                      of torch's [out, in]) and fcN.bias is [out]:
                      fc1.weight [784, 256], fc1.bias [256],
                      fc2.weight [256, 128], fc2.bias [128],
                      fc3.weight [128, 10],  fc3.bias [10].
                  fmnist_first20.json  {"config": {...}, "losses": [20 floats]}:
                      the loss of the forward pass of each of the first 20 SGD
                      steps (before that step's update), starting from those
                      weights. Batch i is training images [128*i, 128*(i+1)) in
                      file order (no shuffling); pixels are float32 value/255,
                      flattened row-major to 784; the model is
                      logits = relu(relu(x@W1+b1)@W2+b2)@W3+b3; the loss is
                      F.cross_entropy (mean) in float32; the optimizer is
                      torch.optim.SGD(lr=0.1, momentum=0.9) (no dampening, no
                      nesterov, no weight decay). Computed with one thread, so
                      reruns give identical files for the same torch version.

  bench-accuracy [--epochs 3] [--seed 0] [--threads 2] [--model mlp|cnn]
                  Trains the same model from a torch.manual_seed(seed) default
                  init for --epochs epochs: batch 128, shuffled every epoch by
                  torch.randperm from a torch.Generator seeded with seed (what
                  RandomSampler(generator=...) does), last partial batch kept,
                  SGD lr 0.1 momentum 0.9. Prints per epoch the mean training
                  loss (weighted by batch size, i.e. the mean over the 60000
                  examples of each example's loss in its forward pass), the
                  test accuracy on the 10000 test images, and the seconds spent
                  training and evaluating; then one JSON line with the final
                  test accuracy. --model cnn trains the CNN of `kiln train
                  --model cnn` instead (Adam lr 1e-3, the same batches).

  charlm [--steps 1000] [--seed 0] [--threads 2] [--data FILE]
                  Trains the character-level GPT of `kiln train --task charlm`
                  (scripts/charlm_reference.py defines it: context 128, width
                  128, 4 layers, 4 heads, batch 32, AdamW lr 1e-3 weight decay
                  0.1 on weights, clip 1.0) and prints one JSON object per
                  evaluation (every 100 steps): step, train_loss, val_loss
                  (nats per character), bits_per_char, seconds.

Data: the IDX gzip files in /usr/share/datasets/fashion-mnist/ (override with
--data-dir or $KILN_FMNIST_DIR), read with gzip + numpy.

Run from anywhere:

    python3 scripts/pytorch_reference.py golden
    python3 scripts/pytorch_reference.py bench-accuracy --epochs 3 --seed 0

If torch cannot be imported, the script installs the CPU wheel
(torch==2.13.0+cpu, plus its pure-Python dependencies) with pip and reruns
itself, as scripts/make_golden.py does. `golden` also needs the `safetensors`
and `numpy` Python packages.
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_setup import ensure_torch  # noqa: E402

ensure_torch(__file__)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "Tests" / "Fixtures"
DEFAULT_DATA_DIR = os.environ.get("KILN_FMNIST_DIR", "/usr/share/datasets/fashion-mnist")

SIZES = [784, 256, 128, 10]
NAMES = ["fc1", "fc2", "fc3"]
BATCH = 128
LR = 0.1
MOMENTUM = 0.9
GOLDEN_SEED = 0
GOLDEN_STEPS = 20


# ---------------------------------------------------------------------------
# IDX reading


def read_idx(path, expected_magic):
    """Decode a gzipped IDX file: big-endian u32 magic, u32 dims, then u8 data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    if magic != expected_magic:
        raise SystemExit(f"{path}: magic {magic}, expected {expected_magic}")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) != offset + count:
        raise SystemExit(f"{path}: {len(raw)} bytes, expected {offset + count} for dims {dims}")
    return np.frombuffer(raw, dtype=np.uint8, count=count, offset=offset).reshape(dims)


def load_split(data_dir, split):
    """(images float32 [N, 784] in [0, 1], labels int64 [N]) for split 'train' or 't10k'."""
    d = Path(data_dir)
    images = read_idx(d / f"{split}-images-idx3-ubyte.gz", 2051)
    labels = read_idx(d / f"{split}-labels-idx1-ubyte.gz", 2049)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise SystemExit(f"{split}: images {images.shape} vs labels {labels.shape}")
    x = torch.from_numpy(images.reshape(images.shape[0], 784).copy()).to(torch.float32) / 255.0
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


# ---------------------------------------------------------------------------
# Model: parameters in Kiln's layout, y = x @ W + b with W [in, out]


def default_init(seed):
    """nn.Linear default init under torch.manual_seed(seed), converted to Kiln's layout.

    Returns an ordered dict name -> float32 contiguous tensor (W as [in, out]).
    """
    torch.manual_seed(seed)
    layers = [nn.Linear(SIZES[i], SIZES[i + 1]) for i in range(len(NAMES))]
    params = {}
    for name, layer in zip(NAMES, layers):
        params[f"{name}.weight"] = layer.weight.detach().t().contiguous().to(torch.float32)
        params[f"{name}.bias"] = layer.bias.detach().clone().contiguous().to(torch.float32)
    return params


def forward(params, x):
    h = x
    for i, name in enumerate(NAMES):
        h = h @ params[f"{name}.weight"] + params[f"{name}.bias"]
        if i < len(NAMES) - 1:
            h = torch.relu(h)
    return h


def make_trainable(params):
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    opt = torch.optim.SGD(list(leaves.values()), lr=LR, momentum=MOMENTUM,
                          dampening=0, weight_decay=0, nesterov=False)
    return leaves, opt


def train_step(leaves, opt, x, y):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(forward(leaves, x), y, reduction="mean")
    loss.backward()
    opt.step()
    return loss.detach()


# ---------------------------------------------------------------------------
# golden


def cmd_golden(args):
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x_train, y_train = load_split(args.data_dir, "train")
    init = default_init(GOLDEN_SEED)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    st_path = OUT_DIR / "fmnist_init.safetensors"
    # One metadata key only: safetensors serializes the metadata map in hash order, which
    # changes from run to run when there are several keys, and the file must be reproducible.
    save_file(init, str(st_path), metadata={
        "description": f"Kiln fmnist MLP 784-256-128-10 relu; nn.Linear default init under "
                       f"torch.manual_seed({GOLDEN_SEED}) (fc1, fc2, fc3 in order); fcN.weight stored "
                       f"[in, out], the transpose of torch's weight; y = x @ W + b; torch {torch.__version__}",
    })

    leaves, opt = make_trainable(init)
    losses = []
    for i in range(GOLDEN_STEPS):
        xb = x_train[BATCH * i: BATCH * (i + 1)]
        yb = y_train[BATCH * i: BATCH * (i + 1)]
        losses.append(float(train_step(leaves, opt, xb, yb)))

    config = {
        "dataset": "fashion-mnist train-images-idx3-ubyte / train-labels-idx1-ubyte",
        "model": "logits = relu(relu(x@W1+b1)@W2+b2)@W3+b3, sizes 784-256-128-10",
        "init": "Tests/Fixtures/fmnist_init.safetensors (nn.Linear default init, torch.manual_seed(0), "
                "W stored [in, out])",
        "seed": GOLDEN_SEED,
        "dtype": "float32",
        "input": "pixel value / 255 as float32, flattened row-major to 784, no other normalization",
        "batch_size": BATCH,
        "batches": "batch i = training examples [128*i, 128*(i+1)) in file order, no shuffling",
        "steps": GOLDEN_STEPS,
        "loss": "mean softmax cross-entropy (F.cross_entropy), recorded in each step's forward pass "
                "before that step's update",
        "optimizer": {"name": "SGD", "lr": LR, "momentum": MOMENTUM, "dampening": 0.0,
                      "nesterov": False, "weight_decay": 0.0,
                      "semantics": "torch.optim.SGD: v = momentum*v + g (v = g on the first step); "
                                   "p = p - lr*v"},
        "torch": torch.__version__,
        "threads": 1,
    }
    js_path = OUT_DIR / "fmnist_first20.json"
    js_path.write_text(json.dumps({"config": config, "losses": losses}, indent=2, allow_nan=False) + "\n")
    print(f"wrote {st_path} ({st_path.stat().st_size} bytes)")
    print(f"wrote {js_path}")
    for i, l in enumerate(losses):
        print(f"step {i:2d} loss {l:.9g}")


# ---------------------------------------------------------------------------
# bench-accuracy


def evaluate(params, x, y, batch=1000):
    correct = 0
    with torch.no_grad():
        for s in range(0, x.shape[0], batch):
            logits = forward(params, x[s:s + batch])
            correct += int((logits.argmax(dim=1) == y[s:s + batch]).sum())
    return correct / x.shape[0]


def cnn_model():
    """The CNN of `kiln train --model cnn` (the same as scripts/bench_reference.py's W3)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10))


def cmd_bench_cnn(args):
    """The CNN from torch.manual_seed(seed), Adam lr 1e-3, batch 128, the same shuffling as the MLP's."""
    torch.set_num_threads(args.threads)
    x_train, y_train = load_split(args.data_dir, "train")
    x_test, y_test = load_split(args.data_dir, "t10k")
    x_train, x_test = x_train.reshape(-1, 1, 28, 28), x_test.reshape(-1, 1, 28, 28)
    n = x_train.shape[0]
    torch.manual_seed(args.seed)
    model = cnn_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator()
    gen.manual_seed(args.seed)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, seed {args.seed}, "
          f"epochs {args.epochs}, batch {BATCH}, CNN, Adam lr 1e-3", flush=True)
    acc, epochs = None, []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for s in range(0, n, BATCH):
            idx = perm[s:s + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            total += float(loss) * idx.shape[0]
        t1 = time.perf_counter()
        model.eval()
        with torch.no_grad():
            acc = sum(int((model(x_test[s:s + 1000]).argmax(dim=1) == y_test[s:s + 1000]).sum())
                      for s in range(0, x_test.shape[0], 1000)) / x_test.shape[0]
        t2 = time.perf_counter()
        epochs.append({"epoch": epoch, "train_loss": total / n, "test_accuracy": acc,
                       "train_s": t1 - t0, "eval_s": t2 - t1})
        print(f"epoch {epoch}: train loss {total / n:.4f}  test accuracy {acc:.4f}  "
              f"train {t1 - t0:.2f}s  eval {t2 - t1:.2f}s  total {t2 - t0:.2f}s", flush=True)
    print(json.dumps({"seed": args.seed, "epochs": args.epochs, "model": "cnn", "final_test_accuracy": acc,
                      "torch": torch.__version__, "threads": torch.get_num_threads(), "per_epoch": epochs}))


def cmd_bench(args):
    if args.model == "cnn":
        return cmd_bench_cnn(args)
    torch.set_num_threads(args.threads)
    x_train, y_train = load_split(args.data_dir, "train")
    x_test, y_test = load_split(args.data_dir, "t10k")
    n = x_train.shape[0]
    leaves, opt = make_trainable(default_init(args.seed))
    gen = torch.Generator()
    gen.manual_seed(args.seed)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, seed {args.seed}, "
          f"epochs {args.epochs}, batch {BATCH}, SGD lr {LR} momentum {MOMENTUM}", flush=True)
    acc = None
    epochs = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for s in range(0, n, BATCH):
            idx = perm[s:s + BATCH]
            loss = train_step(leaves, opt, x_train[idx], y_train[idx])
            total += float(loss) * idx.shape[0]
        t1 = time.perf_counter()
        acc = evaluate(leaves, x_test, y_test)
        t2 = time.perf_counter()
        epochs.append({"epoch": epoch, "train_loss": total / n, "test_accuracy": acc,
                       "train_s": t1 - t0, "eval_s": t2 - t1})
        print(f"epoch {epoch}: train loss {total / n:.4f}  test accuracy {acc:.4f}  "
              f"train {t1 - t0:.2f}s  eval {t2 - t1:.2f}s  total {t2 - t0:.2f}s", flush=True)
    print(json.dumps({"seed": args.seed, "epochs": args.epochs, "final_test_accuracy": acc,
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "per_epoch": epochs}))


def main():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="folder with the IDX .gz files")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("golden", parents=[common],
                   help="write Tests/Fixtures/fmnist_init.safetensors and fmnist_first20.json")
    b = sub.add_parser("bench-accuracy", parents=[common], help="train and report test accuracy per epoch")
    b.add_argument("--epochs", type=int, default=3)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--model", choices=["mlp", "cnn"], default="mlp",
                   help="mlp: the default MLP, SGD with momentum; cnn: kiln train --model cnn's CNN, Adam lr 1e-3")
    c = sub.add_parser("charlm", help="train the character-level GPT and report the held-out loss every 100 steps")
    c.add_argument("--steps", type=int, default=1000)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--data", default="/usr/share/common-licenses")
    args = p.parse_args()
    if args.cmd == "charlm":
        import charlm_reference
        torch.set_num_threads(args.threads)
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, seed {args.seed}", flush=True)
        charlm_reference.train(args.data, steps=args.steps, seed=args.seed, report=lambda p: print(json.dumps(p), flush=True))
    elif args.cmd == "golden":
        cmd_golden(args)
    else:
        cmd_bench(args)


if __name__ == "__main__":
    main()
