#include "vector_math.h"

// 2 x 2 max pooling of stride 2 over channels-last images: each window's four pixels are
// rows of c channels side by side, so the comparisons run over whole vectors of channels.
// The first largest element (row-major within the window; NaN wins) as the CPU backend's
// per-plane loops find it.

#if defined(__x86_64__) && defined(__clang__)
#define KILN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KILN_CLONES
#endif

KILN_CLONES void kiln_maxpool2x2_nhwc_f32(const float *restrict x, float *restrict out, long h, long w, long c, long b0, long b1) {
    const long oh = h / 2, ow = w / 2;
    for (long b = b0; b < b1; b++) {
        for (long i = 0; i < oh; i++) {
            for (long j = 0; j < ow; j++) {
                const float *p0 = x + ((b * h + 2 * i) * w + 2 * j) * c, *p1 = p0 + c, *p2 = p0 + w * c, *p3 = p2 + c;
                float *o = out + ((b * oh + i) * ow + j) * c;
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
