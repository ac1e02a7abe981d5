// C = op(A) · B, then an epilogue, for CPU OpenCL devices (PoCL), where explicit wide vectors
// are fast and local memory is not.
//
// A template: the host instantiates it per matmul, replacing $NAME, $PARAMS (the buffers the
// epilogue reads and writes), $ROWS and $WIDTH (the register block: $ROWS rows of C by $WIDTH
// columns, chosen so the accumulators fill the vector registers: 12 x 32 with AVX-512's 32
// registers, 6 x 16 with AVX2's 16), $DECLARE (the block's float16 accumulators, one variable
// each, so they stay in registers; float8 or float16 by the device's native width), $ROWINDEX (the clamped row indices i0..), $STEP (one k
// step: load the panel row of B as vectors, broadcast A's values into fma), $SPILL (store the
// accumulators into `tile`) and $EPILOGUE (statements that read `acc`, `row`, `col`,
// `gid` and store the outputs). $PANEL_START and $ROW_STRIDE say where the panel's first
// row of B is and how far apart its rows are: B packed by `pack_panels` into panels of $WIDTH
// columns, zero-padded past N (stride $WIDTH), or, when B is read untransposed and N is a
// multiple of $WIDTH, B itself (stride: its leading dimension; nothing to pack).
// $A_AT(r, k) reads A with its offset, leading dimension and transpose baked in. A batched
// matmul runs a matrix per index of the third dimension (`batch`): A, B's panel and $C_BASE
// (where C starts) all add the batch's stride.
//
// $K_BEGIN and $K_END bound the k loop: 0 and K, or, for a matmul split over K, the chunk of
// the third dimension's index (whose $EPILOGUE stores `acc` as that chunk's partial product).
//
// Rows past M are clamped for reading and not stored; columns past N are not stored.
__kernel void $NAME($PARAMS $PACKED_PARAM int M, int N, int K) {
    const int i0 = get_global_id(1) * $ROWS, panel = get_global_id(0), j0 = panel * $WIDTH;
    const int batch = get_global_id(2);   // which matrix of a batched matmul
    if (i0 >= M || j0 >= N) return;
    $ROWINDEX
    $DECLARE
    const int kBegin = $K_BEGIN, kEnd = $K_END;
    __global const float* panelRow = $PANEL_START + (size_t)kBegin * $ROW_STRIDE;
    // k unrolled by 4: PoCL's compiler does not unroll this loop itself.
    int k = kBegin;
    for (; k + 4 <= kEnd; ) {
        { $STEP } k++; panelRow += $ROW_STRIDE;
        { $STEP } k++; panelRow += $ROW_STRIDE;
        { $STEP } k++; panelRow += $ROW_STRIDE;
        { $STEP } k++; panelRow += $ROW_STRIDE;
    }
    for (; k < kEnd; k++, panelRow += $ROW_STRIDE) {
        $STEP
    }
    const int rows = min($ROWS, M - i0), cols = min($WIDTH, N - j0);
    float tile[$ROWS][$WIDTH];
    $SPILL
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            const int row = i0 + r, col = j0 + c;
            const real acc = tile[r][c];
            const int gid = $C_BASE + row * N + col;
            $EPILOGUE
        }
    }
}
