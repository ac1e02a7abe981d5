// C = op(A) · op(B), then an epilogue, for devices with fast local memory (GPUs).
//
// A template: the host instantiates it per matmul, replacing $NAME, $PARAMS (the buffers the
// epilogue reads and writes), $A_AT(r, k) / $B_AT(k, c) (element access with the operand's
// offset, leading dimension and transpose baked in), $A_LOAD_ROW_MAJOR (1 when consecutive k
// are adjacent in memory, so that loads stay coalesced) and $EPILOGUE (statements that read
// `acc`, `row`, `col`, `gid` and store the outputs).
//
// A 16x16 work-group computes a 64x64 tile of C; each work-item owns a 4x4 block of registers
// (rows ty + 16i, columns tx + 16j). K advances in steps of 16 through local-memory tiles of A
// and B. Edges that are not multiples of the tile are loaded as zeros and not stored.
__kernel __attribute__((reqd_work_group_size(16, 16, 1)))
void $NAME($PARAMS int M, int N, int K) {
    __local real As[16][64 + 1];
    __local real Bs[16][64];
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int lid = ty * 16 + tx;
    const int row0 = get_group_id(1) * 64, col0 = get_group_id(0) * 64;
    real c[4][4];
    for (int i = 0; i < 4; i++) for (int j = 0; j < 4; j++) c[i][j] = 0;
    for (int k0 = 0; k0 < K; k0 += 16) {
        for (int l = lid; l < 64 * 16; l += 256) {
#if $A_LOAD_ROW_MAJOR
            const int r = l / 16, kk = l % 16;
#else
            const int r = l % 64, kk = l / 64;
#endif
            const int gr = row0 + r, gk = k0 + kk;
            As[kk][r] = (gr < M && gk < K) ? $A_AT(gr, gk) : (real)0;
        }
        for (int l = lid; l < 64 * 16; l += 256) {
#if $B_LOAD_ROW_MAJOR
            const int cc = l % 64, kk = l / 64;
#else
            const int cc = l / 16, kk = l % 16;
#endif
            const int gc = col0 + cc, gk = k0 + kk;
            Bs[kk][cc] = (gc < N && gk < K) ? $B_AT(gk, gc) : (real)0;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < 16; kk++) {
            real a[4], b[4];
            for (int i = 0; i < 4; i++) a[i] = As[kk][ty + 16 * i];
            for (int j = 0; j < 4; j++) b[j] = Bs[kk][tx + 16 * j];
            for (int i = 0; i < 4; i++) for (int j = 0; j < 4; j++) c[i][j] = mad(a[i], b[j], c[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) {
            const int row = row0 + ty + 16 * i, col = col0 + tx + 16 * j;
            if (row < M && col < N) {
                const real acc = c[i][j];
                const int gid = row * N + col;
                $EPILOGUE
            }
        }
    }
}
