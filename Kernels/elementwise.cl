// The elementwise functions that generated (fused) kernels are written in. Each matches the
// CPU reference: relu(0) = 0, maximum/minimum keep the first input on ties, comparisons give
// 1 or 0.
inline real k_neg(real x) { return -x; }
inline real k_exp(real x) { return exp(x); }
inline real k_log(real x) { return log(x); }
inline real k_sqrt(real x) { return sqrt(x); }
inline real k_tanh(real x) { return tanh(x); }
inline real k_sigmoid(real x) { return (real)1 / ((real)1 + exp(-x)); }
inline real k_relu(real x) { return x > (real)0 ? x : (real)0; }
inline real k_add(real a, real b) { return a + b; }
inline real k_sub(real a, real b) { return a - b; }
inline real k_mul(real a, real b) { return a * b; }
inline real k_div(real a, real b) { return a / b; }
inline real k_maximum(real a, real b) { return a >= b ? a : b; }
inline real k_minimum(real a, real b) { return a <= b ? a : b; }
inline real k_greater(real a, real b) { return a > b ? (real)1 : (real)0; }
inline real k_equal(real a, real b) { return a == b ? (real)1 : (real)0; }

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
// A matmul then reads each panel's rows as contiguous blocks of w floats. One work-item copies
// one panel row, so rows of an untransposed B are read contiguously.
__kernel void pack_panels(__global const real* src, int offS, int ld, int transposed, __global real* dst, int k, int n, int w) {
    const int i = get_global_id(0);
    const int panels = (n + w - 1) / w;
    if (i >= panels * k) return;
    const int panel = i / k, kk = i % k, j0 = panel * w;
    __global real* out = dst + (size_t)i * w;
    const int valid = min(w, n - j0);
    if (transposed) {
        for (int c = 0; c < valid; c++) out[c] = src[offS + (j0 + c) * ld + kk];
    } else {
        __global const real* row = src + offS + kk * ld + j0;
        for (int c = 0; c < valid; c++) out[c] = row[c];
    }
    for (int c = valid; c < w; c++) out[c] = (real)0;
}
