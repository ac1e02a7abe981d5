// Shared by every program Kiln builds. The host defines KILN_FP64 when the program computes
// in double precision.
#ifdef KILN_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double real;
typedef double4 real4;
typedef double8 real8;
#else
typedef float real;
typedef float4 real4;
typedef float8 real8;
#endif

// The sum of a vector's lanes (row kernels that read 8 values at a time).
inline real sum8(real8 v) {
    const real4 s = v.lo + v.hi;
    return (s.x + s.y) + (s.z + s.w);
}
