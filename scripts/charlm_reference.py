"""The character-level GPT of `kiln train --task charlm`, in PyTorch: the corpus, the model, its
initialization, the optimizer, the windows and the held-out evaluation, as Kiln defines them.

Used by scripts/pytorch_reference.py (`charlm`: train and report the held-out loss every 100
steps), scripts/bench_reference.py (W4: step time) and scripts/make_golden.py (the fixture
that checks Kiln's model against this one).

- Corpus: a UTF-8 file, or a folder whose regular files (symbolic links skipped) are joined in
  name order; default /usr/share/common-licenses. Characters are code points; the vocabulary
  is the distinct ones sorted; the first 90% trains, the rest is held out.
- Model: token embedding + learned positions [context, width], pre-LN blocks (LayerNorm,
  multi-head causal attention with separate query/key/value/output projections, LayerNorm, MLP
  width -> 4 width -> width with tanh GELU), a final LayerNorm, a projection to the vocabulary
  without bias. Weights N(0, 0.02); the projections into the residual stream (attention output,
  MLP contraction) N(0, 0.02 / sqrt(2 layers)); biases 0. The causal mask adds -1e9 above the
  diagonal before the softmax.
- Optimizer: AdamW (betas 0.9, 0.999, eps 1e-8), weight decay on parameters of rank 2 and more
  only, gradients clipped by global norm.
- Training windows: random starts; evaluation: every non-overlapping held-out window, in
  batches of 32, the mean loss per character.
"""

import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_CORPUS = "/usr/share/common-licenses"


def load_corpus(path=DEFAULT_CORPUS):
    if os.path.isdir(path):
        names = sorted(os.listdir(path))
        files = [os.path.join(path, n) for n in names
                 if os.path.isfile(os.path.join(path, n)) and not os.path.islink(os.path.join(path, n))]
    else:
        files = [path]
    text = "".join(open(f, "rb").read().decode("utf-8") for f in files)
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    cut = int(len(ids) * 0.9)
    return chars, ids[:cut], ids[cut:]


class Block(nn.Module):
    def __init__(self, width, heads, context):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.q, self.k, self.v, self.o = (nn.Linear(width, width) for _ in range(4))
        self.ln2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 4 * width)
        self.proj = nn.Linear(4 * width, width)
        self.register_buffer("mask", torch.triu(torch.full((context, context), -1e9), diagonal=1))

    def attention(self, x):
        b, t, c = x.shape
        h, d = self.heads, c // self.heads
        q, k, v = (p(x).view(b, t, h, d).transpose(1, 2) for p in (self.q, self.k, self.v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + self.mask[:t, :t]
        y = F.softmax(scores, dim=-1) @ v
        return self.o(y.transpose(1, 2).reshape(b, t, c))

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        return x + self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocabulary, context=128, width=128, layers=4, heads=4):
        super().__init__()
        self.tokens = nn.Embedding(vocabulary, width)
        self.positions = nn.Parameter(torch.zeros(context, width))
        self.blocks = nn.ModuleList(Block(width, heads, context) for _ in range(layers))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocabulary, bias=False)
        residual = 0.02 / math.sqrt(2 * layers)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif ".ln" in name or name.startswith("ln"):
                nn.init.ones_(p)
            elif name.endswith("o.weight") or name.endswith("proj.weight"):
                nn.init.normal_(p, 0, residual)
            else:
                nn.init.normal_(p, 0, 0.02)

    def forward(self, ids):
        x = self.tokens(ids) + self.positions[: ids.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def optimizer(model, lr=1e-3, weight_decay=0.1):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.999), eps=1e-8)


def random_windows(ids, batch, context, generator):
    starts = torch.randint(0, len(ids) - context - 1 + 1, (batch,), generator=generator)
    x = torch.stack([ids[s:s + context] for s in starts.tolist()])
    y = torch.stack([ids[s + 1:s + context + 1] for s in starts.tolist()])
    return x, y


def validation_loss(model, ids, context=128, batch=32):
    starts = list(range(0, len(ids) - context - 1 + 1, context))
    total, windows = 0.0, 0
    model.eval()
    with torch.no_grad():
        for i in range(0, len(starts), batch):
            chunk = starts[i:i + batch]
            x = torch.stack([ids[s:s + context] for s in chunk])
            y = torch.stack([ids[s + 1:s + context + 1] for s in chunk])
            logits = model(x)
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))) * len(chunk)
            windows += len(chunk)
    model.train()
    return total / windows


def train_step(model, opt, x, y, clip=1.0):
    opt.zero_grad(set_to_none=True)
    logits = model(x)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return loss.item()


def train(path=DEFAULT_CORPUS, steps=1000, batch=32, context=128, width=128, layers=4, heads=4, lr=1e-3,
          weight_decay=0.1, clip=1.0, eval_every=100, seed=0, report=print):
    """Trains and calls report(dict) after every evaluation; returns the list of them."""
    chars, train_ids, val_ids = load_corpus(path)
    torch.manual_seed(seed)
    model = GPT(len(chars), context, width, layers, heads)
    opt = optimizer(model, lr, weight_decay)
    gen = torch.Generator()
    gen.manual_seed(seed)
    start, losses, out = time.perf_counter(), [], []
    for step in range(1, steps + 1):
        x, y = random_windows(train_ids, batch, context, gen)
        losses.append(train_step(model, opt, x, y, clip))
        if step % eval_every == 0 or step == steps:
            val = validation_loss(model, val_ids, context)
            point = {"step": step, "train_loss": sum(losses) / len(losses), "val_loss": val,
                     "bits_per_char": val / math.log(2), "seconds": time.perf_counter() - start}
            losses = []
            out.append(point)
            report(point)
    return out
