#!/usr/bin/env python3
"""Which forms of an OpenCL kernel PoCL vectorizes: the figures behind the generated kernels'
shape (BENCHMARKS.md, "Memory-bound kernels at memory speed").

Each form moves a [128, 32, 28, 28] float tensor (the CNN's first activation) inside one
buffer, as Kiln's arena does, and is timed over 20 launches after 3 untimed ones.

Usage: pip install pyopencl; python3 scripts/pocl_kernel_forms.py [--platform NAME]
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", default="Portable Computing Language")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    platform = next(p for p in cl.get_platforms() if args.platform in p.name)
    device = platform.get_devices()[0]
    ctx = cl.Context([device])
    queue = cl.CommandQueue(ctx)
    buffer = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, (OUT + COUNT + 1024) * 4)
    cl.enqueue_copy(queue, buffer, np.random.default_rng(0).random(OUT + COUNT + 1024, dtype=np.float32))
    program = cl.Program(ctx, FORMS).build()
    print(f"{device.name} on {platform.name}")
    for name, what, global_size, local_size, moved in CASES:
        kernel = cl.Kernel(program, name)
        for _ in range(3):
            kernel(queue, global_size, local_size, buffer, np.int32(COUNT))
        queue.finish()
        start = time.perf_counter()
        for _ in range(20):
            kernel(queue, global_size, local_size, buffer, np.int32(COUNT))
        queue.finish()
        seconds = (time.perf_counter() - start) / 20
        print(f"{seconds * 1e3:7.3f} ms {moved / seconds / 1e9:6.1f} GB/s  {what}")


if __name__ == "__main__":
    main()
