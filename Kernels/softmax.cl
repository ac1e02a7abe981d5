// Softmax and log-softmax along an axis, and their gradients. The tensor is [outer, n, inner]
// around the axis (n its size): row r = (o, i) holds the n values o * n * inner + k * inner + i,
// `inner` apart. One work-item per row; each pass reads the row again rather than keeping it,
// so any n fits.

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
