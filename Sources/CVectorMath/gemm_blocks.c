#include "vector_math.h"
#include <stdlib.h>
#include <string.h>

// Register-blocked GEMM for AVX-512: blocks of 6 rows of C by 64 columns (48, 32 or 16 at the
// end of a row), each a set of accumulators in zmm registers (24 at 6 x 64) fed by one row of
// B's panel and six broadcasts of A per k. Narrow products (a convolution's [N·H·W, C·3·3] by
// [C·3·3, 64] and its gradients) run up to 1.5x OpenBLAS's speed this way: OpenBLAS's kernels
// are tuned for wide ones and pack both operands for every call.

#if defined(__x86_64__) && defined(__clang__)

typedef float kiln_g16 __attribute__((vector_size(64)));
#define KILN_GEMM_TARGET __attribute__((target("avx512f,fma")))
#define G_LOAD(p) ({ kiln_g16 v_; memcpy(&v_, (p), 64); v_; })
#define G_STORE(p, v) do { const kiln_g16 t_ = (v); memcpy((p), &t_, 64); } while (0)

typedef int kiln_i16 __attribute__((vector_size(64)));

// C[r][0 ..< 16·V] (+)= sum over kn steps of A(r, k) · B(k, ·) for the rows r < rows, where
// A(r, k) = ar[r][k · aks] and B(k, ·) = b[k · ldb ...]; then, where given, + bias[0 ..< 16·V]
// and ReLU (x > 0 ? x : 0, as the CPU backend's). Rows past `rows` read a real row (the
// caller repeats the last) and are not stored.
#define KILN_GEMM_BLOCK(V)                                                                             \
    KILN_GEMM_TARGET static void kiln_gemm_block##V(const float *const ar[6], long aks, const float *b, \
                                                    long ldb, long kn, float *c, long ldc, int rows,   \
                                                    int accumulate, const float *bias, int relu) {     \
        kiln_g16 acc[6][V];                                                                            \
        for (int r = 0; r < 6; r++)                                                                    \
            for (int v = 0; v < V; v++)                                                                \
                acc[r][v] = accumulate && r < rows ? G_LOAD(c + r * ldc + 16 * v) : (kiln_g16){};      \
        const float *a0 = ar[0], *a1 = ar[1], *a2 = ar[2], *a3 = ar[3], *a4 = ar[4], *a5 = ar[5];      \
        for (long k = 0; k < kn; k++, b += ldb) {                                                      \
            kiln_g16 bv[V];                                                                            \
            for (int v = 0; v < V; v++) bv[v] = G_LOAD(b + 16 * v);                                    \
            const long o = k * aks;                                                                    \
            const float as[6] = {a0[o], a1[o], a2[o], a3[o], a4[o], a5[o]};                            \
            for (int r = 0; r < 6; r++) {                                                              \
                const kiln_g16 a = (kiln_g16){} + as[r];                                               \
                for (int v = 0; v < V; v++) acc[r][v] = __builtin_elementwise_fma(a, bv[v], acc[r][v]); \
            }                                                                                          \
        }                                                                                              \
        if (bias)                                                                                      \
            for (int v = 0; v < V; v++) {                                                              \
                const kiln_g16 bb = G_LOAD(bias + 16 * v);                                             \
                for (int r = 0; r < 6; r++) acc[r][v] = acc[r][v] + bb;                                \
            }                                                                                          \
        if (relu)                                                                                      \
            for (int r = 0; r < 6; r++)                                                                \
                for (int v = 0; v < V; v++)                                                            \
                    acc[r][v] = (kiln_g16)((kiln_i16)acc[r][v] & (acc[r][v] > (kiln_g16){}));           \
        for (int r = 0; r < 6; r++)                                                                    \
            if (r < rows)                                                                              \
                for (int v = 0; v < V; v++) G_STORE(c + r * ldc + 16 * v, acc[r][v]);                  \
    }

KILN_GEMM_BLOCK(4)
KILN_GEMM_BLOCK(3)
KILN_GEMM_BLOCK(2)
KILN_GEMM_BLOCK(1)

// B transposed, packed as [k][n] for the blocks: one buffer per thread, grown when a product
// needs more (so a training step's products stop allocating after its first run).
static _Thread_local float *kiln_gemm_pack;
static _Thread_local long kiln_gemm_pack_count;

static int kiln_gemm_grow(long count) {
    if (kiln_gemm_pack_count >= count) return 1;
    float *grown = aligned_alloc(64, (size_t)((count + 15) & ~15L) * sizeof(float));
    if (!grown) return 0;
    free(kiln_gemm_pack);
    kiln_gemm_pack = grown;
    kiln_gemm_pack_count = count;
    return 1;
}

KILN_GEMM_TARGET static void kiln_gemm_avx512(long m, long n, long k, const float *a, long ars, long aks,
                                              const float *b, long ldb, float *c, long ldc, const float *bias, int relu) {
    // k in chunks that keep B's rows for one chunk in L2 while every row block passes over them.
    const long kc = k <= 512 ? k : 256;
    for (long k0 = 0; k0 < k; k0 += kc) {
        const long kn = k - k0 < kc ? k - k0 : kc;
        // The bias and ReLU once the sums are whole.
        const int last = k0 + kn == k;
        const int reluNow = last && relu;
        for (long i0 = 0; i0 < m; i0 += 6) {
            const int rows = m - i0 < 6 ? (int)(m - i0) : 6;
            const float *ar[6];
            for (int r = 0; r < 6; r++) ar[r] = a + (r < rows ? i0 + r : m - 1) * ars + k0 * aks;
            const float *bk = b + k0 * ldb;
            float *ci = c + i0 * ldc;
            long j = 0;
#define KILN_BIAS(j) (last && bias ? bias + (j) : NULL)
            for (; j + 64 <= n; j += 64) kiln_gemm_block4(ar, aks, bk + j, ldb, kn, ci + j, ldc, rows, k0 > 0, KILN_BIAS(j), reluNow);
            if (n - j == 48) kiln_gemm_block3(ar, aks, bk + j, ldb, kn, ci + j, ldc, rows, k0 > 0, KILN_BIAS(j), reluNow);
            if (n - j == 32) kiln_gemm_block2(ar, aks, bk + j, ldb, kn, ci + j, ldc, rows, k0 > 0, KILN_BIAS(j), reluNow);
            if (n - j == 16) kiln_gemm_block1(ar, aks, bk + j, ldb, kn, ci + j, ldc, rows, k0 > 0, KILN_BIAS(j), reluNow);
#undef KILN_BIAS
        }
    }
}

int kiln_gemm_blocks_available(void) { return __builtin_cpu_supports("avx512f") ? 1 : 0; }

int kiln_gemm_blocks_f32(int ta, int tb, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                         float *c, long ldc, const float *bias, int relu) {
    if (!kiln_gemm_blocks_available() || m <= 0 || n <= 0) return 0;
    if (n % 16 != 0 && m % 16 == 0 && ta && !tb && k > 0 && !bias && !relu) {
        // A weight gradient with fewer than 16 columns (conv1's [32, 9]: output channels by
        // window entries, k pixels): Cᵀ = Bᵀ·A, whose rows are C's columns and are read from
        // A's rows, then transposed into C. 1.5x OpenBLAS at conv1's.
        if (!kiln_gemm_grow(n * m)) return 0;
        kiln_gemm_avx512(n, m, k, b, 1, ldb, a, lda, kiln_gemm_pack, m, NULL, 0);
        for (long i = 0; i < m; i++)
            for (long j = 0; j < n; j++) c[i * ldc + j] = kiln_gemm_pack[j * m + i];
        return 1;
    }
    if (n % 16 != 0 || (k <= 0 && (bias || relu))) return 0;
    if (k <= 0) {
        for (long i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(float));
        return 1;
    }
    if (tb) {
        if (!kiln_gemm_grow(k * n)) return 0;
        if (ldb == k) {
            kiln_transpose_f32(b, kiln_gemm_pack, n, k, 0, n);
        } else {
            for (long j = 0; j < n; j++)
                for (long p = 0; p < k; p++) kiln_gemm_pack[p * n + j] = b[j * ldb + p];
        }
        b = kiln_gemm_pack;
        ldb = n;
    }
    kiln_gemm_avx512(m, n, k, a, ta ? 1 : lda, ta ? lda : 1, b, ldb, c, ldc, bias, relu);
    return 1;
}

#else

int kiln_gemm_blocks_available(void) { return 0; }

int kiln_gemm_blocks_f32(int ta, int tb, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                         float *c, long ldc, const float *bias, int relu) {
    (void)ta; (void)tb; (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b; (void)ldb; (void)c; (void)ldc; (void)bias; (void)relu;
    return 0;
}

#endif
