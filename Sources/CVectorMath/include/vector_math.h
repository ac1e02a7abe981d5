// The CPU backend's float exp and tanh over arrays, compiled for the widest vectors the CPU
// has. Swift compiles for the baseline x86-64 (SSE2, 4 floats a vector); these loops are
// cloned for AVX-512 and AVX2 and picked when the program loads. Each computes exactly what
// the Swift scalar code in KilnFloat.swift does, operation for operation (no fused
// multiply-adds), so results agree to the bit whichever clone runs.
#ifndef KILN_VECTOR_MATH_H
#define KILN_VECTOR_MATH_H

// r[i] = exp(x[i]) for i < n: Cephes' expf, within 2 ulp (KilnFloat's polynomialExp).
// r is x or does not overlap it.
void kiln_exp_f32(const float *x, float *r, long n);

// r[i] = tanh(x[i]) for i < n: Eigen's rational approximation, within 4e-7.
// r is x or does not overlap it.
void kiln_tanh_f32(const float *x, float *r, long n);

#endif
