// Softmax cross-entropy of logits [B, C] against int labels [B], and its gradient; accuracy.
// Log-sum-exp is shifted by each row's maximum, so any finite logits give a finite loss.
// Labels outside [0, C) are checked on the host before upload; here they are skipped rather
// than read out of bounds.

#define XENT_LOCAL 256

// A row's log-sum-exp, shifted by its maximum, 8 values at a time where the row allows (a
// work-item per row reads its own contiguous row; PoCL vectorizes the explicit vectors).
inline real row_lse(__global const real* row, int C) {
    const int n8 = C / 8;
    real m = row[0];
    if (n8 > 0) {
        real8 m8 = vload8(0, row);
        for (int k = 1; k < n8; k++) m8 = fmax(m8, vload8(k, row));
        const real4 m4 = fmax(m8.lo, m8.hi);
        m = fmax(fmax(m4.x, m4.y), fmax(m4.z, m4.w));
    }
    for (int j = n8 * 8; j < C; j++) m = fmax(m, row[j]);
    real8 s8 = 0;
    for (int k = 0; k < n8; k++) s8 += exp(vload8(k, row) - m);
    real s = sum8(s8);
    for (int j = n8 * 8; j < C; j++) s += exp(row[j] - m);
    return m + log(s);
}

// Each row's logsumexp(row) - row[label], 0 where the label is outside [0, C): a work-item per row.
__kernel void softmax_xent_rows(__global const real* logits, int offL, __global const int* labels, int offY,
                                __global real* losses, int B, int C) {
    const int r = get_global_id(0);
    if (r >= B) return;
    const int label = labels[offY + r];
    __global const real* row = logits + offL + r * C;
    losses[r] = (label < 0 || label >= C) ? (real)0 : row_lse(row, C) - row[label];
}

// The mean of B per-row values: one work-group of XENT_LOCAL, summing in a fixed order.
__kernel __attribute__((reqd_work_group_size(XENT_LOCAL, 1, 1)))
void mean_of_rows(__global const real* values, __global real* out, int offO, int B) {
    __local real scratch[XENT_LOCAL];
    const int t = get_local_id(0);
    real total = 0;
    for (int r = t; r < B; r += XENT_LOCAL) total += values[r];
    scratch[t] = total;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = XENT_LOCAL / 2; s > 0; s >>= 1) {
        if (t < s) scratch[t] += scratch[t + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (t == 0) out[offO] = scratch[0] / (real)B;
}

// Each row's log-sum-exp, shifted by its maximum: a work-item per row.
__kernel void row_logsumexp(__global const real* logits, int offL, __global real* lse, int B, int C) {
    const int r = get_global_id(0);
    if (r >= B) return;
    lse[r] = row_lse(logits + offL + r * C, C);
}

// upstream * (softmax(row) - onehot(label)) / B from each row's log-sum-exp: work-item (j, r).
__kernel void softmax_xent_grad(__global const real* logits, int offL, __global const int* labels, int offY,
                                __global const real* lse, __global const real* upstream, int offU,
                                __global real* out, int offO, int B, int C) {
    const int j = get_global_id(0), r = get_global_id(1);
    if (j >= C || r >= B) return;
    const int at = r * C + j;
    const real hot = labels[offY + r] == j ? (real)1 : (real)0;
    out[offO + at] = (exp(logits[offL + at] - lse[r]) - hot) * (upstream[offU] / (real)B);
}

// The fraction of rows whose first maximal logit is at the label: one work-group.
__kernel __attribute__((reqd_work_group_size(XENT_LOCAL, 1, 1)))
void accuracy(__global const real* logits, int offL, __global const int* labels, int offY,
              __global real* out, int offO, int B, int C) {
    __local real scratch[XENT_LOCAL];
    const int t = get_local_id(0);
    real hits = 0;
    for (int r = t; r < B; r += XENT_LOCAL) {
        __global const real* row = logits + offL + r * C;
        int best = 0;
        for (int j = 1; j < C; j++) if (row[j] > row[best]) best = j;
        if (best == labels[offY + r]) hits += 1;
    }
    scratch[t] = hits;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = XENT_LOCAL / 2; s > 0; s >>= 1) {
        if (t < s) scratch[t] += scratch[t + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (t == 0) out[offO] = scratch[0] / (real)B;
}
