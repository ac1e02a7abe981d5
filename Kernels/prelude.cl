// Shared by every program Kiln builds. The host defines KILN_FP64 when the program computes
// in double precision.
#ifdef KILN_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double real;
#else
typedef float real;
#endif
