// A reduction (sum, mean or max) over any set of axes, one work-group per output element,
// combined as a tree in local memory.
//
// A template: the host instantiates it per reduction, replacing $NAME, $PARAMS, $LOCAL (the
// work-group size, a power of two), $COUNT (elements reduced into each output), $INDEX (the
// flat input index `gid` of reduced element `r` of output `o`), $PROLOGUE (statements that
// compute `v`, the fused input's value at `gid`), $IDENTITY, $COMBINE (red_sum or red_max),
// $FINISH (what turns the combined value into the result: empty, or a division for a mean)
// and $STORE (statements that store `result` for output `o`).
__kernel __attribute__((reqd_work_group_size($LOCAL, 1, 1)))
void $NAME($PARAMS int outputs) {
    __local real scratch[$LOCAL];
    const int o = get_group_id(0), t = get_local_id(0);
    real acc = $IDENTITY;
    if (o < outputs) {
        for (int r = t; r < $COUNT; r += $LOCAL) {
            const int gid = $INDEX;
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
