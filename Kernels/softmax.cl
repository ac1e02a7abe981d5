// Softmax and log-softmax along an axis, and their gradients. The tensor is [outer, n, inner]
// around the axis (n its size): row r = (o, i) holds the n values o * n * inner + k * inner + i,
// `inner` apart. One work-item per row; each pass reads the row again rather than keeping it,
// so any n fits. Rows that are contiguous (inner 1) and a multiple of 8 long take the `8`
// kernels, which read and compute 8 values at a time (exp included), so a CPU device runs them
// on vector registers instead of gathering one lane from each row.

// y = softmax(x) (log: x - max - log Σ exp(x - max)) along the rows.
__kernel void softmax_rows(__global const real* x, int offX, __global real* y, int offY,
                           int rows, int n, int inner, int logMode) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    const int base = (r / inner) * n * inner + r % inner;
    __global const real* xr = x + offX + base;
    __global real* yr = y + offY + base;
    real m = xr[0];
    for (int k = 1; k < n; k++) m = fmax(m, xr[k * inner]);
    real s = 0;
    for (int k = 0; k < n; k++) s += exp(xr[k * inner] - m);
    if (logMode) {
        const real shift = m + log(s);
        for (int k = 0; k < n; k++) yr[k * inner] = xr[k * inner] - shift;
    } else {
        const real scale = (real)1 / s;
        for (int k = 0; k < n; k++) yr[k * inner] = exp(xr[k * inner] - m) * scale;
    }
}

// The gradient from the output y and the upstream g: softmax y · (g - Σ g·y); log-softmax
// g - exp(y) · Σ g.
__kernel void softmax_grad_rows(__global const real* y, int offY, __global const real* g, int offG,
                                __global real* dx, int offD, int rows, int n, int inner, int logMode) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    const int base = (r / inner) * n * inner + r % inner;
    __global const real* yr = y + offY + base;
    __global const real* gr = g + offG + base;
    __global real* dr = dx + offD + base;
    real s = 0;
    if (logMode) {
        for (int k = 0; k < n; k++) s += gr[k * inner];
        for (int k = 0; k < n; k++) dr[k * inner] = gr[k * inner] - exp(yr[k * inner]) * s;
    } else {
        for (int k = 0; k < n; k++) s += gr[k * inner] * yr[k * inner];
        for (int k = 0; k < n; k++) dr[k * inner] = yr[k * inner] * (gr[k * inner] - s);
    }
}

// softmax_rows for contiguous rows of n = 8 · n8 values.
__kernel void softmax_rows8(__global const real* x, int offX, __global real* y, int offY,
                            int rows, int n8, int logMode) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    __global const real* xr = x + offX + (size_t)r * n8 * 8;
    __global real* yr = y + offY + (size_t)r * n8 * 8;
    real8 m8 = vload8(0, xr);
    for (int k = 1; k < n8; k++) m8 = fmax(m8, vload8(k, xr));
    const real4 m4 = fmax(m8.lo, m8.hi);
    const real m = fmax(fmax(m4.x, m4.y), fmax(m4.z, m4.w));
    real8 s8 = 0;
    for (int k = 0; k < n8; k++) {
        const real8 e = exp(vload8(k, xr) - m);
        s8 += e;
        if (!logMode) vstore8(e, k, yr);
    }
    const real s = sum8(s8);
    if (logMode) {
        const real shift = m + log(s);
        for (int k = 0; k < n8; k++) vstore8(vload8(k, xr) - shift, k, yr);
    } else {
        const real scale = (real)1 / s;
        for (int k = 0; k < n8; k++) vstore8(vload8(k, yr) * scale, k, yr);
    }
}

// softmax_grad_rows for contiguous rows of n = 8 · n8 values.
__kernel void softmax_grad_rows8(__global const real* y, int offY, __global const real* g, int offG,
                                 __global real* dx, int offD, int rows, int n8, int logMode) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    const size_t base = (size_t)r * n8 * 8;
    __global const real* yr = y + offY + base;
    __global const real* gr = g + offG + base;
    __global real* dr = dx + offD + base;
    real8 s8 = 0;
    for (int k = 0; k < n8; k++) s8 += logMode ? vload8(k, gr) : vload8(k, gr) * vload8(k, yr);
    const real s = sum8(s8);
    for (int k = 0; k < n8; k++) {
        const real8 yv = vload8(k, yr), gv = vload8(k, gr);
        vstore8(logMode ? gv - exp(yv) * s : yv * (gv - s), k, dr);
    }
}
