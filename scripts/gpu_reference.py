#!/usr/bin/env python3
"""PyTorch on CUDA for the workloads `kiln bench` measures; scripts/gpu-check runs it.

    sgemm N   C = A @ B, N x N float32 (torch.mm into a preallocated C), TF32 off
              (torch.backends.cuda.matmul.allow_tf32 = False), for each N of --sizes.
    W1        one epoch: 468 steps of the 784-256-128-10 ReLU MLP, batch 128, softmax
              cross-entropy (mean), SGD lr 0.01 momentum 0.9, on 4 synthetic batches cycled
              (features uniform in [-1, 1], random labels), as `kiln bench step --task
              fashion-mnist`. Timed twice: as PyTorch code is usually written (no
              synchronization inside the epoch), and with loss.item() after every step, as
              Kiln's step returns the loss to the host every step.
    W2        one step of the word-window classifier: ids [512, 5] into a [20000, 50] table
              (dense gradient), Linear 250->128, tanh, Linear 128->5, SGD lr 0.01 momentum
              0.9 on every parameter; blocks of 20 steps, per step, as `kiln bench step
              --task ner`.

Every figure is the median of the repetitions after warm-up, with torch.cuda.synchronize()
before the clock stops. The last line of output is one JSON object with every figure.
Nothing is installed: without torch or CUDA the script says so and exits with status 2.

    python3 gpu_reference.py [--sizes 1024,4096] [--repeats 5] [--device cuda]
"""

import argparse
import json
import statistics
import sys
import time

W1_SIZES, W1_BATCH, W1_STEPS = [784, 256, 128, 10], 128, 468
W2_VOCAB, W2_DIM, W2_WINDOW, W2_HIDDEN, W2_CLASSES, W2_BATCH, W2_BLOCK = 20000, 50, 5, 128, 5, 512, 20
LR, MOMENTUM = 0.01, 0.9


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1024,4096", help="comma-separated GEMM sizes")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions per workload")
    p.add_argument("--device", default="cuda", help="torch device (cuda; cpu only to try the script)")
    args = p.parse_args()
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError as e:
        print(f"skipped: torch cannot be imported ({e})")
        sys.exit(2)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"skipped: torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)")
        sys.exit(2)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def timed(fn, warmup, repeats):
        for _ in range(warmup):
            fn()
        sync()
        out = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            sync()
            out.append(time.perf_counter() - t0)
        return out

    result = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(dev) if cuda else args.device,
        "allow_tf32": torch.backends.cuda.matmul.allow_tf32,
    }
    print(f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}) on {result['device']}, TF32 off")

    gen = torch.Generator(device="cpu").manual_seed(0)
    for n in [int(s) for s in args.sizes.split(",") if s]:
        a = (torch.rand(n, n, generator=gen) * 2 - 1).to(dev)
        b = (torch.rand(n, n, generator=gen) * 2 - 1).to(dev)
        c = torch.empty(n, n, device=dev)
        s = timed(lambda: torch.mm(a, b, out=c), warmup=3, repeats=max(args.repeats, 10))
        med = statistics.median(s)
        result[f"sgemm_{n}_ms"] = med * 1e3
        result[f"sgemm_{n}_gflops"] = 2 * n**3 / med / 1e9
        print(f"sgemm {n}^3: median {med * 1e3:.3f} ms (min {min(s) * 1e3:.3f}, max {max(s) * 1e3:.3f}), "
              f"{2 * n**3 / med / 1e9:.1f} GFLOP/s")
        del a, b, c

    # W1: the Fashion-MNIST MLP.
    torch.manual_seed(0)
    s = W1_SIZES
    model = nn.Sequential(nn.Linear(s[0], s[1]), nn.ReLU(), nn.Linear(s[1], s[2]), nn.ReLU(),
                          nn.Linear(s[2], s[3])).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    data = [((torch.rand(W1_BATCH, s[0], generator=gen) * 2 - 1).to(dev),
             torch.randint(0, s[-1], (W1_BATCH,), generator=gen).to(dev)) for _ in range(4)]

    def w1_epoch(item):
        for i in range(W1_STEPS):
            x, y = data[i % 4]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            if item:
                loss.item()

    for key, item, what in [("w1_epoch_s", False, "no sync inside the epoch"),
                            ("w1_epoch_item_s", True, "loss.item() every step")]:
        t = timed(lambda: w1_epoch(item), warmup=1, repeats=args.repeats)
        med = statistics.median(t)
        result[key] = med
        print(f"W1 epoch (468 steps, {what}): median {med:.4f} s (min {min(t):.4f}, max {max(t):.4f}), "
              f"{W1_STEPS * W1_BATCH / med:.0f} examples/s")

    # W2: the word-window classifier, dense embedding gradient.
    torch.manual_seed(0)
    emb = nn.Embedding(W2_VOCAB, W2_DIM, sparse=False).to(dev)
    head = nn.Sequential(nn.Linear(W2_WINDOW * W2_DIM, W2_HIDDEN), nn.Tanh(), nn.Linear(W2_HIDDEN, W2_CLASSES)).to(dev)
    opt2 = torch.optim.SGD(list(emb.parameters()) + list(head.parameters()), lr=LR, momentum=MOMENTUM)
    data2 = [(torch.randint(0, W2_VOCAB, (W2_BATCH, W2_WINDOW), generator=gen).to(dev),
              torch.randint(0, W2_CLASSES, (W2_BATCH,), generator=gen).to(dev)) for _ in range(4)]
    count = [0]

    def w2_block():
        for _ in range(W2_BLOCK):
            ids, y = data2[count[0] % 4]
            count[0] += 1
            opt2.zero_grad(set_to_none=True)
            loss = F.cross_entropy(head(emb(ids).reshape(W2_BATCH, W2_WINDOW * W2_DIM)), y)
            loss.backward()
            opt2.step()

    t = [x / W2_BLOCK for x in timed(w2_block, warmup=1, repeats=args.repeats)]
    med = statistics.median(t)
    result["w2_step_ms"] = med * 1e3
    print(f"W2 step (batch 512): median {med * 1e3:.3f} ms (min {min(t) * 1e3:.3f}, max {max(t) * 1e3:.3f}), "
          f"{W2_BATCH / med:.0f} examples/s")

    print(json.dumps(result, sort_keys=True, separators=(",", ":")))


if __name__ == "__main__":
    main()
