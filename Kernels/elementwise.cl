// What the elementwise functions need beyond OpenCL's built-ins. The functions themselves,
// k_<op>, are written by the code generator from UnaryOp.openCL and BinaryOp.openCL.
#ifdef KILN_FP64
inline real kiln_tanh(real x) { return tanh(x); }
#else
// float: the CPU backend's rational approximation (within 4e-7 of tanh; ±1 beyond 7.905): a few
// fused multiply-adds and a division, where PoCL's tanh is a call per element. NaN passes
// through (the comparisons fail), as the checks for non-finite values need.
inline float kiln_tanh(float x) {
    const float c = 7.90531110763549805f;
    const float v = x < -c ? -c : (x > c ? c : x), v2 = v * v;
    float p = -2.76076847742355e-16f;
    p = fma(p, v2, 2.00018790482477e-13f);
    p = fma(p, v2, -8.60467152213735e-11f);
    p = fma(p, v2, 5.12229709037114e-08f);
    p = fma(p, v2, 1.48572235717979e-05f);
    p = fma(p, v2, 6.37261928875436e-04f);
    p = fma(p, v2, 4.89352455891786e-03f);
    float q = 1.19825839466702e-06f;
    q = fma(q, v2, 1.18534705686654e-04f);
    q = fma(q, v2, 2.26843463243900e-03f);
    q = fma(q, v2, 4.89352518554385e-03f);
    return v * p / q;
}
#endif

// GELU's tanh approximation (PyTorch's gelu(approximate="tanh")), with kiln_tanh as the CPU
// backend computes it.
inline real kiln_gelu(real x) {
    return (real)0.5 * x * ((real)1 + kiln_tanh((real)0.7978845608028654 * (x + (real)0.044715 * x * x * x)));
}

// GELU's derivative, 0.5·(1 + t) + 0.5·x·(1 − t²)·c·(1 + 3a·x²) with t = tanh(c·(x + a·x³)).
inline real kiln_gelu_derivative(real x) {
    const real c = (real)0.7978845608028654, a = (real)0.044715, x2 = x * x;
    const real t = kiln_tanh(c * (x + a * x2 * x));
    return (real)0.5 * ((real)1 + t) + (real)0.5 * x * ((real)1 - t * t) * c * ((real)1 + (real)3 * a * x2);
}

// How reductions combine two partial results; max lets NaN through, as the CPU reference does.
inline real red_sum(real a, real b) { return a + b; }
inline real red_max(real a, real b) { return (b > a || isnan(b)) ? b : a; }

// Fills n elements with a value (used before scatter-adds).
__kernel void fill(__global real* x, int offset, int n, real value) {
    int i = get_global_id(0);
    if (i < n) x[offset + i] = value;
}

// Packs B (row-major [k, n], or its transpose when `transposed`, leading dimension ld) into
// panels of w columns: dst[(panel * k + kk) * w + c] = B(kk, panel * w + c), zero past n.
// A batch of `batches` matrices, matrix b at (b / inner)·strideOuter + (b % inner)·strideInner
// (two batch axes of a strided view; one: inner 1), is packed into consecutive panel sets. A matmul then reads each panel's rows as contiguous blocks of w floats. One work-item
// copies one panel row, so rows of an untransposed B are read contiguously.
__kernel void pack_panels(__global const real* src, int offS, int ld, int transposed, __global real* dst, int k, int n, int w,
                          int batches, int inner, int strideOuter, int strideInner) {
    const int i = get_global_id(0);
    const int panels = (n + w - 1) / w;
    if (i >= panels * k * batches) return;
    const int batch = i / (panels * k), p = i % (panels * k);
    const int panel = p / k, kk = p % k, j0 = panel * w;
    const int base = offS + (batch / inner) * strideOuter + (batch % inner) * strideInner;
    __global real* out = dst + (size_t)i * w;
    const int valid = min(w, n - j0);
    if (transposed) {
        for (int c = 0; c < valid; c++) out[c] = src[base + (j0 + c) * ld + kk];
    } else {
        __global const real* row = src + base + kk * ld + j0;
        for (int c = 0; c < valid; c++) out[c] = row[c];
    }
    for (int c = valid; c < w; c++) out[c] = (real)0;
}
