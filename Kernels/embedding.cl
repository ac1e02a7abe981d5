// Embedding lookup and its gradient. Ids outside [0, rows) are checked on the host before
// upload; here they read zeros and add nothing rather than touch memory out of bounds.

// out[p, d] = table[ids[p], d]: a work-item per output element, on a 2-D range (d, p), so
// that a work-group copies whole rows: one id per row, contiguous loads and stores along d.
__kernel void gather(__global const int* ids, int offI, __global const real* table, int offT,
                     __global real* out, int offO, int count, int rows, int dim) {
    const int d = get_global_id(0), p = get_global_id(1);
    if (d >= dim || p >= count) return;
    const int id = ids[offI + p];
    out[offO + p * dim + d] = (id >= 0 && id < rows) ? table[offT + id * dim + d] : (real)0;
}

// out[ids[p], d] += values[p, d], after `fill` has zeroed out. Deterministic: work-item d
// owns column d and adds the positions in order, so repeated ids accumulate without atomics
// and the sum is the same on every run.
__kernel void scatter_add(__global const int* ids, int offI, __global const real* values, int offV,
                          __global real* out, int offO, int count, int rows, int dim) {
    const int d = get_global_id(0);
    if (d >= dim) return;
    for (int p = 0; p < count; p++) {
        const int id = ids[offI + p];
        if (id >= 0 && id < rows) out[offO + id * dim + d] += values[offV + p * dim + d];
    }
}

// The same sums when the ids are a feed, grouped on the host: `rows[u]` is the u-th distinct id,
// positions starts[u] ..< starts[u + 1] of `order` are where it occurs, in increasing order. A
// work-item per (column, distinct id) adds its values in that order from zero, as scatter_add
// does one after the other, so the result is the same to the bit; untouched rows keep `fill`'s 0.
__kernel void scatter_add_grouped(__global const int* rows, __global const int* starts, __global const int* order,
                                  __global const int* distinct, __global const real* values, int offV,
                                  __global real* out, int offO, int dim) {
    const int d = get_global_id(0), u = get_global_id(1);
    if (d >= dim || u >= distinct[0]) return;
    real acc = (real)0;
    for (int i = starts[u]; i < starts[u + 1]; i++) acc += values[offV + order[i] * dim + d];
    out[offO + rows[u] * dim + d] = acc;
}
