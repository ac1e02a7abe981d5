// Reductions (sum, mean or max) over any set of axes, one work-group per output element,
// combined as a tree in local memory: $RESULTS of them (reductions of one space sharing a
// pass), each with its accumulator and row of local memory.
//
// A template: the host instantiates it per reduction, replacing $NAME, $PARAMS, $LOCAL (the
// work-group size, a power of two), $KEPT (declarations of the kept axes' coordinates from
// the output index `o`), $LOOPS (the loops over the reduced axes' coordinates, the work-items
// sharing the innermost one from `t` in steps of $LOCAL, or one flat index `r`), $COORDS
// (declarations of coordinates from `r`, or nothing), $RESULTS, $PROLOGUE (statements that
// compute `v[k]`, each fused input's value at those coordinates), $IDENTITY, $COMBINE (red_sum
// or red_max) and $STORE (statements that store each `scratch[k][0]`, finished: as it is, or
// divided for a mean, for output `o`).
__kernel __attribute__((reqd_work_group_size($LOCAL, 1, 1)))
void $NAME($PARAMS int outputs) {
    __local real scratch[$RESULTS][$LOCAL];
    const int o = get_group_id(0), t = get_local_id(0);
    real acc[$RESULTS];
    for (int k = 0; k < $RESULTS; k++) acc[k] = $IDENTITY;
    if (o < outputs) {
        $KEPT
        $LOOPS {
            $COORDS
            real v[$RESULTS];
            $PROLOGUE
            for (int k = 0; k < $RESULTS; k++) acc[k] = $COMBINE(acc[k], v[k]);
        }
    }
    for (int k = 0; k < $RESULTS; k++) scratch[k][t] = acc[k];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = $LOCAL / 2; s > 0; s >>= 1) {
        if (t < s) {
            for (int k = 0; k < $RESULTS; k++) scratch[k][t] = $COMBINE(scratch[k][t], scratch[k][t + s]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (t == 0 && o < outputs) {
        $STORE
    }
}
