#include "vector_math.h"

// unfold and fold over channels-last images: a window position's channels are one run of c
// floats in the image and in the patches, and a patch row's kw positions one run of kw·c where
// the window lies inside the image (dilation 1), so each is a copy or a vector add. The loops
// are the CPU backend's general ones (WindowsChannelsLast.swift): the same values, and for fold
// the same additions in the same order, so the same bits.

#if defined(__x86_64__) && defined(__clang__)
#define KILN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KILN_CLONES
#endif

static inline void fill(float *restrict o, long n, float v) {
    for (long e = 0; e < n; e++) o[e] = v;
}

static inline void copy(float *restrict o, const float *restrict s, long n) {
    for (long e = 0; e < n; e++) o[e] = s[e];
}

static inline void add(float *restrict d, const float *restrict s, long n) {
    for (long e = 0; e < n; e++) d[e] += s[e];
}

// The windows of images b0 <= b < b1 in patch order: unfold copies each run of entries from
// its pixels (pad outside the image), fold adds it into them. Inlined into each, so `fold` is
// a constant there.
static inline __attribute__((always_inline)) void walk(float *image, float *cols, const struct kiln_window *g, long b0,
                                                      long b1, int fold, float pad) {
    const long c = g->c, run = g->kw * c;
    float *o = cols + b0 * g->oh * g->ow * g->kh * run;
    for (long b = b0; b < b1; b++)
        for (long i = 0; i < g->oh; i++)
            for (long j = 0; j < g->ow; j++) {
                const long c0 = j * g->sw - g->pw;
                const int whole = g->dw == 1 && c0 >= 0 && c0 + g->kw <= g->w;
                for (long p = 0; p < g->kh; p++, o += run) {
                    const long r = i * g->sh - g->ph + p * g->dh;
                    if (r < 0 || r >= g->h) {
                        if (!fold) fill(o, run, pad);
                        continue;
                    }
                    float *row = image + (b * g->h + r) * g->w * c;
                    if (whole) {
                        if (fold) add(row + c0 * c, o, run);
                        else copy(o, row + c0 * c, run);
                        continue;
                    }
                    for (long q = 0; q < g->kw; q++) {
                        const long col = c0 + q * g->dw;
                        if (col >= 0 && col < g->w) {
                            if (fold) add(row + col * c, o + q * c, c);
                            else copy(o + q * c, row + col * c, c);
                        } else if (!fold) {
                            fill(o + q * c, c, pad);
                        }
                    }
                }
            }
}

KILN_CLONES void kiln_unfold_nhwc_f32(const float *x, float *out, const struct kiln_window *g, long b0, long b1, float pad) {
    walk((float *)x, out, g, b0, b1, 0, pad);
}

KILN_CLONES void kiln_fold_nhwc_f32(const float *cols, float *x, const struct kiln_window *g, long b0, long b1) {
    fill(x + b0 * g->h * g->w * g->c, (b1 - b0) * g->h * g->w * g->c, 0);
    walk(x, (float *)cols, g, b0, b1, 1, 0);
}
