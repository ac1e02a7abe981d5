// A reduction with one work-item per output element, each walking its elements in order: over
// leading axes (a bias gradient: the sum over the batch of a [B, N] tensor), or over a few
// elements each (a pooling window's).
//
// Over leading axes neighbouring work-items read neighbouring elements, so the loads coalesce
// on a GPU and vectorize on a CPU device, and no work-group pays for a tree and its barriers.
// Chosen when there are enough outputs to fill the device, or too few elements per output to
// need a tree.
//
// A template: the host replaces $NAME, $PARAMS, $KEPT, $LOOPS (nested loops over every
// reduced axis' coordinate), $COORDS (empty), $PROLOGUE, $IDENTITY, $COMBINE, $FINISH and
// $STORE, as in reduce.cl.
__kernel void $NAME($PARAMS int outputs) {
    const int o = get_global_id(0);
    if (o >= outputs) return;
    real acc = $IDENTITY;
    $KEPT
    $LOOPS {
        $COORDS
        real v;
        $PROLOGUE
        acc = $COMBINE(acc, v);
    }
    const real result = acc$FINISH;
    $STORE
}
