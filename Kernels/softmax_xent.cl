// Softmax cross-entropy of logits [B, C] against int labels [B], and its gradient; accuracy.
// Log-sum-exp is shifted by each row's maximum, so any finite logits give a finite loss.
// Labels outside [0, C) are checked on the host before upload; here they are skipped rather
// than read out of bounds.

#define XENT_LOCAL 256

// The mean over rows of logsumexp(row) - row[label]: one work-group of XENT_LOCAL.
__kernel __attribute__((reqd_work_group_size(XENT_LOCAL, 1, 1)))
void softmax_xent(__global const real* logits, int offL, __global const int* labels, int offY,
                  __global real* out, int offO, int B, int C) {
    __local real scratch[XENT_LOCAL];
    const int t = get_local_id(0);
    real total = 0;
    for (int r = t; r < B; r += XENT_LOCAL) {
        const int label = labels[offY + r];
        if (label < 0 || label >= C) continue;
        __global const real* row = logits + offL + r * C;
        real m = row[0];
        for (int j = 1; j < C; j++) m = fmax(m, row[j]);
        real s = 0;
        for (int j = 0; j < C; j++) s += exp(row[j] - m);
        total += m + log(s) - row[label];
    }
    scratch[t] = total;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = XENT_LOCAL / 2; s > 0; s >>= 1) {
        if (t < s) scratch[t] += scratch[t + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (t == 0) out[offO] = scratch[0] / (real)B;
}

// upstream * (softmax(row) - onehot(label)) / B: one work-item per row.
__kernel void softmax_xent_grad(__global const real* logits, int offL, __global const int* labels, int offY,
                                __global const real* upstream, int offU, __global real* out, int offO, int B, int C) {
    const int r = get_global_id(0);
    if (r >= B) return;
    const int label = labels[offY + r];
    __global const real* row = logits + offL + r * C;
    real m = row[0];
    for (int j = 1; j < C; j++) m = fmax(m, row[j]);
    real s = 0;
    for (int j = 0; j < C; j++) s += exp(row[j] - m);
    const real scale = upstream[offU] / (real)B;
    for (int j = 0; j < C; j++) {
        out[offO + r * C + j] = (exp(row[j] - m) / s - (j == label ? (real)1 : (real)0)) * scale;
    }
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
