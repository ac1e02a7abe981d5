// One core's speed of the CPU backend's register-blocked GEMM (Sources/CVectorMath/gemm_blocks.c)
// against OpenBLAS, at the products of the CNN, the MLP and two square ones, each split as the
// CPU backend splits it over two threads (rows, or columns when C has fewer rows). Best of 7.
//
//   clang -O2 -ISources/CVectorMath/include scripts/gemm_blocks_bench.c Sources/CVectorMath/gemm_blocks.c \
//       Sources/CVectorMath/vector_math.c -lopenblas -o /tmp/gemm_blocks_bench
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /tmp/gemm_blocks_bench
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cblas.h>
#include "vector_math.h"
void openblas_set_num_threads(int);
static double now() { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
    openblas_set_num_threads(1);
    struct { const char *name; int ta, tb; long m, n, k; } S[] = {
        {"conv2 fwd", 0, 1, 12544, 64, 288}, {"conv2 dgrad", 0, 0, 12544, 288, 64}, {"conv2 wgrad", 1, 0, 64, 144, 25088},
        {"conv1 fwd", 0, 1, 50176, 32, 9}, {"fc1 fwd", 0, 1, 64, 128, 3136}, {"fc1 wgrad", 1, 0, 128, 1568, 128},
        {"fc1 dgrad", 0, 0, 128, 1568, 128}, {"mlp fwd", 0, 0, 64, 256, 784}, {"mlp wgrad", 1, 0, 784, 128, 128},
        {"mlp dgrad", 0, 1, 64, 784, 256}, {"sq512", 0, 0, 512, 512, 512}, {"sq1024/2", 0, 0, 512, 1024, 1024}};
    for (int s = 0; s < sizeof S / sizeof S[0]; s++) {
        long m = S[s].m, n = S[s].n, k = S[s].k; int ta = S[s].ta, tb = S[s].tb;
        long lda = ta ? m : k, ldb = tb ? k : n;
        float *A = aligned_alloc(64, m * k * 4 + 64), *B = aligned_alloc(64, k * n * 4 + 64), *C = aligned_alloc(64, m * n * 4 + 64), *C2 = aligned_alloc(64, m * n * 4 + 64);
        for (long i = 0; i < m * k; i++) A[i] = rand() / (float)RAND_MAX - 0.5f;
        for (long i = 0; i < n * k; i++) B[i] = rand() / (float)RAND_MAX - 0.5f;
        double best1 = 1e9, best2 = 1e9;
        for (int rep = 0; rep < 7; rep++) {
            double t = now(); kiln_gemm_blocks_f32(ta, tb, m, n, k, A, lda, B, ldb, C, n, NULL, 0); double t1 = now();
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1, A, lda, B, ldb, 0, C2, n); double t2 = now();
            if (t1 - t < best1) best1 = t1 - t; if (t2 - t1 < best2) best2 = t2 - t1;
        }
        double e = 0; for (long i = 0; i < m * n; i++) { double d = C[i] - C2[i]; if (d < 0) d = -d; if (d > e) e = d; }
        double f = 2.0 * m * n * k;
        printf("%-12s %6ldx%5ldx%6ld  blocks %7.3f ms %4.0f GF/s  openblas %7.3f ms %4.0f GF/s  ratio %.2f  maxdiff %.1e\n", S[s].name, m, k, n, best1*1e3, f/best1/1e9, best2*1e3, f/best2/1e9, best2/best1, e);
    }
}
