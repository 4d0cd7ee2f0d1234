// temporal_jitter.cc: schema (the user documentation), output shapes and the calls into Rust for
// robocache__TemporalJitter (fn.robocache.temporal_jitter). The GPU backend launches resample.cu
// from Rust on ws.stream() with the host-drawn warped times as targets.
#include "augment.h"

#include "dali/kernels/dynamic_scratchpad.h"

namespace dali {

DALI_SCHEMA(robocache__TemporalJitter)
    .DocStr(R"(Replays trajectories at a random speed through a random smooth time warp (RoboCache).

Each sample is a trajectory ``data`` ``[T, C]`` (or ``[T]``) with its ``timestamps`` ``[T]`` (float64
seconds or int64 nanoseconds, strictly increasing; a **CPU input on both backends**). Per sample the
operator draws

* a speed factor ``v`` uniform in ``speed`` (``v > 1`` plays faster, so the output is shorter),
* a start offset ``o`` uniform in ``offset`` seconds (clamped to the recorded span ``D``),
* when ``warp_strength > 0``, a smooth monotonic warp ``W`` of ``[0, 1]`` onto itself, in the style of
  tsaug's TimeWarp: speeds ``1 + warp_strength * u`` (``u`` uniform in ``[-1, 1]``) at
  ``warp_knots + 2`` evenly spaced knots, linearly interpolated, integrated and normalised,

and replays the recording from ``t0 + o``. The output grid is ``tau_k = k / rate`` seconds, ``rate``
being ``target_rate`` or, by default, the sample's own mean rate ``(T - 1) / D``. Its length is
``num_samples`` when given (a fixed-length training window lasting ``Do = (N - 1) / rate``), else
as long as the replay lasts (``Do = (D - o) / v``, ``N = floor(Do * rate) + 1``). Output time ``tau``
reads the source at ``s(tau) = min(t0 + o + L * W(tau / Do), t_last)``, ``L = v * Do`` (``D - o``
without ``num_samples``): the mean playback speed over the window is exactly ``v``, and a window that
runs past the end of the recording holds the last value.

Outputs: the data at the warped times (interpolated as ``fn.robocache.resample`` does, with
``method``), and the **warped source timestamps** ``s(tau_k)`` ``[N]`` in the dtype of ``timestamps``;
the output grid itself is ``t0 + tau_k``. Another stream of the same episode (camera frames next to
actions) goes through the same warp when given the same ``seed``, ranges, ``target_rate`` and
``num_samples`` and timestamps starting at the same ``t0``: the draws depend only on (seed,
iteration, sample index), not on the data, so frames picked at the warped times (``method="nearest"``)
stay aligned with the actions.

**Randomness.** Draws come from Philox4x32-10 keyed by ``seed``, the operator's iteration counter
(batches since the pipeline was built) and the sample index: the same seed gives the same output on
every run and on both backends. The draws are made on the host; the GPU backend interpolates the
whole batch in one kernel launch with one host-to-device copy, and gives the same results as the
CPU backend (bit for bit for float32).

**Errors** name ``robocache.temporal_jitter`` and the sample: an empty or inverted ``speed`` range or a
speed <= 0, a negative or inverted ``offset``, ``warp_strength`` outside ``[0, 1)``, ``target_rate <= 0``,
``num_samples < 1``, ``warp_knots`` outside 0..64, timestamps not strictly increasing or not float64 /
int64, length mismatches, unsupported dtypes.
)")
    .NumInput(2)
    .InputDox(0, "data", "TensorList", "Trajectories ``[T, C]`` or ``[T]``: float32, float16, float64, or uint16 bfloat16 bits with ``dtype=\"bfloat16\"``.")
    .InputDox(1, "timestamps", "TensorList (CPU)", "Per-sample timestamps ``[T]``: float64 seconds or int64 nanoseconds, strictly increasing.")
    .InputDevice(1, dali::InputDevice::CPU)
    .NumOutput(2)
    .AddRandomSeedArg()
    .AddOptionalArg<float>("speed", "Speed factor range ``[lo, hi]``, ``0 < lo <= hi``; uniform. Default ``[0.8, 1.2]``. Per-sample argument input allowed.", std::vector<float>{0.8f, 1.2f}, true)
    .AddOptionalArg<float>("offset", "Random start offset range in seconds ``[lo, hi]``, ``0 <= lo <= hi``; uniform. Default ``[0, 0]`` (start at the first timestamp). Per-sample argument input allowed.", std::vector<float>{0.f, 0.f}, true)
    .AddOptionalArg<float>("warp_strength", "Strength of the smooth time warp in ``[0, 1)``: knot speeds vary within ``1 +- warp_strength``. Default 0 (no warp). Per-sample argument input allowed.", 0.f, true)
    .AddOptionalArg<int>("warp_knots", "Interior knots of the warp's speed curve, 0..64. Default 4.", 4)
    .AddOptionalArg<float>("target_rate", "Output rate in Hz (> 0). Default: the sample's own mean rate ``(T - 1) / D``.", nullptr)
    .AddOptionalArg<int>("num_samples", "Fixed number of output points (>= 1) at the output rate. Default: as many as the replay lasts.", nullptr)
    .AddOptionalArg("method", "``\"linear\"`` (default), ``\"nearest\"`` or ``\"previous\"``, as in ``fn.robocache.resample``.", std::string("linear"))
    .AddOptionalArg("dtype", "``\"bfloat16\"`` declares uint16 ``data`` as bfloat16 bit patterns; default ``\"\"`` takes the input's type.", std::string(""));

namespace {

rust::Box<robocache::ffi::JitterOp> MakeJitter(const OpSpec &spec) {
  robocache::ffi::JitterConfig cfg{};
  cfg.method = spec.GetArgument<std::string>("method");
  cfg.dtype = spec.GetArgument<std::string>("dtype");
  float rate = 0.f;
  cfg.has_target_rate = spec.TryGetArgument(rate, "target_rate");
  cfg.target_rate = rate;
  int n = 0;
  cfg.has_num_samples = spec.TryGetArgument(n, "num_samples");
  cfg.num_samples = n;
  cfg.warp_knots = spec.GetArgument<int>("warp_knots");
  cfg.seed = spec.GetArgument<int64_t>("seed");
  try {
    return robocache::ffi::jitter_new(cfg);
  } catch (const rust::Error &e) {
    DALI_FAIL(std::string(e.what()));
  }
}

}  // namespace

template <typename Backend>
RobocacheTemporalJitter<Backend>::RobocacheTemporalJitter(const OpSpec &spec)
    : Operator<Backend>(spec), op_(MakeJitter(spec)), speed_("speed", spec), offset_("offset", spec),
      warp_strength_("warp_strength", spec) {}

template <typename Backend>
bool RobocacheTemporalJitter<Backend>::SetupImpl(std::vector<OutputDesc> &output_desc,
                                                 const Workspace &ws) {
  const auto &data = ws.Input<Backend>(0);
  const auto &ts = ws.Input<CPUBackend>(1);
  int n = data.num_samples();
  DALI_ENFORCE(ts.num_samples() == n, make_string("robocache.temporal_jitter: data has ", n,
                                                  " samples but timestamps has ", ts.num_samples()));
  speed_.Acquire(spec_, ws, n, TensorShape<1>(2));
  offset_.Acquire(spec_, ws, n, TensorShape<1>(2));
  warp_strength_.Acquire(spec_, ws, n);
  batch_.data_type = robocache_plugin::ToElemType(data.type());
  batch_.ts_type = robocache_plugin::ToElemType(ts.type());
  samples_.resize(n);
  for (int i = 0; i < n; i++) {
    auto &s = samples_[i];
    auto dsh = data.tensor_shape_span(i);
    auto tsh = ts.tensor_shape_span(i);
    s = {};
    s.data = reinterpret_cast<size_t>(data.raw_tensor(i));
    s.data_ndim = data.sample_dim();
    s.rows = dsh.size() >= 1 ? dsh[0] : 0;
    s.channels = dsh.size() >= 2 ? dsh[1] : 1;
    s.ts = reinterpret_cast<size_t>(ts.raw_tensor(i));
    s.ts_ndim = ts.sample_dim();
    s.ts_len = tsh.size() >= 1 ? tsh[0] : 0;
    s.speed_lo = speed_[i].data[0];
    s.speed_hi = speed_[i].data[1];
    s.offset_lo = offset_[i].data[0];
    s.offset_hi = offset_[i].data[1];
    s.warp_strength = warp_strength_[i].data[0];
  }
  out_lens_.assign(n, 0);
  ROBOCACHE_CALL(robocache::ffi::jitter_setup(
      *op_, batch_, rust::Slice<const robocache::ffi::JitterSampleIn>(samples_.data(), n),
      rust::Slice<int64_t>(out_lens_.data(), n)));
  int nd = data.sample_dim();
  output_desc.resize(2);
  output_desc[0].type = data.type();
  output_desc[1].type = ts.type();
  output_desc[0].shape.resize(n, nd);
  output_desc[1].shape.resize(n, 1);
  for (int i = 0; i < n; i++) {
    if (nd == 2)
      output_desc[0].shape.set_tensor_shape(i, TensorShape<2>(out_lens_[i], samples_[i].channels));
    else
      output_desc[0].shape.set_tensor_shape(i, TensorShape<1>(out_lens_[i]));
    output_desc[1].shape.set_tensor_shape(i, TensorShape<1>(out_lens_[i]));
  }
  return true;
}

template <>
void RobocacheTemporalJitter<CPUBackend>::RunImpl(Workspace &ws) {
  auto &out = ws.Output<CPUBackend>(0);
  auto &out_ts = ws.Output<CPUBackend>(1);
  const auto &in = ws.Input<CPUBackend>(0);
  if (!in.GetLayout().empty()) out.SetLayout(in.GetLayout());
  auto &tp = ws.GetThreadPool();
  int n = samples_.size();
  for (int i = 0; i < n; i++) {
    tp.AddWork(
        [this, &out, &out_ts, i](int) {
          robocache::ffi::ResampleOut o{reinterpret_cast<size_t>(out.raw_mutable_tensor(i)),
                                        reinterpret_cast<size_t>(out_ts.raw_mutable_tensor(i))};
          ROBOCACHE_CALL(robocache::ffi::jitter_run_cpu(*op_, batch_, i, samples_[i], o));
        },
        out_lens_[i] * samples_[i].channels + samples_[i].rows);
  }
  tp.RunAll();
}

template <>
void RobocacheTemporalJitter<GPUBackend>::RunImpl(Workspace &ws) {
  auto &out = ws.Output<GPUBackend>(0);
  auto &out_ts = ws.Output<GPUBackend>(1);
  const auto &in = ws.Input<GPUBackend>(0);
  if (!in.GetLayout().empty()) out.SetLayout(in.GetLayout());
  int n = samples_.size();
  std::vector<robocache::ffi::ResampleOut> outs(n);
  for (int i = 0; i < n; i++) {
    outs[i].out = reinterpret_cast<size_t>(out.raw_mutable_tensor(i));
    outs[i].out_ts = reinterpret_cast<size_t>(out_ts.raw_mutable_tensor(i));
  }
  auto samples = rust::Slice<const robocache::ffi::JitterSampleIn>(samples_.data(), n);
  size_t bytes = 0;
  ROBOCACHE_CALL(bytes = robocache::ffi::jitter_gpu_scratch_bytes(*op_, batch_, samples));
  if (bytes == 0) return;
  kernels::DynamicScratchpad scratch(AccessOrder(ws.stream()));
  uint8_t *host = scratch.AllocatePinned<uint8_t>(bytes, 64);
  uint8_t *dev = scratch.AllocateGPU<uint8_t>(bytes, 64);
  ROBOCACHE_CALL(robocache::ffi::jitter_run_gpu(
      *op_, batch_, samples, rust::Slice<const robocache::ffi::ResampleOut>(outs.data(), n),
      reinterpret_cast<size_t>(host), bytes, reinterpret_cast<size_t>(dev),
      reinterpret_cast<size_t>(ws.stream())));
}

DALI_REGISTER_OPERATOR(robocache__TemporalJitter, RobocacheTemporalJitter<CPUBackend>, CPU);
DALI_REGISTER_OPERATOR(robocache__TemporalJitter, RobocacheTemporalJitter<GPUBackend>, GPU);

}  // namespace dali
