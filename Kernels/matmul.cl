// C = op(A) · op(B), then an epilogue, for devices with fast local memory (GPUs).
//
// A template: the host instantiates it per matmul, replacing $NAME, $PARAMS (the buffers the
// epilogue reads and writes), $A_AT(r, k) / $B_AT(k, c) (element access with the operand's
// offset, leading dimension and transpose baked in), $A_LOAD_ROW_MAJOR / $B_LOAD_ROW_MAJOR (1
// when consecutive k, resp. columns, are adjacent in memory, so that loads stay coalesced),
// $EPILOGUE (statements that read `acc`, `row`, `col`, `gid` and store the outputs), $C_BASE
// (where the batch's C starts: `batch * M * N`, or 0), and the
// tile: a $WN x $WM work-group computes a $TM x $TN block of C, each work-item a $RM x $RN block
// of registers (rows ty + $WM i, columns tx + $WN j: neighbouring work-items read neighbouring
// local memory), K advancing by $TK through local-memory tiles of A and B. $IN_A / $IN_B /
// $IN_C are the edge conditions for loading A and B and storing C: `1` when the shapes are
// multiples of the tile, so full tiles carry no checks. Out-of-range elements load as zeros
// and are not stored. $UNROLL is `#pragma unroll` on GPUs (the accumulators must stay in
// registers) and empty on CPU devices.
__kernel __attribute__((reqd_work_group_size($WN, $WM, 1)))
void $NAME($PARAMS int M, int N, int K) {
    __local real As[$TK][$TM + 1];
    __local real Bs[$TK][$TN + 1];
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int lid = ty * $WN + tx;
    const int batch = get_group_id(2);   // which matrix of a batched matmul ($A_AT and $B_AT read it)
    const int row0 = get_group_id(1) * $TM, col0 = get_group_id(0) * $TN;
    real c[$RM][$RN];
    $UNROLL
    for (int i = 0; i < $RM; i++) {
        $UNROLL
        for (int j = 0; j < $RN; j++) c[i][j] = 0;
    }
    for (int k0 = 0; k0 < K; k0 += $TK) {
        for (int l = lid; l < $TM * $TK; l += $WM * $WN) {
#if $A_LOAD_ROW_MAJOR
            const int r = l / $TK, kk = l % $TK;
#else
            const int r = l % $TM, kk = l / $TM;
#endif
            const int gr = row0 + r, gk = k0 + kk;
            As[kk][r] = ($IN_A) ? $A_AT(gr, gk) : (real)0;
        }
        for (int l = lid; l < $TK * $TN; l += $WM * $WN) {
#if $B_LOAD_ROW_MAJOR
            const int cc = l % $TN, kk = l / $TN;
#else
            const int cc = l / $TK, kk = l % $TK;
#endif
            const int gc = col0 + cc, gk = k0 + kk;
            Bs[kk][cc] = ($IN_B) ? $B_AT(gk, gc) : (real)0;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        $UNROLL
        for (int kk = 0; kk < $TK; kk++) {
            real a[$RM], b[$RN];
            $UNROLL
            for (int i = 0; i < $RM; i++) a[i] = As[kk][ty + $WM * i];
            $UNROLL
            for (int j = 0; j < $RN; j++) b[j] = Bs[kk][tx + $WN * j];
            $UNROLL
            for (int i = 0; i < $RM; i++) {
                $UNROLL
                for (int j = 0; j < $RN; j++) c[i][j] = mad(a[i], b[j], c[i][j]);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    $UNROLL
    for (int i = 0; i < $RM; i++) {
        $UNROLL
        for (int j = 0; j < $RN; j++) {
            const int row = row0 + ty + $WM * i, col = col0 + tx + $WN * j;
            if ($IN_C) {
                const real acc = c[i][j];
                const int gid = $C_BASE + row * N + col;
                $EPILOGUE
            }
        }
    }
}
