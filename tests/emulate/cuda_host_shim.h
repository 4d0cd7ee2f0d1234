// cuda_host_shim.h: just enough of CUDA C for the host compiler to build a kernel source from
// kernels/ as plain C++, for tests on machines without a GPU (tests/python/test_align.py). Blocks
// run one after another with one thread each (blockDim.x == 1): the kernels stride their loops by
// blockDim.x, so one thread does the whole block's work, and __syncthreads() has nothing to wait
// for. Not for float16 (its conversions are PTX asm).
#pragma once
#include <cmath>
#include <cstring>

#define __device__
#define __global__
#define __forceinline__ inline
#define __restrict__
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// Dynamic shared memory: one static buffer (blocks run one after another).
#define RC_EXTERN_SHARED(name) alignas(16) static unsigned char name[1 << 16]
#define asm(...) (void)0

struct rc_dim3 { unsigned x = 0, y = 0, z = 0; };
static rc_dim3 threadIdx, blockIdx, blockDim;
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct uint2 { unsigned x, y; };
struct int2 { int x, y; };

inline void __syncthreads() {}
template <typename T> inline T __ldg(const T *p) { return *p; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned i) { float f; std::memcpy(&f, &i, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned i; std::memcpy(&i, &f, 4); return i; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
inline long long __double2ll_rn(double x) { return std::llrint(x); }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
using std::atan2;
using std::sin;
using std::sqrt;
