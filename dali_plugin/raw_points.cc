// raw_points.cc: a small C ABI over the point-cloud bridge calls, for tests and benchmarks that
// drive the GPU backend outside DALI (PyTorch tensors, poisoned outputs, CUPTI timing). Not a user
// API: users go through fn.robocache.voxel_downsample / voxelize / normalize.
#include <cstring>
#include <string>
#include <vector>

#include "robocache_common.h"

extern "C" {

// Mirrored by ctypes in python/robocache/_raw_points.py.
struct RcRawPoints {
  const char *kind;    // "voxel_downsample", "voxelize", "normalize"
  const char *mode;    // voxelize / normalize mode
  const char *anchor;  // "origin" or "min_bound"
  const float *voxel_size;
  int voxel_len;
  const float *origin;
  int origin_len;
  const float *range;
  int range_len;
  long long min_points;
  long long max_points;
  long long max_voxels;
  int return_counts;
  int batch;
  long long cols;
  const unsigned long long *data;  // per sample: device pointers
  const long long *rows;           // per sample: N
  long long *shapes;               // [batch][4][4]: written by phase -1 (when known) and phase 0
  const unsigned long long *outs;  // [batch][4] device output pointers
  unsigned long long host_scratch;  // pinned, host_bytes
  unsigned long long dev_scratch;   // device, dev_bytes
  unsigned long long host_bytes;    // written by phase -1
  unsigned long long dev_bytes;     // written by phase -1
  unsigned long long stream;
  int known;        // phase -1: 1 when shapes are known before running
  int need_finish;  // phase 0: 1 when shapes came back and phase 1 must follow
  unsigned long long emulator;  // 0: the GPU; else a CPU build of the kernels (tests/emulate/),
                                // with every pointer (scratch, points, outputs) host memory
  unsigned pass_hint;           // in/out (phase 0): the radix-pass launches learned so far (0: none);
                                // a raw caller's runs act as one operator instance's batches
};

// phase -1: validate, plan (shapes when known, scratch sizes); 0: run (one D2H copy + sync when
// shapes depend on the data); 1: finish a data-dependent run. Returns 0, or 1 with the message in err.
__attribute__((visibility("default"))) int robocache_points_raw(RcRawPoints *r, int phase, char *err, int errlen) {
  try {
    robocache::ffi::PointsConfig cfg{};
    cfg.kind = r->kind;
    cfg.mode = r->mode ? r->mode : "";
    cfg.anchor = r->anchor ? r->anchor : "origin";
    for (int i = 0; i < r->voxel_len; i++) cfg.voxel_size.push_back(r->voxel_size[i]);
    for (int i = 0; i < r->origin_len; i++) cfg.origin.push_back(r->origin[i]);
    for (int i = 0; i < r->range_len; i++) cfg.range.push_back(r->range[i]);
    cfg.min_points = r->min_points;
    cfg.max_points = r->max_points;
    cfg.max_voxels = r->max_voxels;
    cfg.return_counts = r->return_counts != 0;
    auto op = robocache::ffi::points_new(cfg);
    std::vector<robocache::ffi::PointsSampleIn> s(r->batch);
    for (int i = 0; i < r->batch; i++) {
      s[i] = {};
      s[i].data = r->data[i];
      s[i].ndim = 2;
      s[i].rows = r->rows[i];
      s[i].cols = r->cols;
    }
    rust::Slice<const robocache::ffi::PointsSampleIn> samples(s.data(), s.size());
    rust::Slice<int64_t> shapes(reinterpret_cast<int64_t *>(r->shapes), static_cast<size_t>(r->batch) * 16);
    if (phase < 0) {
      r->known = robocache::ffi::points_setup(*op, robocache::ffi::ElemType::Float32, samples, shapes) ? 1 : 0;
      size_t sizes[2] = {0, 0};
      robocache::ffi::points_gpu_scratch(*op, samples, rust::Slice<size_t>(sizes, 2));
      r->host_bytes = sizes[0];
      r->dev_bytes = sizes[1];
      return 0;
    }
    rust::Slice<const size_t> outs(reinterpret_cast<const size_t *>(r->outs), static_cast<size_t>(r->batch) * 4);
    if (phase == 0) {
      robocache::ffi::points_set_pass_hint(*op, r->pass_hint);
      r->need_finish = robocache::ffi::points_gpu_run(*op, samples, outs, r->host_scratch, r->host_bytes,
                                                      r->dev_scratch, r->stream, r->emulator, shapes)
                           ? 1
                           : 0;
      r->pass_hint = robocache::ffi::points_pass_hint(*op);
    } else {
      robocache::ffi::points_gpu_finish(*op, samples, outs, r->host_scratch, r->host_bytes, r->dev_scratch,
                                        r->stream, r->emulator);
    }
    return 0;
  } catch (const std::exception &e) {
    if (err && errlen > 0) {
      std::strncpy(err, e.what(), errlen - 1);
      err[errlen - 1] = 0;
    }
    return 1;
  }
}

}  // extern "C"
