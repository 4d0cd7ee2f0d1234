// resample.cc: schema (the user documentation), output-shape inference and the calls into Rust for
// robocache__Resample, exposed in Python as fn.robocache.resample. CPU and GPU in one file: the GPU
// operator launches from Rust on ws.stream(); there are no .cu files here.
#include "resample.h"

#include "dali/kernels/dynamic_scratchpad.h"

namespace dali {

DALI_SCHEMA(robocache__Resample)
    .DocStr(R"(Resamples trajectories onto a new time grid (RoboCache).

Each sample is a trajectory ``data`` of shape ``[T, C]`` (layout ``"TC"``; ``[T]`` is accepted and
gives ``[N]``) with its own ``timestamps`` ``[T]``. Samples of a batch may have different ``T`` and
different numbers of targets ``N``; ``C`` is shared within a batch.

The target grid is given by exactly one of:

* ``target_rate`` (Hz): the uniform grid ``a + k / target_rate`` for ``k = 0, 1, ...`` while it does
  not pass ``b`` (a point within 1e-6 of a period of ``b`` is included and set to ``b``);
* ``num_samples``: ``N`` evenly spaced points from ``a`` to ``b``, both included (a fixed output
  length, what a training window needs);
* a third input ``target_timestamps`` ``[N]`` per sample, of the same dtype as ``timestamps``, in any
  order.

``a`` and ``b`` are the sample's first and last timestamps, or ``start`` / ``end`` seconds after the
first timestamp when those are given (per-sample argument inputs allowed: use them to cut windows).

The second output holds the target timestamps in the dtype of ``timestamps``. With int64 nanosecond
timestamps the targets are rounded to whole nanoseconds.

**Dtypes.** ``data``: float32, float16, float64, or bfloat16. DALI has no bfloat16 type, so bfloat16
travels as uint16 bit patterns: pass them with ``dtype="bfloat16"`` and the output is uint16 holding
bfloat16 bits; on the PyTorch side ``tensor.view(torch.bfloat16)`` reinterprets it without a copy
(``robocache.torch.as_bfloat16``). The output keeps the input dtype; arithmetic is float32 (float64
for float64 data), weights are computed in float64. ``timestamps``: float64 seconds or int64
nanoseconds, finite and strictly increasing.

**Devices.** On the GPU backend, ``data`` must be on the GPU (call ``.gpu()``); ``timestamps`` and
``target_timestamps`` are CPU inputs on both backends: output lengths depend on their values, and
reading them from the GPU would stall DALI's stream. The GPU backend copies them to the device with
one asynchronous copy per batch and resamples the whole batch in one kernel launch, compiled at first
use by NVRTC for the GPU present. Both backends give identical results (bit for bit for float32).

**Methods.** ``"linear"`` (``d[i] + w * (d[i+1] - d[i])``), ``"nearest"`` (ties go to the earlier
sample) and ``"previous"`` (zero-order hold: the last sample at or before the target, for discrete
channels such as a gripper command). A target that equals a timestamp returns that row exactly.
NaN values in ``data`` propagate to the outputs that use them.

**Errors** name ``robocache.resample`` and the sample index: timestamps not strictly increasing or not
finite, ``T == 0``, data and timestamps lengths differing, ``target_rate <= 0``, a grid over 2^31 - 1
points, unsupported dtypes, wrong numbers of dimensions, none or more than one target form, and, with
``extrapolate="error"``, targets outside the recorded span.
)")
    .NumInput(2, 3)
    .InputDox(0, "data", "TensorList", "Trajectories ``[T, C]`` or ``[T]``; float32, float16, float64, or uint16 holding bfloat16 bits with ``dtype=\"bfloat16\"``.")
    .InputDox(1, "timestamps", "TensorList (CPU)", "Per-sample timestamps ``[T]``: float64 seconds or int64 nanoseconds, strictly increasing.")
    .InputDox(2, "target_timestamps", "TensorList (CPU)", "Optional per-sample target times ``[N]`` in the dtype of ``timestamps``.")
    .InputDevice(1, 3, dali::InputDevice::CPU)
    .NumOutput(2)
    .AddOptionalArg<float>("target_rate", "Target rate in Hz (> 0). Exclusive with ``num_samples`` and ``target_timestamps``.", nullptr)
    .AddOptionalArg<int>("num_samples", "Number of evenly spaced output points (>= 1), both ends included. Exclusive with ``target_rate`` and ``target_timestamps``.", nullptr)
    .AddOptionalArg<float>("start", "Grid start, seconds after the sample's first timestamp. Default: 0 (the first timestamp).", nullptr, true)
    .AddOptionalArg<float>("end", "Grid end, seconds after the sample's first timestamp. Default: the last timestamp.", nullptr, true)
    .AddOptionalArg("method", "``\"linear\"`` (default), ``\"nearest\"`` or ``\"previous\"``.", std::string("linear"))
    .AddOptionalArg("extrapolate", "Targets outside the recorded span: ``\"clamp\"`` (default: hold the edge value), ``\"nan\"`` or ``\"error\"``.", std::string("clamp"))
    .AddOptionalArg("dtype", "``\"bfloat16\"`` declares uint16 ``data`` as bfloat16 bit patterns; default ``\"\"`` takes the input's type.", std::string(""));

namespace {

robocache::ffi::ResampleConfig MakeConfig(const OpSpec &spec) {
  robocache::ffi::ResampleConfig cfg{};
  cfg.method = spec.GetArgument<std::string>("method");
  cfg.extrapolate = spec.GetArgument<std::string>("extrapolate");
  cfg.dtype = spec.GetArgument<std::string>("dtype");
  float rate = 0.f;
  cfg.has_target_rate = spec.TryGetArgument(rate, "target_rate");
  cfg.target_rate = rate;
  int n = 0;
  cfg.has_num_samples = spec.TryGetArgument(n, "num_samples");
  cfg.num_samples = n;
  cfg.has_target_timestamps = spec.NumRegularInput() == 3;
  return cfg;
}

rust::Box<robocache::ffi::ResampleOp> MakeOp(const OpSpec &spec) {
  auto cfg = MakeConfig(spec);
  try {
    return robocache::ffi::resample_new(cfg);
  } catch (const rust::Error &e) {
    DALI_FAIL(std::string(e.what()));
  }
}

}  // namespace

template <typename Backend>
RobocacheResample<Backend>::RobocacheResample(const OpSpec &spec)
    : Operator<Backend>(spec), op_(MakeOp(spec)), start_("start", spec), end_("end", spec) {
  has_targets_ = spec.NumRegularInput() == 3;
}

template <typename Backend>
void RobocacheResample<Backend>::CollectSamples(const Workspace &ws) {
  const auto &data = ws.Input<Backend>(0);
  const auto &ts = ws.Input<CPUBackend>(1);
  int n = data.num_samples();
  DALI_ENFORCE(ts.num_samples() == n,
               make_string("robocache.resample: data has ", n, " samples but timestamps has ",
                           ts.num_samples()));
  if (start_.HasExplicitValue()) start_.Acquire(spec_, ws, n);
  if (end_.HasExplicitValue()) end_.Acquire(spec_, ws, n);
  batch_.data_type = robocache_plugin::ToElemType(data.type());
  batch_.ts_type = robocache_plugin::ToElemType(ts.type());
  batch_.targets_type = robocache::ffi::ElemType::Other;
  const TensorList<CPUBackend> *tg = nullptr;
  if (has_targets_) {
    tg = &ws.Input<CPUBackend>(2);
    DALI_ENFORCE(tg->num_samples() == n,
                 make_string("robocache.resample: data has ", n,
                             " samples but target_timestamps has ", tg->num_samples()));
    batch_.targets_type = robocache_plugin::ToElemType(tg->type());
  }
  data_ndim_ = data.sample_dim();
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
    if (tg) {
      auto gsh = tg->tensor_shape_span(i);
      s.targets = reinterpret_cast<size_t>(tg->raw_tensor(i));
      s.targets_ndim = tg->sample_dim();
      s.targets_len = gsh.size() >= 1 ? gsh[0] : 0;
    }
    if (start_.HasExplicitValue()) {
      s.has_start = true;
      s.start = start_[i].data[0];
    }
    if (end_.HasExplicitValue()) {
      s.has_end = true;
      s.end = end_[i].data[0];
    }
  }
}

template <typename Backend>
bool RobocacheResample<Backend>::SetupImpl(std::vector<OutputDesc> &output_desc,
                                           const Workspace &ws) {
  CollectSamples(ws);
  int n = samples_.size();
  out_lens_.assign(n, 0);
  ROBOCACHE_CALL(robocache::ffi::resample_setup(
      *op_, batch_, rust::Slice<const robocache::ffi::ResampleSampleIn>(samples_.data(), n),
      rust::Slice<int64_t>(out_lens_.data(), n)));
  const auto &data = ws.Input<Backend>(0);
  const auto &ts = ws.Input<CPUBackend>(1);
  output_desc.resize(2);
  output_desc[0].type = data.type();
  output_desc[1].type = ts.type();
  output_desc[0].shape.resize(n, data_ndim_);
  output_desc[1].shape.resize(n, 1);
  for (int i = 0; i < n; i++) {
    if (data_ndim_ == 2)
      output_desc[0].shape.set_tensor_shape(i, TensorShape<2>(out_lens_[i], samples_[i].channels));
    else
      output_desc[0].shape.set_tensor_shape(i, TensorShape<1>(out_lens_[i]));
    output_desc[1].shape.set_tensor_shape(i, TensorShape<1>(out_lens_[i]));
  }
  return true;
}

template <>
void RobocacheResample<CPUBackend>::RunImpl(Workspace &ws) {
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
          ROBOCACHE_CALL(robocache::ffi::resample_run_cpu(*op_, batch_, i, samples_[i], o));
        },
        out_lens_[i] * samples_[i].channels + samples_[i].rows);
  }
  tp.RunAll();
}

template <>
void RobocacheResample<GPUBackend>::RunImpl(Workspace &ws) {
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
  auto samples = rust::Slice<const robocache::ffi::ResampleSampleIn>(samples_.data(), n);
  size_t bytes = 0;
  auto lens = rust::Slice<const int64_t>(out_lens_.data(), n);
  ROBOCACHE_CALL(bytes = robocache::ffi::resample_gpu_scratch_bytes(*op_, batch_, samples, lens));
  if (bytes == 0) return;
  kernels::DynamicScratchpad scratch(AccessOrder(ws.stream()));
  uint8_t *host = scratch.AllocatePinned<uint8_t>(bytes, 64);
  uint8_t *dev = scratch.AllocateGPU<uint8_t>(bytes, 64);
  ROBOCACHE_CALL(robocache::ffi::resample_run_gpu(
      *op_, batch_, samples, lens,
      rust::Slice<const robocache::ffi::ResampleOut>(outs.data(), n),
      reinterpret_cast<size_t>(host), bytes, reinterpret_cast<size_t>(dev),
      reinterpret_cast<size_t>(ws.stream()), /*phase: all*/ 0));
}

DALI_REGISTER_OPERATOR(robocache__Resample, RobocacheResample<CPUBackend>, CPU);
DALI_REGISTER_OPERATOR(robocache__Resample, RobocacheResample<GPUBackend>, GPU);

}  // namespace dali
