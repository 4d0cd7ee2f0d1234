// align_emulator.cc: kernels/align.cu built for the CPU with cuda_host_shim.h; one entry per
// dtype (and the split form for float32) with the signature of robocache::ops::align_gpu::Emulator (Phase::Emulate).
#include "cuda_host_shim.h"

// The tuning entry points too (align_f32_split: the split form).
#define RC_ALIGN_VARIANTS 1
#include "../../kernels/common.cuh"
#include "../../kernels/align.cu"

#define RC_EMULATE(SUFFIX)                                                                          \
  extern "C" void emulate_align_##SUFFIX(unsigned long long samples, unsigned long long tile_sample, \
                                         const RcAlignParams *p, unsigned blocks) {                  \
    blockDim.x = 1;                                                                                 \
    threadIdx.x = 0;                                                                                \
    for (unsigned b = 0; b < blocks; b++) {                                                         \
      blockIdx.x = b;                                                                               \
      align_##SUFFIX(reinterpret_cast<const RcAlignSample *>(samples),                              \
                     reinterpret_cast<const int *>(tile_sample), *p);                               \
    }                                                                                               \
  }

RC_EMULATE(f32)
RC_EMULATE(f64)
RC_EMULATE(bf16)
RC_EMULATE(f32_split)
