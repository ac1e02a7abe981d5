// Layer norm and RMS norm over the last axis (rows of n contiguous values), without the affine
// part (a separate elementwise op): x̂ = (x − mean) · r (RMS: x · r), r = 1 / sqrt(var + eps)
// with the biased variance (RMS: the mean of x²). The gradient recomputes mean and r from x:
// dx = r · (g − mean(g) − x̂ · mean(g · x̂)) (RMS: without mean(g)). One work-item per row; rows a
// multiple of 8 long take the `8` kernels, 8 values at a time.

// A row's mean (0 for RMS) and 1 / sqrt(var + eps), var about that mean.
inline void row_stats(__global const real* xr, int n, real eps, int rms, real* mean, real* scale) {
    real m = 0;
    if (!rms) {
        for (int k = 0; k < n; k++) m += xr[k];
        m /= n;
    }
    real var = 0;
    for (int k = 0; k < n; k++) var += (xr[k] - m) * (xr[k] - m);
    *mean = m;
    *scale = rsqrt(var / n + eps);
}

__kernel void norm_rows(__global const real* x, int offX, __global real* y, int offY, int rows, int n, real eps, int rms) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    __global const real* xr = x + offX + (size_t)r * n;
    __global real* yr = y + offY + (size_t)r * n;
    real mean, scale;
    row_stats(xr, n, eps, rms, &mean, &scale);
    for (int k = 0; k < n; k++) yr[k] = (xr[k] - mean) * scale;
}

__kernel void norm_grad_rows(__global const real* x, int offX, __global const real* g, int offG, __global real* dx, int offD,
                             int rows, int n, real eps, int rms) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    __global const real* xr = x + offX + (size_t)r * n;
    __global const real* gr = g + offG + (size_t)r * n;
    __global real* dr = dx + offD + (size_t)r * n;
    real mean, scale;
    row_stats(xr, n, eps, rms, &mean, &scale);
    real gMean = 0, gxMean = 0;
    for (int k = 0; k < n; k++) {
        gMean += gr[k];
        gxMean += gr[k] * (xr[k] - mean) * scale;
    }
    gMean = rms ? 0 : gMean / n;
    gxMean /= n;
    for (int k = 0; k < n; k++) dr[k] = scale * (gr[k] - gMean - (xr[k] - mean) * scale * gxMean);
}

// row_stats over n8 · 8 values, 8 at a time.
inline void row_stats8(__global const real* xr, int n8, real eps, int rms, real* mean, real* scale) {
    const int n = n8 * 8;
    real m = 0;
    if (!rms) {
        real8 s = 0;
        for (int k = 0; k < n8; k++) s += vload8(k, xr);
        m = sum8(s) / n;
    }
    real8 v = 0;
    for (int k = 0; k < n8; k++) { const real8 d = vload8(k, xr) - m; v += d * d; }
    *mean = m;
    *scale = rsqrt(sum8(v) / n + eps);
}

__kernel void norm_rows8(__global const real* x, int offX, __global real* y, int offY, int rows, int n8, real eps, int rms) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    const int n = n8 * 8;
    __global const real* xr = x + offX + (size_t)r * n;
    __global real* yr = y + offY + (size_t)r * n;
    real mean, scale;
    row_stats8(xr, n8, eps, rms, &mean, &scale);
    for (int k = 0; k < n8; k++) vstore8((vload8(k, xr) - mean) * scale, k, yr);
}

__kernel void norm_grad_rows8(__global const real* x, int offX, __global const real* g, int offG, __global real* dx, int offD,
                              int rows, int n8, real eps, int rms) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    const int n = n8 * 8;
    __global const real* xr = x + offX + (size_t)r * n;
    __global const real* gr = g + offG + (size_t)r * n;
    __global real* dr = dx + offD + (size_t)r * n;
    real mean, scale;
    row_stats8(xr, n8, eps, rms, &mean, &scale);
    real8 gs = 0, gxs = 0;
    for (int k = 0; k < n8; k++) {
        const real8 gv = vload8(k, gr);
        gs += gv;
        gxs += gv * (vload8(k, xr) - mean);
    }
    const real gMean = rms ? 0 : sum8(gs) / n, gxMean = sum8(gxs) * scale / n;
    for (int k = 0; k < n8; k++) {
        const real8 xh = (vload8(k, xr) - mean) * scale;
        vstore8(scale * (vload8(k, gr) - gMean - xh * gxMean), k, dr);
    }
}
