// align_emulator.cc: kernels/align_core.cu + align.cu + align_flat.cu + align_sweep.cu built for the CPU with cuda_host_shim.h;
// one entry per dtype (and the split form for float32) with the signature of
// robocache::ops::align_gpu::Emulator (Phase::Emulate). Each entry runs the form the host packed for
// (RcAlignParams::design): the tiled kernel, a flat one, the sweep, or locate then gather over every block.
#include "cuda_host_shim.h"

// The tuning entry points too (align_f32_split: the split form; the flat forms' register caps).
#define RC_ALIGN_VARIANTS 3
#include "../../kernels/common.cuh"
#include "../../kernels/align_core.cu"
#include "../../kernels/align.cu"
#include "../../kernels/align_flat.cu"
#include "../../kernels/align_sweep.cu"

typedef void (*RcAlignKernel)(const RcAlignSample *, const int *, RcAlignParams);

// threads > 1 only for kernels without barriers or shared memory (their threads are independent, so
// running them one after another is exact): the strided loops then take real strides.
static void rc_emulate(RcAlignKernel k, unsigned long long samples, unsigned long long tile_sample,
                       const RcAlignParams *p, unsigned blocks, unsigned threads = 1) {
  blockDim.x = threads;
  for (unsigned b = 0; b < blocks; b++) {
    blockIdx.x = b;
    for (unsigned t = 0; t < threads; t++) {
      threadIdx.x = t;
      k(reinterpret_cast<const RcAlignSample *>(samples), reinterpret_cast<const int *>(tile_sample), *p);
    }
  }
}

#define RC_EMULATE(SUFFIX, TILED)                                                                   \
  extern "C" void emulate_align_##SUFFIX(unsigned long long samples, unsigned long long tile_sample, \
                                         const RcAlignParams *p, unsigned blocks) {                  \
    switch (p->design) {                                                                            \
      case 1: rc_emulate(align_flat_##SUFFIX, samples, tile_sample, p, blocks, 96); break;           \
      case 2: /* as the host launches it: the entry point of the timestamp kind */                  \
        rc_emulate(p->ts_int ? align_staged_i_##SUFFIX : align_staged_d_##SUFFIX, samples, tile_sample, p, blocks); \
        break;                                                                                      \
      case 4: rc_emulate(align_rows_##SUFFIX, samples, tile_sample, p, blocks); break;               \
      case 5: rc_emulate(align_regs_##SUFFIX, samples, tile_sample, p, blocks); break;               \
      case 6: rc_emulate(align_sweep_##SUFFIX, samples, tile_sample, p, blocks); break;              \
      case 3:                                                                                       \
        rc_emulate(align_locate_##SUFFIX, samples, tile_sample, p, blocks, 96);                      \
        rc_emulate(align_gather_##SUFFIX, samples, tile_sample, p, blocks, 96);                      \
        break;                                                                                      \
      default: rc_emulate(TILED, samples, tile_sample, p, blocks);                                   \
    }                                                                                               \
  }

RC_EMULATE(f32, align_f32)
RC_EMULATE(f64, align_f64)
RC_EMULATE(bf16, align_bf16)
extern "C" void emulate_align_f32_split(unsigned long long samples, unsigned long long tile_sample,
                                        const RcAlignParams *p, unsigned blocks) {
  rc_emulate(align_f32_split, samples, tile_sample, p, blocks);
}
