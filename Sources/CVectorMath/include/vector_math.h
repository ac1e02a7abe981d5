// The CPU backend's float loops over arrays, compiled for the widest vectors the CPU has:
// exp, tanh, GELU, softmax rows, the fused evaluator's arithmetic passes, dropout's draws,
// transposes and row sums. Swift compiles for the baseline
// x86-64 (SSE2, 4 floats a vector); these loops are cloned for AVX-512 and AVX2 and picked when
// the program loads. Each computes exactly what the Swift scalar code does, operation for
// operation (no fused multiply-adds), so results agree to the bit whichever clone runs; the
// register-blocked GEMM at the end stands in for OpenBLAS instead, and fuses as it does.
#ifndef KILN_VECTOR_MATH_H
#define KILN_VECTOR_MATH_H

#include <stdint.h>

// r[i] = exp(x[i]) for i < n: Cephes' expf, within 2 ulp (KilnFloat's polynomialExp).
// r is x or does not overlap it.
void kiln_exp_f32(const float *x, float *r, long n);

// r[i] = tanh(x[i]) for i < n: Eigen's rational approximation, within 4e-7.
// r is x or does not overlap it.
void kiln_tanh_f32(const float *x, float *r, long n);

// r[i] = gelu(x[i]) (the tanh approximation) and r[i] = gelu'(x[i]), with the tanh above.
// r is x or does not overlap it.
void kiln_gelu_f32(const float *x, float *r, long n);
void kiln_gelu_derivative_f32(const float *x, float *r, long n);

// The fused evaluator's binary passes, r[i] = x[i] op y[i], op by its code: 0 add, 1 sub, 2 mul,
// 3 div, 4 maximum (x >= y ? x : y), 5 minimum (x <= y ? x : y), 6 greater (x > y ? 1 : 0),
// 7 equal (x == y ? 1 : 0), 8 select (x != 0 ? y : 0). r is x, y or apart from both; the _vs
// and _sv forms take a scalar y or x.
void kiln_binary_vv_f32(int op, float *r, const float *x, const float *y, long n);
void kiln_binary_vs_f32(int op, float *r, const float *x, float y, long n);
void kiln_binary_sv_f32(int op, float *r, float x, const float *y, long n);

// r[i] = x[i] * s + y[i] (form 0), y[i] - x[i] * s (1) or x[i] * s - y[i] (2), the product
// rounded before the sum; form + 4: relu of that (v > 0 ? v : 0). r is x, y or apart from both.
void kiln_scaled_f32(int form, float *r, const float *x, float s, const float *y, long n);
// The same with a block of factors: r = x * s + y (form 0), y - x * s (1) or x * s - y (2).
void kiln_scaled_vv_f32(int form, float *r, const float *x, const float *s, const float *y, long n);

// Softmax over `rows` rows of n (>= 1) contiguous values, y from x: the CPU backend's steps in
// its order (8 running maxima, the shift, exp, 8 running sums combined pairwise, the scale by
// 1 / sum), so the same bits.
void kiln_softmax_rows_f32(const float *x, float *y, long rows, long n);

// Dropout's draws: r[e] = Philox.uniform(index: e, count: n, counter, seed, stream) for the
// elements of Philox blocks b0 <= b < b1 (b, B + b, 2B + b and 3B + b below n, B = ceil(n / 4)).
void kiln_philox_uniform_f32(float *r, long n, long b0, long b1, uint32_t counter, uint32_t seed, uint32_t stream);

// y[c][r] = x[r][c] for rows r0 <= r < r1 of a rows x cols matrix x, into y (cols x rows), which
// does not overlap it: a batched transpose's matrices, a range of rows per thread.
void kiln_transpose_f32(const float *x, float *y, long rows, long cols, long r0, long r1);

// The sum of x[0..<n] as the CPU backend's RowReductions.sum adds it (eight accumulators
// combined pairwise, then the tail), so the same bits.
float kiln_sum_f32(const float *x, long n);

// into[j] += rows[r * ld + j] for r < count and j < w, each column's values added in row order
// (the same bits as a loop over the rows adding into `into`). rows does not overlap into.
void kiln_add_rows_f32(float *into, const float *rows, long count, long w, long ld);

// r[i] = -x[i] (op 0), sqrt(x[i]) (op 1, correctly rounded) or relu: x[i] > 0 ? x[i] : 0 (op 2).
// r is x or apart from it.
void kiln_unary_f32(int op, float *r, const float *x, long n);

// A "same" convolution's 3 x 3 windows (stride 1, padding 1, dilation 1) over images
// b0 <= b < b1 of x [N, C, H, W]: unfold writes its patches [N, H, W, C, 3, 3] (pad outside the
// image); fold writes x from patches, each pixel the sum of its entries, added in the order of
// the CPU backend's window loops (the same bits).
void kiln_unfold3x3_f32(const float *x, float *out, long c, long h, long w, long b0, long b1, float pad);
void kiln_fold3x3_f32(const float *cols, float *x, long c, long h, long w, long b0, long b1);

// A sliding window over channels-last images [N, H, W, C] (sizes, stride, padding, dilation;
// each pair height then width) and the output positions it gives.
struct kiln_window {
    long h, w, c, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
};

// Over images b0 <= b < b1: unfold writes x's patches [N, OH, OW, KH, KW, C] (pad outside the
// image); fold writes x [N, H, W, C] from patches, each pixel the sum of its entries, added in
// the order of the CPU backend's window loops (the same bits).
void kiln_unfold_nhwc_f32(const float *x, float *out, const struct kiln_window *g, long b0, long b1, float pad);
void kiln_fold_nhwc_f32(const float *cols, float *x, const struct kiln_window *g, long b0, long b1);

// 2 x 2 max pooling of stride 2 over images b0 <= b < b1 of channels-last x [N, H, W, C] (H
// and W even) into out [N, H/2, W/2, C], and its gradient: dx [N, H, W, C] gets each window's
// upstream value at its first largest element (row-major, NaN wins), 0 at the other three.
void kiln_maxpool2x2_nhwc_f32(const float *x, float *out, long h, long w, long c, long b0, long b1);
void kiln_maxpool2x2_nhwc_grad_f32(const float *x, const float *up, float *dx, long h, long w, long c, long b0, long b1);

// C = op(A) · op(B) for row-major A (lda columns), B (ldb columns) and C (m rows, ldc apart,
// n of each written), in register blocks of 6 rows by up to 64 columns with AVX-512 fused
// multiply-adds (gemm_blocks.c). Returns 0, computing nothing, where it does not apply: a CPU
// without AVX-512, or n not a multiple of 16 (unless A is transposed, B is not and m is a
// multiple of 16: then Cᵀ is computed). With B transposed, B is first copied as [k][n], and Cᵀ
// is computed, into a buffer of the calling thread's (kept for the next call). bias (n values,
// or NULL) is added to every row of C, then with relu each value becomes x > 0 ? x : 0, both
// after the sums (not for Cᵀ: 0 is returned).
int kiln_gemm_blocks_f32(int ta, int tb, long m, long n, long k, const float *a, long lda, const float *b, long ldb,
                         float *c, long ldc, const float *bias, int relu);

// Whether kiln_gemm_blocks_f32 runs on this CPU (it has AVX-512).
int kiln_gemm_blocks_available(void);

#endif
