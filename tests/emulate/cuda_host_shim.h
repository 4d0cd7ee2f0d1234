// cuda_host_shim.h: just enough of CUDA C for the host compiler to build a kernel source from
// kernels/ as plain C++, for tests on machines without a GPU (tests/python/test_align.py). Blocks
// run one after another with one thread each (blockDim.x == 1): the kernels stride their loops by
// blockDim.x, so one thread does the whole block's work, and __syncthreads() has nothing to wait
// for. Not for float16 (its conversions are PTX asm).
#pragma once
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "cuda_shim_common.h"

#define __align__(n) alignas(n)
// Dynamic shared memory: one static buffer (blocks run one after another).
#define RC_EXTERN_SHARED(name) alignas(16) static unsigned char name[1 << 16]
#define asm(...) (void)0

static rc_dim3 threadIdx, blockIdx, blockDim;

inline void __syncthreads() {}
template <typename T> inline T __ldg(const T *p) { return *p; }
// A 16-byte load must be 16-byte aligned, as on the GPU (there: a misaligned-address fault).
template <> inline uint4 __ldg(const uint4 *p) {
  if (reinterpret_cast<unsigned long long>(p) & 15) std::abort();
  return *p;
}
inline float __fdividef(float a, float b) { return a / b; }
using std::atan2;
using std::sin;
using std::sqrt;
