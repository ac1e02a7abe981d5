// A reduction (sum, mean or max) over any set of axes, one work-group per output element,
// combined as a tree in local memory.
//
// A template: the host instantiates it per reduction, replacing $NAME, $PARAMS, $LOCAL (the
// work-group size, a power of two), $KEPT (declarations of the kept axes' coordinates from
// the output index `o`), $LOOPS (the loops over the reduced axes' coordinates, the work-items
// sharing the innermost one from `t` in steps of $LOCAL, or one flat index `r`), $COORDS
// (declarations of coordinates from `r`, or nothing), $PROLOGUE (statements that compute `v`,
// the fused input's value at those coordinates), $IDENTITY, $COMBINE (red_sum or red_max),
// $FINISH (what turns the combined value into the result: empty, or a division for a mean)
// and $STORE (statements that store `result` for output `o`).
__kernel __attribute__((reqd_work_group_size($LOCAL, 1, 1)))
void $NAME($PARAMS int outputs) {
    __local real scratch[$LOCAL];
    const int o = get_group_id(0), t = get_local_id(0);
    real acc = $IDENTITY;
    if (o < outputs) {
        $KEPT
        $LOOPS {
            $COORDS
            real v;
            $PROLOGUE
            acc = $COMBINE(acc, v);
        }
    }
    scratch[t] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = $LOCAL / 2; s > 0; s >>= 1) {
        if (t < s) scratch[t] = $COMBINE(scratch[t], scratch[t + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (t == 0 && o < outputs) {
        const real result = scratch[0]$FINISH;
        $STORE
    }
}
