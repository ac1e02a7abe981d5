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
