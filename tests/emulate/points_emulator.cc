// points_emulator.cc: kernels/points.cu + points_sort.cu built for the CPU with cuda_fiber_shim.h; one entry with the
// signature of robocache::ops::points_gpu::Emulator (Exec::Emulate): a kernel by name on a grid.
#include <cstdio>
#include <cstring>

#include "cuda_fiber_shim.h"

#include "../../kernels/common.cuh"
#include "../../kernels/points.cu"
#include "../../kernels/points_sort.cu"

extern "C" void emulate_points(const char *name, unsigned gx, unsigned gy, unsigned block, const RcPointsBufs *b,
                               const RcPointsParams *p) {
  using K = void (*)(RcPointsBufs, RcPointsParams);
  static const struct {
    const char *name;
    K fn;
  } table[] = {
      {"points_init", points_init},         {"points_bounds", points_bounds},
      {"points_hist", points_hist},         {"points_hist4", points_hist4},
      {"points_pass", points_pass},         {"points_runs", points_runs},
      {"points_runs48", points_runs48},     {"points_select", points_select},
      {"points_finalize", points_finalize}, {"points_finalize_ldg", points_finalize_ldg},
      {"points_passw", points_passw},       {"points_finalize2", points_finalize2},
      {"points_finalize4", points_finalize4},   {"points_passw4", points_passw4},
      {"points_passw2", points_passw2},         {"points_bounds4", points_bounds4},
      {"points_dense_zero", points_dense_zero}, {"points_dense_acc", points_dense_acc},
      {"points_dense_mean", points_dense_mean}, {"points_radius", points_radius},
      {"points_apply", points_apply},           {"points_local", points_local},
  };
  for (const auto &k : table)
    if (std::strcmp(k.name, name) == 0) {
      RcPointsBufs bb = *b;
      RcPointsParams pp = *p;
      K fn = k.fn;
      rc_launch(gx, gy, block, [fn, bb, pp]() { fn(bb, pp); });
      return;
    }
  std::fprintf(stderr, "points_emulator: no kernel %s\n", name);
  std::abort();
}
