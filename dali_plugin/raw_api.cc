// raw_api.cc: a small C ABI over the same bridge calls the DALI operator makes, for tests and
// benchmarks that drive the GPU backend outside DALI (on PyTorch tensors, with poisoned outputs and
// CUDA-event timing of the launch alone). Not a user API: users go through fn.robocache.*.
#include <cstring>
#include <string>
#include <vector>

#include "robocache_common.h"

extern "C" {

// Mirrored by ctypes in python/robocache/_raw.py.
struct RcRawResample {
  const char *method;
  const char *extrapolate;
  const char *dtype;
  double target_rate;        // used when > 0
  long long num_samples;     // used when > 0
  int data_type;             // DALIDataType
  int ts_type;               // DALIDataType
  int batch;
  int data_ndim;
  long long channels;
  const unsigned long long *data;    // per sample: data pointers (device for phases 0-2)
  const long long *rows;             // per sample: T
  const unsigned long long *ts;      // per sample: host timestamp pointers
  const unsigned long long *out;     // per sample: device output pointers
  const unsigned long long *out_ts;  // per sample: device output timestamp pointers
  long long *out_lens;               // per sample: written by phase -1
  unsigned long long host_scratch;   // pinned host buffer
  unsigned long long dev_scratch;    // device buffer
  unsigned long long scratch_bytes;  // written by phase -1; size of both buffers
  unsigned long long stream;         // cudaStream_t
};

// phase -1: validate and plan (fills out_lens, scratch_bytes); 0: stage + launch; 1: stage; 2: launch.
// Returns 0, or 1 with the error message in err.
__attribute__((visibility("default"))) int robocache_resample_raw(RcRawResample *r, int phase,
                                                                  char *err, int errlen) {
  try {
    robocache::ffi::ResampleConfig cfg{};
    cfg.method = r->method;
    cfg.extrapolate = r->extrapolate;
    cfg.dtype = r->dtype;
    cfg.has_target_rate = r->target_rate > 0;
    cfg.target_rate = r->target_rate;
    cfg.has_num_samples = r->num_samples > 0;
    cfg.num_samples = r->num_samples;
    auto op = robocache::ffi::resample_new(cfg);
    robocache::ffi::ResampleBatchIn batch{};
    batch.data_type = robocache_plugin::ToElemType(static_cast<dali::DALIDataType>(r->data_type));
    batch.ts_type = robocache_plugin::ToElemType(static_cast<dali::DALIDataType>(r->ts_type));
    batch.targets_type = robocache::ffi::ElemType::Other;
    std::vector<robocache::ffi::ResampleSampleIn> s(r->batch);
    for (int i = 0; i < r->batch; i++) {
      s[i] = {};
      s[i].data = r->data[i];
      s[i].data_ndim = r->data_ndim;
      s[i].rows = r->rows[i];
      s[i].channels = r->channels;
      s[i].ts = r->ts[i];
      s[i].ts_ndim = 1;
      s[i].ts_len = r->rows[i];
    }
    rust::Slice<const robocache::ffi::ResampleSampleIn> samples(s.data(), s.size());
    if (phase < 0) {
      robocache::ffi::resample_setup(*op, batch, samples,
                                     rust::Slice<int64_t>(reinterpret_cast<int64_t *>(r->out_lens), r->batch));
      r->scratch_bytes = robocache::ffi::resample_gpu_scratch_bytes(
          *op, batch, samples, rust::Slice<const int64_t>(reinterpret_cast<const int64_t *>(r->out_lens), r->batch));
      return 0;
    }
    std::vector<robocache::ffi::ResampleOut> outs(r->batch);
    for (int i = 0; i < r->batch; i++) outs[i] = {r->out[i], r->out_ts[i]};
    robocache::ffi::resample_run_gpu(*op, batch, samples,
                                     rust::Slice<const int64_t>(reinterpret_cast<const int64_t *>(r->out_lens), r->batch),
                                     rust::Slice<const robocache::ffi::ResampleOut>(outs.data(), outs.size()),
                                     r->host_scratch, r->scratch_bytes, r->dev_scratch, r->stream,
                                     static_cast<uint8_t>(phase));
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
