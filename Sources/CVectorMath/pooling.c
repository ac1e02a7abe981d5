#include "vector_math.h"

// 2 x 2 max pooling of stride 2 over channels-last images: each window's four pixels are
// rows of c channels side by side, so the comparisons run over whole vectors of channels.
// The first largest element (row-major within the window; NaN wins) as the CPU backend's
// per-plane loops find it.

#include <string.h>

#if defined(__x86_64__) && defined(__clang__)
#define KILN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KILN_CLONES
#endif

// Channels in vectors of 16 where they come in multiples of 16 (the CNN's 32 and 64): the
// loop over a window's channels then has no remainder to test (a loop of the compiler's own,
// with its run-time trip count, ran the CNN's first pooling at 26 GB/s).
typedef float pool16 __attribute__((vector_size(64)));
typedef int pool16i __attribute__((vector_size(64)));
#define P_LOAD(p) ({ pool16 v_; memcpy(&v_, (p), 64); v_; })
#define P_STORE(p, v) do { const pool16 t_ = (v); memcpy((p), &t_, 64); } while (0)
// a > m or a is NaN, as a mask of lanes.
#define P_TAKE(a, m) (((a) > (m)) | ((a) != (a)))
#define P_SELECT(mask, a, b) ((pool16)(((pool16i)(mask) & (pool16i)(a)) | (~(pool16i)(mask) & (pool16i)(b))))

KILN_CLONES void kiln_maxpool2x2_nhwc_f32(const float *restrict x, float *restrict out, long h, long w, long c, long b0, long b1) {
    const long oh = h / 2, ow = w / 2;
    for (long b = b0; b < b1; b++) {
        for (long i = 0; i < oh; i++) {
            for (long j = 0; j < ow; j++) {
                const float *p0 = x + ((b * h + 2 * i) * w + 2 * j) * c, *p1 = p0 + c, *p2 = p0 + w * c, *p3 = p2 + c;
                float *o = out + ((b * oh + i) * ow + j) * c;
                if (c % 16 == 0) {
                    for (long k = 0; k < c; k += 16) {
                        pool16 m = P_LOAD(p0 + k);
                        const pool16 v1 = P_LOAD(p1 + k), v2 = P_LOAD(p2 + k), v3 = P_LOAD(p3 + k);
                        m = P_SELECT(P_TAKE(v1, m), v1, m);
                        m = P_SELECT(P_TAKE(v2, m), v2, m);
                        m = P_SELECT(P_TAKE(v3, m), v3, m);
                        P_STORE(o + k, m);
                    }
                    continue;
                }
                for (long k = 0; k < c; k++) {
                    float m = p0[k];
                    m = (p1[k] > m || p1[k] != p1[k]) ? p1[k] : m;
                    m = (p2[k] > m || p2[k] != p2[k]) ? p2[k] : m;
                    m = (p3[k] > m || p3[k] != p3[k]) ? p3[k] : m;
                    o[k] = m;
                }
            }
        }
    }
}

KILN_CLONES void kiln_maxpool2x2_nhwc_grad_f32(const float *restrict x, const float *restrict up, float *restrict dx, long h, long w, long c, long b0, long b1) {
    const long oh = h / 2, ow = w / 2;
    for (long b = b0; b < b1; b++) {
        for (long i = 0; i < oh; i++) {
            for (long j = 0; j < ow; j++) {
                const long at = ((b * h + 2 * i) * w + 2 * j) * c;
                const float *p0 = x + at, *p1 = p0 + c, *p2 = p0 + w * c, *p3 = p2 + c;
                float *d0 = dx + at, *d1 = d0 + c, *d2 = d0 + w * c, *d3 = d2 + c;
                const float *u = up + ((b * oh + i) * ow + j) * c;
                if (c % 16 == 0) {
                    const pool16 zero = {0};
                    for (long k = 0; k < c; k += 16) {
                        const pool16 v0 = P_LOAD(p0 + k), v1 = P_LOAD(p1 + k), v2 = P_LOAD(p2 + k), v3 = P_LOAD(p3 + k);
                        const pool16i t1 = P_TAKE(v1, v0);
                        const pool16 m1 = P_SELECT(t1, v1, v0);
                        const pool16i t2 = P_TAKE(v2, m1);
                        const pool16 m2 = P_SELECT(t2, v2, m1);
                        const pool16i t3 = P_TAKE(v3, m2);
                        const pool16 v = P_LOAD(u + k);
                        P_STORE(d3 + k, P_SELECT(t3, v, zero));
                        P_STORE(d2 + k, P_SELECT(t2 & ~t3, v, zero));
                        P_STORE(d1 + k, P_SELECT(t1 & ~t2 & ~t3, v, zero));
                        P_STORE(d0 + k, P_SELECT(~t1 & ~t2 & ~t3, v, zero));
                    }
                    continue;
                }
                for (long k = 0; k < c; k++) {
                    float m = p0[k];
                    int best = 0;
                    int take = p1[k] > m || p1[k] != p1[k];
                    m = take ? p1[k] : m; best = take ? 1 : best;
                    take = p2[k] > m || p2[k] != p2[k];
                    m = take ? p2[k] : m; best = take ? 2 : best;
                    take = p3[k] > m || p3[k] != p3[k];
                    best = take ? 3 : best;
                    const float v = u[k];
                    d0[k] = best == 0 ? v : 0.0f;
                    d1[k] = best == 1 ? v : 0.0f;
                    d2[k] = best == 2 ? v : 0.0f;
                    d3[k] = best == 3 ? v : 0.0f;
                }
            }
        }
    }
}
