// A reduction over leading axes (a bias gradient: the sum over the batch of a [B, N] tensor),
// one work-item per output element, each walking its column in order.
//
// Neighbouring work-items read neighbouring elements, so the loads coalesce on a GPU and
// vectorize on a CPU device, and no work-group pays for a tree and its barriers. Chosen when
// there are enough outputs to fill the device, or too few elements per output to need a tree.
//
// A template: the host replaces $NAME, $PARAMS, $OUTPUTS (output elements: the product of the
// kept, trailing axes), $COUNT (elements reduced into each), $PROLOGUE (statements computing
// `v` at flat input index `gid`), $IDENTITY, $COMBINE, $FINISH and $STORE, as in reduce.cl.
__kernel void $NAME($PARAMS int outputs) {
    const int o = get_global_id(0);
    if (o >= outputs) return;
    real acc = $IDENTITY;
    for (int r = 0; r < $COUNT; r++) {
        const int gid = r * $OUTPUTS + o;
        real v;
        $PROLOGUE
        acc = $COMBINE(acc, v);
    }
    const real result = acc$FINISH;
    $STORE
}
