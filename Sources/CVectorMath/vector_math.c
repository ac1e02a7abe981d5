#include "vector_math.h"
#include <stdint.h>
#include <string.h>

// Each operation as written: contracting a * b + c into one rounding would change results.
#pragma clang fp contract(off)

#if defined(__x86_64__) && defined(__clang__)
#define KILN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KILN_CLONES
#endif

static inline uint32_t bits_of(float v) { uint32_t u; memcpy(&u, &v, 4); return u; }
static inline float float_of(uint32_t u) { float v; memcpy(&v, &u, 4); return v; }

static inline float kiln_exp1(float v) {
    const int nan = v != v;
    float c = nan ? 0.0f : v;
    c = c < -104.0f ? -104.0f : c;
    c = c > 89.0f ? 89.0f : c;
    const float t = c * 1.44269504088896341f + 12582912.0f;
    const float fx = t - 12582912.0f;
    const float g = c - fx * 0.693359375f + fx * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * g + 1.3981999507e-3f;
    p = p * g + 8.3334519073e-3f;
    p = p * g + 4.1665795894e-2f;
    p = p * g + 1.6666665459e-1f;
    p = p * g + 5.0000001201e-1f;
    const float y = p * (g * g) + g + 1.0f;
    const int32_t n = (int32_t)(bits_of(t) - 0x4B400000u), h = n >> 1;
    const float twoH = float_of((uint32_t)(h + 127) << 23);
    const float twoRest = float_of((uint32_t)(n - h + 127) << 23);
    return nan ? v : y * twoH * twoRest;
}

// r[i] = f(x[i]) where r is x (in place) or does not overlap it: each case a loop of its own,
// which the compiler vectorizes without a run-time overlap check (that check sent in-place
// calls to scalar code).
#define KILN_MAP(f)                                                    \
    if (x == r) {                                                      \
        for (long i = 0; i < n; i++) r[i] = f(r[i]);                   \
    } else {                                                           \
        const float *restrict a = x;                                   \
        float *restrict b = r;                                         \
        for (long i = 0; i < n; i++) b[i] = f(a[i]);                   \
    }

KILN_CLONES void kiln_exp_f32(const float *x, float *r, long n) { KILN_MAP(kiln_exp1) }

static inline float kiln_tanh1(float v) {
    const float c = 7.90531110763549805f;
    // Swift.max(x, -c) then Swift.min(…, c): NaN stays NaN through both.
    v = v < -c ? -c : v;
    v = c < v ? c : v;
    const float v2 = v * v;
    float p = -2.76076847742355e-16f;
    p = p * v2 + 2.00018790482477e-13f;
    p = p * v2 - 8.60467152213735e-11f;
    p = p * v2 + 5.12229709037114e-08f;
    p = p * v2 + 1.48572235717979e-05f;
    p = p * v2 + 6.37261928875436e-04f;
    p = p * v2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * v2 + 1.18534705686654e-04f;
    q = q * v2 + 2.26843463243900e-03f;
    q = q * v2 + 4.89352518554385e-03f;
    return v * p / q;
}

KILN_CLONES void kiln_tanh_f32(const float *x, float *r, long n) { KILN_MAP(kiln_tanh1) }

// GELU's tanh approximation and its derivative, with the products in Swift's left-to-right order.
static const float gelu_a = 0.044715f, gelu_c = 0.7978845608028654f;

static inline float kiln_gelu_tanh(float v) { return kiln_tanh1(gelu_c * (v + gelu_a * v * v * v)); }

static inline float kiln_gelu1(float v) { return 0.5f * v * (1.0f + kiln_gelu_tanh(v)); }

static inline float kiln_gelu_derivative1(float v) {
    const float t = kiln_gelu_tanh(v);
    return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * gelu_c * (1.0f + 3.0f * gelu_a * v * v);
}

KILN_CLONES void kiln_gelu_f32(const float *x, float *r, long n) { KILN_MAP(kiln_gelu1) }
KILN_CLONES void kiln_gelu_derivative_f32(const float *x, float *r, long n) { KILN_MAP(kiln_gelu_derivative1) }

// The passes below load a chunk of 16 before storing it, as vectors of the compiler's own
// (vector_size: one register with AVX-512, two with AVX2, four with SSE2), so r may be exactly
// x or y without a run-time overlap check.
typedef float f16 __attribute__((vector_size(64)));
typedef int32_t i16 __attribute__((vector_size(64)));

// Macros, not functions: a vector of 16 floats passed by value has no ABI without AVX-512.
#define load16(p) ({ f16 v_; memcpy(&v_, (p), sizeof v_); v_; })
#define store16(p, v) do { const f16 t_ = (v); memcpy((p), &t_, sizeof t_); } while (0)

static inline float binary1(int op, float x, float y) {
    switch (op) {
    case 0: return x + y;
    case 1: return x - y;
    case 2: return x * y;
    case 3: return x / y;
    case 4: return x >= y ? x : y;
    case 5: return x <= y ? x : y;
    case 6: return x > y ? 1.0f : 0.0f;
    case 7: return x == y ? 1.0f : 0.0f;
    default: return x != 0 ? y : 0.0f;
    }
}

// Lanes of a where mask, else of b.
#define SELECT16(mask, a, b) ((f16)(((i16)(mask) & (i16)(a)) | (~(i16)(mask) & (i16)(b))))

// Every op in chunks of 16 (the comparisons and selections as masks, not element by element),
// the tail element by element. NaN compares as the scalar forms do.
#define KILN_BINARY_BODY(X, Y, XV, YV)                                                  \
    long i = 0;                                                                        \
    const f16 one = (f16){} + 1.0f, zero = {0};                                        \
    for (; i + 16 <= n; i += 16) {                                                     \
        const f16 a = XV, b = YV;                                                      \
        f16 v;                                                                         \
        switch (op) {                                                                  \
        case 0: v = a + b; break;                                                      \
        case 1: v = a - b; break;                                                      \
        case 2: v = a * b; break;                                                      \
        case 3: v = a / b; break;                                                      \
        case 4: v = SELECT16(a >= b, a, b); break;                                     \
        case 5: v = SELECT16(a <= b, a, b); break;                                     \
        case 6: v = SELECT16(a > b, one, zero); break;                                 \
        case 7: v = SELECT16(a == b, one, zero); break;                                \
        default: v = SELECT16(a != zero, b, zero); break;                              \
        }                                                                              \
        store16(r + i, v);                                                             \
    }                                                                                  \
    for (; i < n; i++) r[i] = binary1(op, X, Y);

KILN_CLONES void kiln_binary_vv_f32(int op, float *r, const float *x, const float *y, long n) {
    KILN_BINARY_BODY(x[i], y[i], load16(x + i), load16(y + i))
}

KILN_CLONES void kiln_binary_vs_f32(int op, float *r, const float *x, float y, long n) {
    const f16 ys = {y, y, y, y, y, y, y, y, y, y, y, y, y, y, y, y};
    KILN_BINARY_BODY(x[i], y, load16(x + i), ys)
}

KILN_CLONES void kiln_binary_sv_f32(int op, float *r, float x, const float *y, long n) {
    const f16 xs = {x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
    KILN_BINARY_BODY(x, y[i], xs, load16(y + i))
}

// relu of a vector: v's bits where v > 0, else all zero bits (NaN and -0 give +0).
#define RELU16(v) ((f16)((i16)(v) & ((v) > (f16){0})))

// Form 0-2 as the header says; form + 4: relu of the result, in the same pass.
KILN_CLONES void kiln_scaled_f32(int form, float *r, const float *x, float s, const float *y, long n) {
    const f16 ss = {s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s};
    const int relu = form & 4;
    form &= 3;
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        const f16 p = load16(x + i) * ss, b = load16(y + i), v = form == 0 ? p + b : form == 1 ? b - p : p - b;
        store16(r + i, relu ? RELU16(v) : v);
    }
    for (; i < n; i++) {
        const float p = x[i] * s, v = form == 0 ? p + y[i] : form == 1 ? y[i] - p : p - y[i];
        r[i] = relu ? (v > 0 ? v : 0.0f) : v;
    }
}

KILN_CLONES void kiln_scaled_vv_f32(int form, float *r, const float *x, const float *s, const float *y, long n) {
    const int relu = form & 4;
    form &= 3;
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        const f16 p = load16(x + i) * load16(s + i), b = load16(y + i), v = form == 0 ? p + b : form == 1 ? b - p : p - b;
        store16(r + i, relu ? RELU16(v) : v);
    }
    for (; i < n; i++) {
        const float p = x[i] * s[i], v = form == 0 ? p + y[i] : form == 1 ? y[i] - p : p - y[i];
        r[i] = relu ? (v > 0 ? v : 0.0f) : v;
    }
}

KILN_CLONES void kiln_softmax_rows_f32(const float *x, float *y, long rows, long n) {
    const long full = n & ~7L;
    for (long row = 0; row < rows; row++) {
        const float *xr = x + row * n;
        float *yr = y + row * n;
        float m[8];
        for (int j = 0; j < 8; j++) m[j] = xr[0];
        for (long e = 0; e < full; e += 8)
            for (int j = 0; j < 8; j++) m[j] = xr[e + j] > m[j] ? xr[e + j] : m[j];
        const float a = m[0] > m[1] ? m[0] : m[1], b = m[2] > m[3] ? m[2] : m[3];
        const float c = m[4] > m[5] ? m[4] : m[5], d = m[6] > m[7] ? m[6] : m[7];
        const float ab = a > b ? a : b, cd = c > d ? c : d;
        float best = ab > cd ? ab : cd;
        for (long e = full; e < n; e++) best = xr[e] > best ? xr[e] : best;
        for (long k = 0; k < n; k++) yr[k] = xr[k] - best;
        for (long k = 0; k < n; k++) yr[k] = kiln_exp1(yr[k]);
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (long e = 0; e < full; e += 8)
            for (int j = 0; j < 8; j++) acc[j] += yr[e + j];
        float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (long e = full; e < n; e++) sum += yr[e];
        const float scale = 1 / sum;
        for (long k = 0; k < n; k++) yr[k] *= scale;
    }
}

// Philox4x32-10 (KilnGraph's Philox): block b's words 0-3 (counter (b, counter, 0, 0), key
// (seed, stream)) are the values of elements b, B + b, 2B + b and 3B + b, B = ceil(n / 4), each
// its top 24 bits over 2^24, exact in float. The ten rounds over a vector of blocks at once
// (32 x 32 -> 64-bit multiplies), four elements from each (a block an element: 4x the rounds,
// 0.4 ms a CNN step), stored to four contiguous runs.
// The ten rounds on (c0, c1, c2, c3) for block b.
#define KILN_PHILOX_BLOCK(b)                                                                        \
    uint32_t c0 = (uint32_t)(b), c1 = counter, c2 = 0, c3 = 0, k0 = seed, k1 = stream;              \
    for (int round = 0; round < 10; round++) {                                                      \
        const uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;              \
        const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;      \
        c1 = (uint32_t)p1;                                                                          \
        c3 = (uint32_t)p0;                                                                          \
        c0 = n0;                                                                                    \
        c2 = n2;                                                                                    \
        k0 += 0x9E3779B9u;                                                                          \
        k1 += 0xBB67AE85u;                                                                          \
    }

KILN_CLONES void kiln_philox_uniform_f32(float *r, long n, long b0, long b1, uint32_t counter, uint32_t seed, uint32_t stream) {
    const long quarter = (n + 3) / 4;
    // Blocks whose fourth element exists: four stores each, no test (so the loop vectorizes).
    const long whole = b1 < n - 3 * quarter ? b1 : n - 3 * quarter;
    float *r1 = r + quarter, *r2 = r + 2 * quarter, *r3 = r + 3 * quarter;
    long b = b0;
    for (; b < whole; b++) {
        KILN_PHILOX_BLOCK(b)
        r[b] = (float)(c0 >> 8) / 16777216.0f;
        r1[b] = (float)(c1 >> 8) / 16777216.0f;
        r2[b] = (float)(c2 >> 8) / 16777216.0f;
        r3[b] = (float)(c3 >> 8) / 16777216.0f;
    }
    for (; b < b1; b++) {
        KILN_PHILOX_BLOCK(b)
        r[b] = (float)(c0 >> 8) / 16777216.0f;
        if (quarter + b < n) r1[b] = (float)(c1 >> 8) / 16777216.0f;
        if (2 * quarter + b < n) r2[b] = (float)(c2 >> 8) / 16777216.0f;
    }
}

// 8-float vectors and their shuffles for 8 x 8 tile transposes; clang lowers them to whatever
// registers the clone has.
typedef float kiln_v8 __attribute__((ext_vector_type(8)));
#define KILN_LOAD8(v, p) kiln_v8 v; memcpy(&v, (p), 32)
#define KILN_STORE8(p, v) do { const kiln_v8 s_ = (v); memcpy((p), &s_, 32); } while (0)
#define KILN_LO(a, b) __builtin_shufflevector(a, b, 0, 8, 1, 9, 4, 12, 5, 13)
#define KILN_HI(a, b) __builtin_shufflevector(a, b, 2, 10, 3, 11, 6, 14, 7, 15)
#define KILN_LO2(a, b) __builtin_shufflevector(a, b, 0, 1, 8, 9, 4, 5, 12, 13)
#define KILN_HI2(a, b) __builtin_shufflevector(a, b, 2, 3, 10, 11, 6, 7, 14, 15)
#define KILN_LO4(a, b) __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11)
#define KILN_HI4(a, b) __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15)

// b[j * ldb + i] = a[i * lda + j] for an 8 x 8 tile: eight row loads, three rounds of shuffles
// (pairs of rows interleaved, then pairs of pairs, then halves swapped), and eight row stores.
static inline __attribute__((always_inline)) void kiln_tile8(const float *a, long lda, float *b, long ldb) {
    KILN_LOAD8(x0, a); KILN_LOAD8(x1, a + lda); KILN_LOAD8(x2, a + 2 * lda); KILN_LOAD8(x3, a + 3 * lda);
    KILN_LOAD8(x4, a + 4 * lda); KILN_LOAD8(x5, a + 5 * lda); KILN_LOAD8(x6, a + 6 * lda); KILN_LOAD8(x7, a + 7 * lda);
    const kiln_v8 t0 = KILN_LO(x0, x1), t1 = KILN_HI(x0, x1), t2 = KILN_LO(x2, x3), t3 = KILN_HI(x2, x3);
    const kiln_v8 t4 = KILN_LO(x4, x5), t5 = KILN_HI(x4, x5), t6 = KILN_LO(x6, x7), t7 = KILN_HI(x6, x7);
    const kiln_v8 s0 = KILN_LO2(t0, t2), s1 = KILN_HI2(t0, t2), s2 = KILN_LO2(t1, t3), s3 = KILN_HI2(t1, t3);
    const kiln_v8 s4 = KILN_LO2(t4, t6), s5 = KILN_HI2(t4, t6), s6 = KILN_LO2(t5, t7), s7 = KILN_HI2(t5, t7);
    KILN_STORE8(b, KILN_LO4(s0, s4)); KILN_STORE8(b + ldb, KILN_LO4(s1, s5));
    KILN_STORE8(b + 2 * ldb, KILN_LO4(s2, s6)); KILN_STORE8(b + 3 * ldb, KILN_LO4(s3, s7));
    KILN_STORE8(b + 4 * ldb, KILN_HI4(s0, s4)); KILN_STORE8(b + 5 * ldb, KILN_HI4(s1, s5));
    KILN_STORE8(b + 6 * ldb, KILN_HI4(s2, s6)); KILN_STORE8(b + 7 * ldb, KILN_HI4(s3, s7));
}

// y[c][r] = x[r][c] for rows r0 <= r < r1 of a rows x cols matrix (y is cols x rows): 8 x 8
// tiles, the edges element by element. Threads take disjoint row ranges.
KILN_CLONES void kiln_transpose_f32(const float *x, float *y, long rows, long cols, long r0, long r1) {
    long r = r0;
    for (; r + 8 <= r1; r += 8) {
        long c = 0;
        for (; c + 8 <= cols; c += 8) {
            kiln_tile8(x + r * cols + c, cols, y + c * rows + r, rows);
        }
        for (long i = r; i < r + 8; i++)
            for (long j = c; j < cols; j++) y[j * rows + i] = x[i * cols + j];
    }
    for (; r < r1; r++)
        for (long j = 0; j < cols; j++) y[j * rows + r] = x[r * cols + j];
}

// RowReductions.sum's order: eight accumulators, a[j] += x[e + j], combined pairwise, then the
// tail in order. One vector of accumulators, so the same additions in the same order.
KILN_CLONES float kiln_sum_f32(const float *x, long n) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const long full = n & ~7L;
    for (long e = 0; e < full; e += 8)
        for (int j = 0; j < 8; j++) a[j] += x[e + j];
    float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (long e = full; e < n; e++) s += x[e];
    return s;
}

// Column sums of rows: each column's accumulator stays in a register across the rows (a loop
// over rows that added into memory waited on each store), and still adds its values in row
// order, so the same bits as that loop.
#define KILN_ADD_ROWS(k)                                                            \
    for (; j + 16 * (k) <= w; j += 16 * (k)) {                                      \
        f16 acc[k];                                                                 \
        for (int q = 0; q < (k); q++) acc[q] = load16(into + j + 16 * q);           \
        for (long r = 0; r < count; r++)                                            \
            for (int q = 0; q < (k); q++) acc[q] += load16(rows + r * ld + j + 16 * q); \
        for (int q = 0; q < (k); q++) store16(into + j + 16 * q, acc[q]);           \
    }

KILN_CLONES void kiln_add_rows_f32(float *into, const float *rows, long count, long w, long ld) {
    long j = 0;
    KILN_ADD_ROWS(4)
    KILN_ADD_ROWS(3)
    KILN_ADD_ROWS(2)
    KILN_ADD_ROWS(1)
    for (; j < w; j++) {
        float a = into[j];
        for (long r = 0; r < count; r++) a += rows[r * ld + j];
        into[j] = a;
    }
}

// Unary passes: 0 neg, 1 sqrt (correctly rounded, as Swift's squareRoot), 2 relu (x > 0 ? x : 0,
// so NaN and -0 give 0).
KILN_CLONES void kiln_unary_f32(int op, float *r, const float *x, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        const f16 a = load16(x + i);
        store16(r + i, op == 0 ? -a : op == 1 ? __builtin_elementwise_sqrt(a) : RELU16(a));
    }
    for (; i < n; i++) r[i] = op == 0 ? -x[i] : op == 1 ? __builtin_elementwise_sqrt(x[i]) : x[i] > 0 ? x[i] : 0.0f;
}

// 3 x 3 windows, stride 1, padding 1, dilation 1 (a "same" convolution's), images b0 <= b < b1
// of [N, C, H, W] x; the patches [N, H, W, C, 3, 3] are written and read in memory order (the
// windows' own loops walked them a channel at a time, 36 bytes every C·36, at 10 GB/s).
// unfold: per image row, the three input rows of every channel are copied once, padded; then
// each window's 9 entries are one 8-float store and one float.
typedef float kiln_v4 __attribute__((ext_vector_type(4)));
#define KILN_LOAD4(v, p) kiln_v4 v; memcpy(&v, (p), 16)

KILN_CLONES void kiln_unfold3x3_f32(const float *x, float *out, long c, long h, long w, long b0, long b1, float pad) {
    float rows[c][3][w + 3];
    for (long b = b0; b < b1; b++)
        for (long i = 0; i < h; i++) {
            for (long ch = 0; ch < c; ch++)
                for (int p = 0; p < 3; p++) {
                    const long r = i + p - 1;
                    float *row = rows[ch][p];
                    row[0] = pad;
                    row[w + 1] = pad;
                    row[w + 2] = pad;
                    if (r < 0 || r >= h) {
                        for (long j = 1; j <= w; j++) row[j] = pad;
                    } else {
                        memcpy(row + 1, x + ((b * c + ch) * h + r) * w, (size_t)w * sizeof(float));
                    }
                }
            float *o = out + (b * h + i) * w * c * 9;
            for (long j = 0; j < w; j++)
                for (long ch = 0; ch < c; ch++, o += 9) {
                    KILN_LOAD4(r0, &rows[ch][0][j]); KILN_LOAD4(r1, &rows[ch][1][j]); KILN_LOAD4(r2, &rows[ch][2][j]);
                    kiln_v8 t = __builtin_shufflevector(r0, r1, 0, 1, 2, 4, 5, 6, 7, 7);
                    kiln_v8 u = __builtin_shufflevector(r2, r2, 0, 1, 2, 3, 0, 1, 2, 3);
                    KILN_STORE8(o, __builtin_shufflevector(t, u, 0, 1, 2, 3, 4, 5, 8, 9));
                    o[8] = r2[2];
                }
        }
}

// fold, unfold's adjoint, for the same windows: x[b][ch][y][·] is the sum of the patch entries
// over that pixel, added in the windows' own loop's order for each pixel (patch rows, then
// patches, ascending), so the same sums to the bit.
KILN_CLONES void kiln_fold3x3_f32(const float *cols, float *x, long c, long h, long w, long b0, long b1) {
    if (c % 8 == 0) {
        // Each patch row read once: a pixel's [c][9] entries transposed to [9][c] by 8 x 8 tiles,
        // then added 8 channels a vector into the three output rows the patch covers, which
        // are kept channel-innermost in a ring of three and written out as each is whole. (A
        // row of accumulators per channel took three passes over each patch row, 3 of its 9
        // entries each, an element at a time: 1.65x slower at conv2's from cache, 2.2x from L2.)
        const long stride = (w + 2) * c;
        float acc[3 * stride], t[9 * c];
        for (long b = b0; b < b1; b++) {
            memset(acc, 0, 2 * stride * sizeof(float));
            for (long i = 0; i < h; i++) {
                if (i + 1 < h) memset(acc + (i + 1) % 3 * stride, 0, stride * sizeof(float));
                const float *row = cols + (b * h + i) * w * c * 9;
                for (long u = 0; u < w; u++) {
                    const float *v = row + u * c * 9;
                    for (long ch = 0; ch < c; ch += 8) {
                        kiln_tile8(v + ch * 9, 9, t + ch, c);
                        for (long k = 0; k < 8; k++) t[8 * c + ch + k] = v[(ch + k) * 9 + 8];
                    }
                    // Patch row i's kernel row p covers output row i - 1 + p; each output row
                    // takes its patch rows in ascending order, and in each its patches, as the
                    // loops add them.
                    for (int p = 2; p >= 0; p--) {
                        const long y = i - 1 + p;
                        if (y < 0 || y >= h) continue;
                        float *a = acc + y % 3 * stride + u * c;
                        for (int q = 2; q >= 0; q--) {
                            const float *e = t + (p * 3 + q) * c;
                            float *aq = a + q * c;
                            for (long ch = 0; ch < c; ch += 8) {
                                KILN_LOAD8(sum, aq + ch);
                                KILN_LOAD8(d, e + ch);
                                KILN_STORE8(aq + ch, sum + d);
                            }
                        }
                    }
                }
                // Output row i - 1 is whole now, and after the last patch row, row i too.
                for (long y = i - 1; y <= i; y++) {
                    if (y < 0 || (y == i && i != h - 1)) continue;
                    const float *a = acc + y % 3 * stride + c;
                    for (long ch = 0; ch < c; ch++) {
                        float *o = x + ((b * c + ch) * h + y) * w;
                        for (long u = 0; u < w; u++) o[u] = a[u * c + ch];
                    }
                }
            }
        }
        return;
    }
    // Other channel counts: per image row, one accumulator per pixel and channel takes the
    // entries of the three patch rows that cover the row, read in memory order.
    float acc[c][w + 2];
    for (long b = b0; b < b1; b++)
        for (long y = 0; y < h; y++) {
            memset(acc, 0, sizeof acc);
            for (int p = 2; p >= 0; p--) {
                const long i = y + 1 - p;
                if (i < 0 || i >= h) continue;
                const float *v = cols + (b * h + i) * w * c * 9 + p * 3;
                for (long u = 0; u < w; u++)
                    for (long ch = 0; ch < c; ch++, v += 9) {
                        float *a = &acc[ch][u];
                        a[2] += v[2];
                        a[1] += v[1];
                        a[0] += v[0];
                    }
            }
            for (long ch = 0; ch < c; ch++) memcpy(x + ((b * c + ch) * h + y) * w, &acc[ch][1], (size_t)w * sizeof(float));
        }
}
