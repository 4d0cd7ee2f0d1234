// action_noise.cc: schema (the user documentation), output shapes and the calls into Rust for
// robocache__ActionNoise (fn.robocache.action_noise). GPU: one launch from Rust on ws.stream().
#include "augment.h"

#include "dali/kernels/dynamic_scratchpad.h"

namespace dali {

DALI_SCHEMA(robocache__ActionNoise)
    .DocStr(R"(Adds per-channel, optionally time-correlated noise to action trajectories (RoboCache).

Each sample is ``actions`` ``[T, C]`` (or ``[T]``; ``C`` shared within the batch). With probability
``p`` per sample (a per-sample coin flip), every element ``(t, c)`` gets noise ``x_t[c]``; the other
samples pass through unchanged (bit for bit, and unclipped).

* innovations ``e_t[c] = sigma[c] * z``, ``z ~ N(0, 1)`` (``distribution="gaussian"``, default) or
  ``z ~ U(-1, 1)`` (``"uniform"``, so noise in ``[-sigma, sigma]``);
* white noise (``correlation_time = 0``, default): ``x_t = e_t``;
* correlated noise (``correlation_time = tau > 0`` seconds, with the sampling ``rate`` in Hz): an
  Ornstein-Uhlenbeck process along T, ``x_0 = e_0``, ``x_t = a x_{t-1} + sqrt(1 - a^2) e_t``,
  ``a = exp(-1 / (rate * tau))``: stationary with the innovations' variance (``sigma^2``, or
  ``sigma^2 / 3`` for uniform) and autocorrelation ``a^k`` at lag ``k`` steps, smooth like real
  actuation error;
* output ``clip(actions + x, low, high)`` per channel when ``low`` / ``high`` are given (joint
  limits), computed in float32 (float64 for float64 data).

**Randomness.** Draws come from Philox4x32-10 keyed by ``seed``, the operator's iteration counter
(batches since the pipeline was built), the sample index and the element index ``t * C + c``: the same
seed gives the same output on every run, and the CPU and GPU backends draw identical random numbers
(outputs equal up to float rounding of the Box-Muller transcendental functions). The GPU backend
handles the whole batch in one kernel launch (one block per sample; the OU recursion runs one thread
per channel) after one host-to-device copy.

**Errors** name ``robocache.action_noise`` and the sample: negative or non-finite ``sigma``, a
``sigma`` with neither 1 nor ``C`` values (wrong channel count), ``p`` outside ``[0, 1]``, ``low > high``
in a channel (bounds inverted), bounds with neither 1 nor ``C`` values, ``correlation_time > 0``
without ``rate``, unsupported dtypes.
)")
    .NumInput(1)
    .InputDox(0, "actions", "TensorList", "Actions ``[T, C]`` or ``[T]``: float32, float16, float64, or uint16 bfloat16 bits with ``dtype=\"bfloat16\"``.")
    .NumOutput(1)
    .AddRandomSeedArg()
    .AddOptionalArg<float>("sigma", "Noise scale per channel (1 value for all, or ``C`` values), >= 0: the standard deviation (gaussian) or half-width (uniform). Default ``[0.01]``. Per-sample argument input allowed.", std::vector<float>{0.01f}, true)
    .AddOptionalArg<float>("p", "Probability of noising each sample, in ``[0, 1]``. Default 1. Per-sample argument input allowed.", 1.f, true)
    .AddOptionalArg("distribution", "``\"gaussian\"`` (default) or ``\"uniform\"``.", std::string("gaussian"))
    .AddOptionalArg<float>("correlation_time", "Correlation time ``tau`` of the Ornstein-Uhlenbeck noise in seconds (>= 0). Default 0: white noise. Per-sample argument input allowed.", 0.f, true)
    .AddOptionalArg<float>("rate", "Sampling rate of the actions in Hz, needed when ``correlation_time > 0``. Default: none.", nullptr)
    .AddOptionalArg<float>("low", "Lower bounds per channel (1 or ``C`` values). Default: none.", std::vector<float>{})
    .AddOptionalArg<float>("high", "Upper bounds per channel (1 or ``C`` values). Default: none.", std::vector<float>{})
    .AddOptionalArg("dtype", "``\"bfloat16\"`` declares uint16 ``actions`` as bfloat16 bit patterns; default ``\"\"`` takes the input's type.", std::string(""));

namespace {

rust::Box<robocache::ffi::NoiseOp> MakeNoise(const OpSpec &spec) {
  robocache::ffi::NoiseConfig cfg{};
  cfg.distribution = spec.GetArgument<std::string>("distribution");
  cfg.dtype = spec.GetArgument<std::string>("dtype");
  float rate = 0.f;
  cfg.has_rate = spec.TryGetArgument(rate, "rate");
  cfg.rate = rate;
  for (float v : spec.GetRepeatedArgument<float>("low")) cfg.low.push_back(v);
  for (float v : spec.GetRepeatedArgument<float>("high")) cfg.high.push_back(v);
  cfg.seed = spec.GetArgument<int64_t>("seed");
  try {
    return robocache::ffi::noise_new(cfg);
  } catch (const rust::Error &e) {
    DALI_FAIL(std::string(e.what()));
  }
}

}  // namespace

template <typename Backend>
RobocacheActionNoise<Backend>::RobocacheActionNoise(const OpSpec &spec)
    : Operator<Backend>(spec), op_(MakeNoise(spec)), sigma_("sigma", spec), p_("p", spec),
      correlation_time_("correlation_time", spec) {}

template <typename Backend>
bool RobocacheActionNoise<Backend>::SetupImpl(std::vector<OutputDesc> &output_desc,
                                              const Workspace &ws) {
  const auto &data = ws.Input<Backend>(0);
  int n = data.num_samples();
  sigma_.Acquire(spec_, ws, n);
  p_.Acquire(spec_, ws, n);
  correlation_time_.Acquire(spec_, ws, n);
  data_type_ = robocache_plugin::ToElemType(data.type());
  samples_.resize(n);
  for (int i = 0; i < n; i++) {
    auto &s = samples_[i];
    auto dsh = data.tensor_shape_span(i);
    s = {};
    s.data = reinterpret_cast<size_t>(data.raw_tensor(i));
    s.data_ndim = data.sample_dim();
    s.rows = dsh.size() >= 1 ? dsh[0] : 0;
    s.channels = dsh.size() >= 2 ? dsh[1] : 1;
    s.sigma = reinterpret_cast<size_t>(sigma_[i].data);
    s.sigma_len = sigma_[i].shape[0];
    s.p = p_[i].data[0];
    s.correlation_time = correlation_time_[i].data[0];
  }
  ROBOCACHE_CALL(robocache::ffi::noise_setup(
      *op_, data_type_, rust::Slice<const robocache::ffi::NoiseSampleIn>(samples_.data(), n)));
  output_desc.resize(1);
  output_desc[0].type = data.type();
  output_desc[0].shape = data.shape();
  return true;
}

template <>
void RobocacheActionNoise<CPUBackend>::RunImpl(Workspace &ws) {
  auto &out = ws.Output<CPUBackend>(0);
  const auto &in = ws.Input<CPUBackend>(0);
  if (!in.GetLayout().empty()) out.SetLayout(in.GetLayout());
  auto &tp = ws.GetThreadPool();
  int n = samples_.size();
  for (int i = 0; i < n; i++) {
    tp.AddWork(
        [this, &out, i](int) {
          ROBOCACHE_CALL(robocache::ffi::noise_run_cpu(
              *op_, data_type_, i, samples_[i], reinterpret_cast<size_t>(out.raw_mutable_tensor(i))));
        },
        samples_[i].rows * samples_[i].channels);
  }
  tp.RunAll();
}

template <>
void RobocacheActionNoise<GPUBackend>::RunImpl(Workspace &ws) {
  auto &out = ws.Output<GPUBackend>(0);
  const auto &in = ws.Input<GPUBackend>(0);
  if (!in.GetLayout().empty()) out.SetLayout(in.GetLayout());
  int n = samples_.size();
  std::vector<size_t> outs(n);
  for (int i = 0; i < n; i++) outs[i] = reinterpret_cast<size_t>(out.raw_mutable_tensor(i));
  auto samples = rust::Slice<const robocache::ffi::NoiseSampleIn>(samples_.data(), n);
  size_t bytes = 0;
  ROBOCACHE_CALL(bytes = robocache::ffi::noise_gpu_scratch_bytes(*op_, samples));
  if (bytes == 0) return;
  kernels::DynamicScratchpad scratch(AccessOrder(ws.stream()));
  uint8_t *host = scratch.AllocatePinned<uint8_t>(bytes, 64);
  uint8_t *dev = scratch.AllocateGPU<uint8_t>(bytes, 64);
  ROBOCACHE_CALL(robocache::ffi::noise_run_gpu(
      *op_, data_type_, samples, rust::Slice<const size_t>(outs.data(), n),
      reinterpret_cast<size_t>(host), bytes, reinterpret_cast<size_t>(dev),
      reinterpret_cast<size_t>(ws.stream())));
}

DALI_REGISTER_OPERATOR(robocache__ActionNoise, RobocacheActionNoise<CPUBackend>, CPU);
DALI_REGISTER_OPERATOR(robocache__ActionNoise, RobocacheActionNoise<GPUBackend>, GPU);

}  // namespace dali
