// C = op(A) · B, then an epilogue, for CPU OpenCL devices (PoCL), where explicit wide vectors
// are fast and local memory is not.
//
// A template: the host instantiates it per matmul, replacing $NAME, $PARAMS (the buffers the
// epilogue reads and writes), $A_AT(r, k) (A's element with its offset, leading dimension and
// transpose baked in), $ROWS and $VECS (the register block: $ROWS rows of C by $VECS float16,
// chosen so the accumulators fill the vector registers: 4 x 4 with AVX-512's 32 registers,
// 6 x 1 with AVX2's 16) and $EPILOGUE (statements that read `acc`, `row`, `col`, `gid` and
// store the outputs). B arrives packed by `pack_panels` into panels of $VECS * 16 columns,
// zero-padded past N.
//
// Each work-item owns one block: per k it loads a panel row of B as $VECS float16 and
// broadcasts $ROWS values of A into fma. Rows past M are clamped for reading and not stored;
// columns past N are not stored.
__kernel void $NAME($PARAMS __global const float* packedB, int M, int N, int K) {
    const int width = $VECS * 16;
    const int i0 = get_global_id(1) * $ROWS, panel = get_global_id(0), j0 = panel * width;
    if (i0 >= M || j0 >= N) return;
    int rowOf[$ROWS];
    #pragma unroll
    for (int r = 0; r < $ROWS; r++) rowOf[r] = min(i0 + r, M - 1);
    float16 c[$ROWS][$VECS];
    #pragma unroll
    for (int r = 0; r < $ROWS; r++) {
        #pragma unroll
        for (int v = 0; v < $VECS; v++) c[r][v] = 0;
    }
    __global const float* b = packedB + (size_t)panel * K * width;
    for (int k = 0; k < K; k++, b += width) {
        float16 bv[$VECS];
        #pragma unroll
        for (int v = 0; v < $VECS; v++) bv[v] = vload16(v, b);
        #pragma unroll
        for (int r = 0; r < $ROWS; r++) {
            const float16 a = (float16)($A_AT(rowOf[r], k));
            #pragma unroll
            for (int v = 0; v < $VECS; v++) c[r][v] = fma(a, bv[v], c[r][v]);
        }
    }
    const int rows = min($ROWS, M - i0), cols = min(width, N - j0);
    for (int r = 0; r < rows; r++) {
        float tile[$VECS * 16];
        #pragma unroll
        for (int v = 0; v < $VECS; v++) vstore16(c[r][v], v, tile);
        for (int cc = 0; cc < cols; cc++) {
            const int row = i0 + r, col = j0 + cc;
            const real acc = tile[cc];
            const int gid = row * N + col;
            $EPILOGUE
        }
    }
}
