// The OpenCL 1.2 API: what PoCL and the NVIDIA driver both offer.
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
