// raw_augment.cc: a small C ABI over the augmentation operators' bridge calls, for the GPU evidence
// script: it drives the GPU backends on PyTorch tensors outside DALI, so outputs can be poisoned
// before a run and the kernels timed on the caller's stream. Each call builds the operator afresh,
// so every call is the operator's iteration 0. Not a user API: users go through fn.robocache.*.
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "robocache_common.h"

extern "C" {

// Mirrored by ctypes in python/robocache/_raw_augment.py.
struct RcRawAugment {
  int op;                            // 0 temporal_jitter, 1 action_noise, 2 points_augment
  const char *text0;                 // jitter: method; noise: distribution; points: rotation
  const char *dtype;                 // "" or "bfloat16"
  long long seed;
  int data_type;                     // DALIDataType of the data
  int ts_type;                       // DALIDataType of the timestamps (jitter)
  int batch;
  int data_ndim;
  long long channels;                // C (jitter, noise) or columns (points)
  const unsigned long long *data;    // per sample: device data pointers
  const long long *rows;             // per sample: T or N
  const unsigned long long *ts;      // per sample: host timestamps (jitter)
  const double *args;                // per-op parameters, see below
  const double *low;                 // noise bounds (or null)
  const double *high;
  int bounds_len;
  const float *sigma;                // noise sigma
  int sigma_len;
  const unsigned long long *out;     // per sample: device outputs
  const unsigned long long *out2;    // per sample: jitter warped times / points transforms
  const unsigned long long *out3;    // per sample: points keep-masks
  long long *out_lens;               // per sample: written by phase -1 (jitter)
  unsigned long long host_scratch;
  unsigned long long dev_scratch;
  unsigned long long scratch_bytes;  // written by phase -1
  unsigned long long stream;
};
// args: jitter  [speed_lo, speed_hi, offset_lo, offset_hi, warp_strength, warp_knots, target_rate
//                (<= 0: none), num_samples (<= 0: none)]
//       noise   [p, correlation_time, rate (<= 0: none)]
//       points  [angle_lo, angle_hi, scale_lo, scale_hi, tx, ty, tz, jitter, jitter_clip, dropout]

namespace {

void RunJitter(RcRawAugment *r, int phase) {
  robocache::ffi::JitterConfig cfg{};
  cfg.method = r->text0;
  cfg.dtype = r->dtype;
  cfg.warp_knots = static_cast<int64_t>(r->args[5]);
  cfg.has_target_rate = r->args[6] > 0;
  cfg.target_rate = r->args[6];
  cfg.has_num_samples = r->args[7] > 0;
  cfg.num_samples = static_cast<int64_t>(r->args[7]);
  cfg.seed = r->seed;
  auto op = robocache::ffi::jitter_new(cfg);
  robocache::ffi::JitterBatchIn batch{};
  batch.data_type = robocache_plugin::ToElemType(static_cast<dali::DALIDataType>(r->data_type));
  batch.ts_type = robocache_plugin::ToElemType(static_cast<dali::DALIDataType>(r->ts_type));
  std::vector<robocache::ffi::JitterSampleIn> s(r->batch);
  for (int i = 0; i < r->batch; i++) {
    s[i] = {};
    s[i].data = r->data[i];
    s[i].data_ndim = r->data_ndim;
    s[i].rows = r->rows[i];
    s[i].channels = r->channels;
    s[i].ts = r->ts[i];
    s[i].ts_ndim = 1;
    s[i].ts_len = r->rows[i];
    s[i].speed_lo = r->args[0];
    s[i].speed_hi = r->args[1];
    s[i].offset_lo = r->args[2];
    s[i].offset_hi = r->args[3];
    s[i].warp_strength = r->args[4];
  }
  rust::Slice<const robocache::ffi::JitterSampleIn> samples(s.data(), s.size());
  robocache::ffi::jitter_setup(*op, batch, samples,
                               rust::Slice<int64_t>(reinterpret_cast<int64_t *>(r->out_lens), r->batch));
  if (phase < 0) {
    r->scratch_bytes = robocache::ffi::jitter_gpu_scratch_bytes(*op, batch, samples);
    return;
  }
  std::vector<robocache::ffi::ResampleOut> outs(r->batch);
  for (int i = 0; i < r->batch; i++) outs[i] = {r->out[i], r->out2[i]};
  robocache::ffi::jitter_run_gpu(*op, batch, samples,
                                 rust::Slice<const robocache::ffi::ResampleOut>(outs.data(), outs.size()),
                                 r->host_scratch, r->scratch_bytes, r->dev_scratch, r->stream);
}

void RunNoise(RcRawAugment *r, int phase) {
  robocache::ffi::NoiseConfig cfg{};
  cfg.distribution = r->text0;
  cfg.dtype = r->dtype;
  cfg.has_rate = r->args[2] > 0;
  cfg.rate = r->args[2];
  for (int k = 0; k < r->bounds_len; k++) {
    if (r->low) cfg.low.push_back(r->low[k]);
    if (r->high) cfg.high.push_back(r->high[k]);
  }
  cfg.seed = r->seed;
  auto op = robocache::ffi::noise_new(cfg);
  auto type = robocache_plugin::ToElemType(static_cast<dali::DALIDataType>(r->data_type));
  std::vector<robocache::ffi::NoiseSampleIn> s(r->batch);
  for (int i = 0; i < r->batch; i++) {
    s[i] = {};
    s[i].data = r->data[i];
    s[i].data_ndim = r->data_ndim;
    s[i].rows = r->rows[i];
    s[i].channels = r->channels;
    s[i].sigma = reinterpret_cast<size_t>(r->sigma);
    s[i].sigma_len = r->sigma_len;
    s[i].p = r->args[0];
    s[i].correlation_time = r->args[1];
  }
  rust::Slice<const robocache::ffi::NoiseSampleIn> samples(s.data(), s.size());
  robocache::ffi::noise_setup(*op, type, samples);
  if (phase < 0) {
    r->scratch_bytes = robocache::ffi::noise_gpu_scratch_bytes(*op, samples);
    return;
  }
  std::vector<size_t> outs(r->out, r->out + r->batch);
  robocache::ffi::noise_run_gpu(*op, type, samples, rust::Slice<const size_t>(outs.data(), outs.size()),
                                r->host_scratch, r->scratch_bytes, r->dev_scratch, r->stream);
}

void RunPoints(RcRawAugment *r, int phase) {
  robocache::ffi::AugPointsConfig cfg{};
  cfg.rotation = r->text0;
  cfg.seed = r->seed;
  auto op = robocache::ffi::points_augment_new(cfg);
  auto type = robocache_plugin::ToElemType(static_cast<dali::DALIDataType>(r->data_type));
  std::vector<robocache::ffi::AugPointsSampleIn> s(r->batch);
  const double *a = r->args;
  for (int i = 0; i < r->batch; i++) {
    s[i] = {};
    s[i].data = r->data[i];
    s[i].ndim = r->data_ndim;
    s[i].n = r->rows[i];
    s[i].dims = r->channels;
    s[i].angle_lo = a[0];
    s[i].angle_hi = a[1];
    s[i].scale_lo = a[2];
    s[i].scale_hi = a[3];
    s[i].tx = a[4];
    s[i].ty = a[5];
    s[i].tz = a[6];
    s[i].jitter = a[7];
    s[i].jitter_clip = a[8];
    s[i].dropout = a[9];
  }
  rust::Slice<const robocache::ffi::AugPointsSampleIn> samples(s.data(), s.size());
  robocache::ffi::points_augment_setup(*op, type, samples);
  if (phase < 0) {
    r->scratch_bytes = robocache::ffi::points_augment_gpu_scratch_bytes(*op, samples);
    return;
  }
  std::vector<robocache::ffi::AugPointsOut> outs(r->batch);
  for (int i = 0; i < r->batch; i++) outs[i] = {r->out[i], r->out2[i], r->out3[i]};
  robocache::ffi::points_augment_run_gpu(*op, samples, rust::Slice<const robocache::ffi::AugPointsOut>(outs.data(), outs.size()),
                                 r->host_scratch, r->scratch_bytes, r->dev_scratch, r->stream);
}

}  // namespace

// phase -1: validate and plan (fills out_lens for jitter, scratch_bytes); 0: run on the GPU.
// Returns 0, or 1 with the error message in err.
__attribute__((visibility("default"))) int robocache_augment_raw(RcRawAugment *r, int phase, char *err,
                                                                 int errlen) {
  try {
    switch (r->op) {
      case 0: RunJitter(r, phase); break;
      case 1: RunNoise(r, phase); break;
      case 2: RunPoints(r, phase); break;
      default: throw std::runtime_error("robocache_augment_raw: unknown op");
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
