// The index of the first largest value along an axis: x viewed as [outer, n, inner].
__kernel void argmax(__global const real* x, int offX, __global int* out, int offO, int outer, int n, int inner) {
    const int i = get_global_id(0);
    if (i >= outer * inner) return;
    const int o = i / inner, k0 = i % inner;
    __global const real* base = x + offX + o * n * inner + k0;
    int best = 0;
    for (int k = 1; k < n; k++) if (base[k * inner] > base[best * inner]) best = k;
    out[offO + i] = best;
}
