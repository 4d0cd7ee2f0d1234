// raw_align.cc: a small C ABI over the bridge calls fn.robocache.align makes, for the GPU evidence
// script that drives the GPU backend outside DALI (on PyTorch tensors, with poisoned outputs and
// timing of the launch alone). Not a user API: users go through fn.robocache.align.
#include <cstring>
#include <string>
#include <vector>

#include "robocache_common.h"

extern "C" {

// Mirrored by ctypes in python/robocache/_raw_align.py.
struct RcRawAlign {
  const char *methods;           // comma-separated, "" for the default
  const double *max_gap;         // [n_gap]
  int n_gap;
  int n_quat;
  const long long *quaternions;  // [n_quat] flat pairs
  const char *quaternion_order;
  const char *fill;
  const char *span;
  const char *dtype;
  double target_rate;            // used when > 0
  long long num_samples;         // used when > 0
  int num_streams;
  int has_ref;
  int data_type;                 // DALIDataType
  int ts_type;                   // DALIDataType
  int batch;
  int pad;
  const unsigned long long *data;    // [batch * N] device data pointers, sample-major
  const long long *rows;             // [batch * N]
  const long long *channels;         // [N]
  const unsigned long long *ts;      // [batch * N] host timestamp pointers
  const unsigned long long *ref;     // [batch] host reference pointers, or null
  const long long *ref_len;          // [batch]
  const unsigned long long *out;     // [batch] device outputs
  const unsigned long long *valid;   // [batch]
  const unsigned long long *out_ts;  // [batch]
  long long *out_lens;               // [batch], written by phase -1
  long long total_channels;          // written by phase -1
  unsigned long long host_scratch;   // pinned host buffer
  unsigned long long dev_scratch;    // device buffer
  unsigned long long scratch_bytes;  // written by phase -1; size of the host buffer
  unsigned long long stream;         // cudaStream_t
  unsigned long long dev_scratch_bytes;  // written by phase -1; size of the device buffer (emulation: of the host one)
};

// phase -1: validate and plan (fills out_lens, total_channels, scratch_bytes, dev_scratch_bytes); 0: stage + launch;
// 1: stage; 2: launch. Returns 0, or 1 with the error message in err.
__attribute__((visibility("default"))) int robocache_align_raw(RcRawAlign *r, int phase, char *err,
                                                               int errlen) {
  try {
    robocache::ffi::AlignConfig cfg{};
    const int ns = r->num_streams;
    cfg.num_inputs = 2 * ns + (r->has_ref ? 1 : 0);
    std::string m = r->methods ? r->methods : "";
    for (size_t a = 0; !m.empty() && a <= m.size();) {
      size_t b = m.find(',', a);
      if (b == std::string::npos) b = m.size();
      cfg.methods.push_back(rust::String(m.substr(a, b - a)));
      a = b + 1;
    }
    for (int i = 0; i < r->n_gap; i++) cfg.max_gap.push_back(r->max_gap[i]);
    for (int i = 0; i < r->n_quat; i++) cfg.quaternions.push_back(r->quaternions[i]);
    cfg.quaternion_order = r->quaternion_order;
    cfg.fill = r->fill;
    cfg.span = r->span;
    cfg.dtype = r->dtype;
    cfg.has_target_rate = r->target_rate > 0;
    cfg.target_rate = r->target_rate;
    cfg.has_num_samples = r->num_samples > 0;
    cfg.num_samples = r->num_samples;
    auto op = robocache::ffi::align_new(cfg);
    auto dt = robocache_plugin::ToElemType(static_cast<dali::DALIDataType>(r->data_type));
    auto tt = robocache_plugin::ToElemType(static_cast<dali::DALIDataType>(r->ts_type));
    std::vector<robocache::ffi::AlignStreamIn> s(static_cast<size_t>(r->batch) * ns);
    std::vector<robocache::ffi::AlignRefIn> refs(r->batch);
    for (int i = 0; i < r->batch; i++) {
      for (int q = 0; q < ns; q++) {
        auto &x = s[i * ns + q];
        x = {};
        x.data = r->data[i * ns + q];
        x.data_ndim = 2;
        x.rows = r->rows[i * ns + q];
        x.channels = r->channels[q];
        x.data_type = dt;
        x.ts = r->ts[i * ns + q];
        x.ts_ndim = 1;
        x.ts_len = r->rows[i * ns + q];
        x.ts_type = tt;
      }
      refs[i] = {};
      if (r->has_ref) {
        refs[i].ts = r->ref[i];
        refs[i].ndim = 1;
        refs[i].len = r->ref_len[i];
        refs[i].ts_type = tt;
      }
    }
    rust::Slice<const robocache::ffi::AlignStreamIn> streams(s.data(), s.size());
    rust::Slice<const robocache::ffi::AlignRefIn> rs(refs.data(), refs.size());
    auto lens = rust::Slice<const int64_t>(reinterpret_cast<const int64_t *>(r->out_lens), r->batch);
    if (phase < 0) {
      r->total_channels = robocache::ffi::align_setup(
          *op, streams, rs, rust::Slice<int64_t>(reinterpret_cast<int64_t *>(r->out_lens), r->batch));
      size_t sizes[2] = {0, 0};
      robocache::ffi::align_gpu_scratch(*op, streams, rs, lens, rust::Slice<size_t>(sizes, 2));
      r->scratch_bytes = sizes[0];
      r->dev_scratch_bytes = sizes[1];
      return 0;
    }
    std::vector<robocache::ffi::AlignOut> outs(r->batch);
    for (int i = 0; i < r->batch; i++) outs[i] = {r->out[i], r->valid[i], r->out_ts[i]};
    robocache::ffi::align_run_gpu(*op, streams, rs, lens,
                                  rust::Slice<const robocache::ffi::AlignOut>(outs.data(), outs.size()),
                                  r->host_scratch, r->scratch_bytes, r->dev_scratch, r->dev_scratch_bytes, r->stream,
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
