#!/usr/bin/env python3
"""Which forms of an OpenCL kernel PoCL vectorizes: the figures behind the generated kernels'
shape (BENCHMARKS.md, "Memory-bound kernels at memory speed").

Each form moves a [128, 32, 28, 28] float tensor (the CNN's first activation) inside one
buffer, as Kiln's arena does, and is timed over 20 launches after 3 untimed ones.

With --windows: the window kernels on the CNN's shapes, a work-item per output (the GPU
family's) against a work-item per row (CPU devices'): max pooling 2 x 2 of [128, 32, 28, 28]
and its gradient, unfold and fold of conv2's [128, 32, 14, 14] with 3 x 3 windows, padding 1.
Each form's results are checked against the first's.

With --transposes: the CNN's batched transposes ([N, H·W, C] <-> [N, C, H·W]), element by
element along the rows of one side (the GPU family's) against a work-item per 4 x 4 tile.

Usage: pip install pyopencl; python3 scripts/pocl_kernel_forms.py [--platform NAME] [--windows | --transposes]
"""
import argparse
import time
import warnings

import numpy as np
import pyopencl as cl

N, C, HW = 128, 32, 784
COUNT = N * C * HW
IN, OUT = 4096, 4096 + COUNT + 1024   # offsets into the one buffer, as in an arena

FORMS = f"""
__kernel void indexed(__global float* b0, int n) {{
    const int gid = get_global_id(0); if (gid >= n) return;
    b0[{OUT} + gid] = b0[{IN} + gid] * 2.0f; }}
__kernel void pointer(__global float* b0, int n) {{
    const int gid = get_global_id(0); if (gid >= n) return;
    (b0 + {OUT})[gid] = (b0 + {IN})[gid] * 2.0f; }}
__kernel void unchecked(__global float* b0, int n) {{
    const int gid = get_global_id(0);
    (b0 + {OUT})[gid] = (b0 + {IN})[gid] * 2.0f; }}
__kernel void gathered(__global float* b0, int n) {{
    const int gid = get_global_id(0);
    (b0 + {OUT})[gid] = (b0 + {IN})[gid] - (b0 + 0)[(gid / {HW}) % {C}]; }}
__kernel void rows(__global float* b0, int n) {{
    const int i = get_global_id(0), r = get_global_id(1);
    (b0 + {OUT} + r * {HW})[i] = (b0 + {IN} + r * {HW})[i] - (b0 + 0)[r % {C}]; }}
__kernel void sum_by_groups(__global float* b0, int n) {{
    __local float scratch[256];
    const int o = get_group_id(0), t = get_local_id(0);
    float acc = 0;
    for (int c0 = 0; c0 < {N}; c0++) for (int lane = 0; lane < 4; lane++) {{
        const int c2 = lane * 256 + t; if (c2 >= {HW}) continue;
        acc += (b0 + {IN})[c0 * {C * HW} + o * {HW} + c2]; }}
    scratch[t] = acc; barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = 128; s > 0; s >>= 1) {{ if (t < s) scratch[t] += scratch[t + s]; barrier(CLK_LOCAL_MEM_FENCE); }}
    if (t == 0) (b0 + {OUT})[o] = scratch[0]; }}
__kernel void sum_by_items(__global float* b0, int n) {{
    const int g = get_global_id(0), o = g / 8, part = g % 8;
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    for (int c0 = part * 16; c0 < part * 16 + 16; c0++) {{
        __global const float* p = b0 + {IN} + c0 * {C * HW} + o * {HW};
        for (int e = 0; e < {HW}; e += 8) {{
            a0 += p[e]; a1 += p[e + 1]; a2 += p[e + 2]; a3 += p[e + 3];
            a4 += p[e + 4]; a5 += p[e + 5]; a6 += p[e + 6]; a7 += p[e + 7]; }} }}
    (b0 + {OUT})[g] = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)); }}
"""

# name, what it shows, global size, local size, bytes moved
CASES = [
    ("indexed", "b0[OUT + gid] = b0[IN + gid] * 2, bounds checked (Kiln before)", (COUNT,), (256,), 8 * COUNT),
    ("pointer", "(b0 + OUT)[gid] = (b0 + IN)[gid] * 2, bounds checked", (COUNT,), (256,), 8 * COUNT),
    ("unchecked", "the same, work-groups dividing the range, no check", (COUNT,), (256,), 8 * COUNT),
    ("gathered", "minus a per-channel mean at (gid / 784) % 32", (COUNT,), (256,), 8 * COUNT),
    ("rows", "the same on (element in row, row): the mean once per row", (HW, N * C), (196, 1), 8 * COUNT),
    ("sum_by_groups", "per-channel sum, a work-group per channel sharing the row", (C * 256,), (256,), 4 * COUNT),
    ("sum_by_items", "per-channel sum, a work-item per channel and part, 8 accumulators", (C * 8,), (8,), 4 * COUNT),
]


# Window forms: x at XI, upstream gradient / pooled at G and PO, patches at PA, image out at DX.
WN, WC, WH = 128, 32, 28
PC, PH = 32, 14
XI = 4096
PO = XI + WN * WC * WH * WH + 64
DX = PO + WN * WC * (WH // 2) ** 2 + 64
PA = DX + WN * WC * WH * WH + 64
PX = PA + WN * PH * PH * PC * 9 + 64
PD = PX + WN * PC * PH * PH + 64
WINDOW_TOTAL = PD + WN * PC * PH * PH + 1024

# The per-output forms in straight-line code, as generated for the GPU family.
FIRST = "int best = -1; float m = -INFINITY; " + " ".join(
    f"{{ const int at = (i * 2 + {p}) * {WH} + j * 2 + {q}; const float v = x[at]; if (best < 0 || v > m || isnan(v)) {{ m = v; best = at; }} }}"
    for p in range(2) for q in range(2))
POOL_WRITES = " ".join(f"{{ const int at = (i * 2 + {p}) * {WH} + j * 2 + {q}; out[at] = at == best ? up : 0.0f; }}" for p in range(2) for q in range(2))
UNFOLD_ENTRIES = " ".join(
    f"out[{p * 3 + q}] = ((i + {p - 1}) >= 0 && (i + {p - 1}) < {PH} && (j + {q - 1}) >= 0 && (j + {q - 1}) < {PH}) ? x[(i + {p - 1}) * {PH} + j + {q - 1}] : 0.0f;"
    for p in range(3) for q in range(3))
FOLD_TERMS = " ".join(
    f"if ((r + {1 - p}) >= 0 && (r + {1 - p}) < {PH} && (col + {1 - q}) >= 0 && (col + {1 - q}) < {PH}) sum += image[((r + {1 - p}) * {PH} + col + {1 - q}) * {PC * 9} + {p * 3 + q}];"
    for p in range(3) for q in range(3))

WINDOWS = f"""
__kernel void pool_items(__global float* b0, int n) {{
  const int gid = get_global_id(0); if (gid >= n) return;
  const int j = gid % {WH // 2}, i = (gid / {WH // 2}) % {WH // 2}, plane = gid / {(WH // 2) ** 2};
  __global const float* x = b0 + {XI} + plane * {WH * WH};
  {FIRST} (b0 + {PO})[gid] = m; }}
__kernel void pool_rows(__global float* b0, int n) {{
  const int r = get_global_id(0); if (r >= n) return;
  __global const float* t = b0 + {XI} + r * {2 * WH}; __global const float* u = t + {WH};
  __global float* out = b0 + {PO} + r * {WH // 2};
  for (int o = 0; o < {WH // 2}; o += 2) {{
    const float4 a = vload4(0, t + 2 * o), b = vload4(0, u + 2 * o); float2 m = a.even;
    m = select(m, a.odd, (a.odd > m) | isnan(a.odd)); m = select(m, b.even, (b.even > m) | isnan(b.even));
    m = select(m, b.odd, (b.odd > m) | isnan(b.odd)); vstore2(m, 0, out + o); }} }}
__kernel void pool_grad_items(__global float* b0, int n) {{
  const int gid = get_global_id(0); if (gid >= n) return;
  const int j = gid % {WH // 2}, i = (gid / {WH // 2}) % {WH // 2}, plane = gid / {(WH // 2) ** 2};
  __global const float* x = b0 + {XI} + plane * {WH * WH}; __global float* out = b0 + {DX} + plane * {WH * WH};
  const float up = (b0 + {PO})[gid];
  {FIRST}
  {POOL_WRITES} }}
__kernel void pool_grad_rows(__global float* b0, int n) {{
  const int r = get_global_id(0); if (r >= n) return;
  __global const float* t = b0 + {XI} + r * {2 * WH}; __global const float* u = t + {WH};
  __global const float* g = b0 + {PO} + r * {WH // 2};
  __global float* dt = b0 + {DX} + r * {2 * WH}; __global float* du = dt + {WH};
  for (int o = 0; o < {WH // 2}; o += 2) {{
    const float4 a = vload4(0, t + 2 * o), b = vload4(0, u + 2 * o); const float2 up = vload2(0, g + o), z = (float2)0;
    float2 m = a.even; int2 k = (int2)0, c;
    c = (a.odd > m) | isnan(a.odd); m = select(m, a.odd, c); k = select(k, (int2)1, c);
    c = (b.even > m) | isnan(b.even); m = select(m, b.even, c); k = select(k, (int2)2, c);
    c = (b.odd > m) | isnan(b.odd); m = select(m, b.odd, c); k = select(k, (int2)3, c);
    vstore4(shuffle2(select(z, up, k == 0), select(z, up, k == 1), (uint4)(0, 2, 1, 3)), 0, dt + 2 * o);
    vstore4(shuffle2(select(z, up, k == 2), select(z, up, k == 3), (uint4)(0, 2, 1, 3)), 0, du + 2 * o); }} }}
__kernel void unfold_items(__global float* b0, int n) {{
  const int gid = get_global_id(0); if (gid >= n) return;
  const int ch = gid % {PC}, j = (gid / {PC}) % {PH}, i = (gid / {PC * PH}) % {PH}, b = gid / {PC * PH * PH};
  __global const float* x = b0 + {PX} + (b * {PC} + ch) * {PH * PH}; __global float* out = b0 + {PA} + gid * 9;
  {UNFOLD_ENTRIES} }}
__kernel void unfold_rows(__global float* b0, int n) {{
  const int gid = get_global_id(0); if (gid >= n) return;
  const int ch = gid % {PC}, i = (gid / {PC}) % {PH}, b = gid / {PC * PH};
  __global const float* x = b0 + {PX} + (b * {PC} + ch) * {PH * PH};
  __global float* out = b0 + {PA} + (b * {PH} + i) * {PH * PC * 9} + ch * 9;
  float v[3][{PH + 2}];
  #pragma unroll
  for (int p = 0; p < 3; p++) {{ const int r = i + p - 1, ok = r >= 0 && r < {PH};
    #pragma unroll
    for (int c = 0; c < {PH + 2}; c++) v[p][c] = (ok && c >= 1 && c <= {PH}) ? x[(ok ? r : 0) * {PH} + c - 1] : 0.0f; }}
  #pragma unroll
  for (int j = 0; j < {PH}; j++) {{
    vstore8((float8)(v[0][j], v[0][j + 1], v[0][j + 2], v[1][j], v[1][j + 1], v[1][j + 2], v[2][j], v[2][j + 1]), 0, out + j * {PC * 9});
    out[j * {PC * 9} + 8] = v[2][j + 2]; }} }}
__kernel void fold_items(__global float* b0, int n) {{
  const int gid = get_global_id(0); if (gid >= n) return;
  const int ch = gid % {PC}, col = (gid / {PC}) % {PH}, r = (gid / {PC * PH}) % {PH}, b = gid / {PC * PH * PH};
  __global const float* image = b0 + {PA} + b * {PH * PH * PC * 9} + ch * 9;
  float sum = 0.0f;
  {FOLD_TERMS}
  (b0 + {PD})[((b * {PC} + ch) * {PH} + r) * {PH} + col] = sum; }}
__kernel void fold_rows(__global float* b0, int n) {{
  const int gid = get_global_id(0); if (gid >= n) return;
  const int ch = gid % {PC}, y = (gid / {PC}) % {PH}, b = gid / {PC * PH};
  __global const float* image = b0 + {PA} + b * {PH * PH * PC * 9} + ch * 9;
  __global float* out = b0 + {PD} + ((b * {PC} + ch) * {PH} + y) * {PH};
  float a[{PH}];
  #pragma unroll
  for (int x = 0; x < {PH}; x++) a[x] = 0.0f;
  #pragma unroll
  for (int p = 0; p < 3; p++) {{ const int t = y + 1 - p;
    if (t >= 0 && t < {PH}) {{ __global const float* row = image + t * {PH * PC * 9} + p * 3;
      #pragma unroll
      for (int u = {PH - 1}; u >= 0; u--) {{ const float3 v = vload3(0, row + u * {PC * 9});
        if (u >= 1) a[u - 1] += v.s0;
        a[u] += v.s1;
        if (u + 1 < {PH}) a[u + 1] += v.s2; }} }} }}
  #pragma unroll
  for (int x = 0; x < {PH}; x++) out[x] = a[x]; }}
"""

pool_out, pool_in = WN * WC * (WH // 2) ** 2, WN * WC * WH * WH
patches, image = WN * PH * PH * PC * 9, WN * PC * PH * PH
# name, what, items, result (offset, count), bytes moved
WINDOW_CASES = [
    ("pool_items", "max pool 2 x 2, a work-item per window (GPU family)", pool_out, (PO, pool_out), 4 * (pool_in + pool_out)),
    ("pool_rows", "the same, a work-item per row of windows (CPU devices)", WN * WC * (WH // 2), (PO, pool_out), 4 * (pool_in + pool_out)),
    ("pool_grad_items", "its gradient, a work-item per window", pool_out, (DX, pool_in), 4 * (2 * pool_in + pool_out)),
    ("pool_grad_rows", "its gradient, a work-item per row of windows", WN * WC * (WH // 2), (DX, pool_in), 4 * (2 * pool_in + pool_out)),
    ("unfold_items", "unfold 3 x 3, padding 1, a work-item per patch row", WN * PH * PH * PC, (PA, patches), 4 * (image + patches)),
    ("unfold_rows", "the same, a work-item per (image, channel, output row)", WN * PH * PC, (PA, patches), 4 * (image + patches)),
    ("fold_items", "fold, a work-item per pixel", image, (PD, image), 4 * (image + patches)),
    ("fold_rows", "the same, a work-item per pixel row, accumulators in registers", WN * PC * PH, (PD, image), 4 * (image + patches)),
]


def time_kernel(queue, kernel, global_size, local_size, buffer, count):
    for _ in range(3):
        kernel(queue, global_size, local_size, buffer, np.int32(count))
    queue.finish()
    start = time.perf_counter()
    for _ in range(20):
        kernel(queue, global_size, local_size, buffer, np.int32(count))
    queue.finish()
    return (time.perf_counter() - start) / 20


def windows(ctx, queue):
    buffer = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, WINDOW_TOTAL * 4)
    cl.enqueue_copy(queue, buffer, np.random.default_rng(0).standard_normal(WINDOW_TOTAL, dtype=np.float32))
    program = cl.Program(ctx, WINDOWS).build()
    reference = None
    for index, (name, what, items, (at, count), moved) in enumerate(WINDOW_CASES):
        seconds = time_kernel(queue, cl.Kernel(program, name), ((items + 63) // 64 * 64,), (64,), buffer, items)
        result = np.empty(WINDOW_TOTAL, np.float32)
        cl.enqueue_copy(queue, result, buffer)
        result = result[at:at + count]
        if index % 2 == 0:
            reference = result
        same = "" if index % 2 == 0 else ("  (same results)" if np.array_equal(result, reference) else "  DIFFERENT RESULTS")
        print(f"{seconds * 1e3:7.3f} ms {moved / seconds / 1e9:6.1f} GB/s  {what}{same}")


def transpose_forms(b, r, c):
    """Kernels moving [b, r, c] to [b, c, r]: along the input's rows, along the output's, and
    4 x 4 tiles with the tiles along the longer side neighbours."""
    tiles = f"const int ti = gid % {r // 4}, tj = (gid / {r // 4}) % {c // 4}, bb = gid / {(r // 4) * (c // 4)};" if r >= c \
        else f"const int tj = gid % {c // 4}, ti = (gid / {c // 4}) % {r // 4}, bb = gid / {(r // 4) * (c // 4)};"
    out = IN + b * r * c + 64
    stores = " ".join(f"vstore4((float4)(r0.s{q}, r1.s{q}, r2.s{q}, r3.s{q}), 0, y + {q * r});" for q in range(4))
    return out, f"""
__kernel void along_input(__global float* b0, int n) {{
  const int i = get_global_id(0), row = get_global_id(1);
  (b0 + {out} + (row / {r}) * {r * c} + row % {r})[i * {r}] = (b0 + {IN} + row * {c})[i]; }}
__kernel void along_output(__global float* b0, int n) {{
  const int i = get_global_id(0), row = get_global_id(1);
  (b0 + {out} + row * {r})[i] = (b0 + {IN} + (row / {c}) * {r * c} + row % {c})[i * {c}]; }}
__kernel void tiles(__global float* b0, int n) {{
  const int gid = get_global_id(0); if (gid >= n) return;
  {tiles}
  __global const float* x = b0 + {IN} + bb * {r * c} + ti * {4 * c} + tj * 4;
  const float4 r0 = vload4(0, x), r1 = vload4(0, x + {c}), r2 = vload4(0, x + {2 * c}), r3 = vload4(0, x + {3 * c});
  __global float* y = b0 + {out} + bb * {r * c} + tj * {4 * r} + ti * 4;
  {stores} }}
"""


def transposes(ctx, queue):
    for b, r, c, what in [(128, 784, 32, "conv1's output to NCHW"), (128, 32, 784, "its gradient back"),
                          (128, 196, 64, "conv2's output to NCHW"), (128, 64, 196, "its gradient back")]:
        out, source = transpose_forms(b, r, c)
        count = b * r * c
        buffer = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, (out + count + 1024) * 4)
        host = np.random.default_rng(0).standard_normal(out + count + 1024, dtype=np.float32)
        cl.enqueue_copy(queue, buffer, host)
        expected = host[IN:IN + count].reshape(b, r, c).transpose(0, 2, 1).ravel()
        program = cl.Program(ctx, source).build()
        tiles = b * (r // 4) * (c // 4)
        print(f"[{b}, {r}, {c}] -> [{b}, {c}, {r}] ({what})")
        for name, global_size, local_size in [("along_input", (c, b * r), (min(c, 64) if c % 64 == 0 else 16 if c % 16 == 0 else 1, 1)),
                                              ("along_output", (r, b * c), (min(r, 64) if r % 64 == 0 else 16 if r % 16 == 0 else 4, 1)),
                                              ("tiles", ((tiles + 63) // 64 * 64,), (64,))]:
            seconds = time_kernel(queue, cl.Kernel(program, name), global_size, local_size, buffer, tiles)
            result = np.empty(out + count + 1024, np.float32)
            cl.enqueue_copy(queue, result, buffer)
            same = "" if np.array_equal(result[out:out + count], expected) else "  WRONG RESULT"
            print(f"{seconds * 1e3:7.3f} ms {8 * count / seconds / 1e9:6.1f} GB/s  {name.replace('_', ' ')}{same}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", default="Portable Computing Language")
    parser.add_argument("--windows", action="store_true", help="the window kernels instead")
    parser.add_argument("--transposes", action="store_true", help="the batched transposes instead")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    platform = next(p for p in cl.get_platforms() if args.platform in p.name)
    device = platform.get_devices()[0]
    ctx = cl.Context([device])
    queue = cl.CommandQueue(ctx)
    if args.windows or args.transposes:
        print(f"{device.name} on {platform.name}")
        (windows if args.windows else transposes)(ctx, queue)
        return
    buffer = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, (OUT + COUNT + 1024) * 4)
    cl.enqueue_copy(queue, buffer, np.random.default_rng(0).random(OUT + COUNT + 1024, dtype=np.float32))
    program = cl.Program(ctx, FORMS).build()
    print(f"{device.name} on {platform.name}")
    for name, what, global_size, local_size, moved in CASES:
        seconds = time_kernel(queue, cl.Kernel(program, name), global_size, local_size, buffer, COUNT)
        print(f"{seconds * 1e3:7.3f} ms {moved / seconds / 1e9:6.1f} GB/s  {what}")


if __name__ == "__main__":
    main()
