// align.cc: schema (the user documentation), output-shape inference and the calls into Rust for
// robocache__Align, exposed in Python as fn.robocache.align. CPU and GPU in one file: the GPU
// operator launches from Rust on ws.stream(); there are no .cu files here.
#include "align.h"

#include <string>

#include "dali/kernels/dynamic_scratchpad.h"

namespace dali {

namespace {
constexpr int kMaxStreams = 8;
}  // namespace

DALI_SCHEMA(robocache__Align)
    .DocStr(R"(Fuses multi-rate sensor streams onto one reference clock (RoboCache).

Inputs are ``N`` pairs ``data_0, timestamps_0, data_1, timestamps_1, ...`` (1 to 8 streams), each
``data`` ``[T_i, C_i]`` (or ``[T_i]``, one channel) with its own ``timestamps`` ``[T_i]``: every
stream has its own rate and length, and samples of a batch are ragged. An odd number of inputs
means the last one is the per-sample **reference timestamps** ``[T]`` (camera frame times, say)::

    fused, valid, t = fn.robocache.align(imu, imu_t, joints, joints_t, cam_t,
                                         methods=["linear", "previous"], max_gap=[0.02, 0.05])

(``robocache.align.align(imu, imu_t, joints, joints_t, reference_timestamps=cam_t, ...)`` is the
same call with the reference as a keyword: DALI argument inputs cannot carry it, as their type is
fixed by the schema while timestamps are float64 or int64.)

Otherwise the reference clock is ``target_rate`` (Hz: ``a + k / target_rate`` while it does not
pass ``b``, a point within 1e-6 of a period of ``b`` is included and set to ``b``) or
``num_samples`` (evenly spaced, both ends included) over ``[a, b]``: the span all streams share
(``span="intersection"``, default: the latest first timestamp to the earliest last one) or the span
they cover (``span="union"``). Exactly one clock form must be given.

**Outputs.** ``fused`` ``[T, sum C_i]`` in the streams' dtype, the streams' channels side by side
in input order; ``valid`` ``[T, N]`` uint8 (1: the value is real, 0: it was filled); the reference
timestamps ``[T]`` in the timestamps' dtype.

**Missing data.** A row of a stream is missing when any of its channels is NaN. For a step ``t``
and a stream: outside the stream's recorded span ``[ts[0], ts[T-1]]`` the step is invalid; a valid
row at exactly ``t`` is taken as is; otherwise ``L`` is the last valid row at or before ``t`` and
``R`` the first valid row after it (interpolation bridges NaN rows), and the step is invalid when
either is missing or ``ts[R] - ts[L] > max_gap`` of that stream. Valid steps interpolate between
``L`` and ``R`` with the stream's method: ``"linear"``, ``"nearest"`` (ties go to ``L``) or
``"previous"`` (``L``). Invalid steps are filled per ``fill``: ``"hold"`` (``L``; before the first
valid row, the first valid row; NaN when the stream has no valid row at all), ``"nan"`` or
``"zero"`` (the identity rotation in quaternion groups).

**Orientation.** ``quaternions`` is a flat list of (stream, first channel) pairs, each naming 4
consecutive channels of that stream that hold a unit quaternion; any number of non-overlapping
groups per stream. With ``"linear"`` they are interpolated by SLERP (float64, shortest arc,
normalised output); rows taken as they are (exact hits, ``"nearest"``, ``"previous"``, ``"hold"``)
are normalised. ``quaternion_order`` (``"xyzw"`` or ``"wxyz"``) says where the scalar part is, for
the identity that ``fill="zero"`` writes; SLERP itself does not depend on the order.

**Dtypes.** ``data``: float32, float16, float64 or bfloat16 (uint16 bit patterns with
``dtype="bfloat16"``; the fused output is then uint16 bfloat16 bits), one dtype for all streams;
arithmetic is float32 (float64 for float64 data; SLERP in float64), weights in float64.
Timestamps: float64 seconds or int64 nanoseconds, finite and strictly increasing, one kind for all
streams and the reference.

**Devices.** On the GPU backend every ``data`` input must be on the GPU (``.gpu()``); all
``timestamps`` and the reference timestamps are CPU inputs on both backends: output lengths and
validity depend on their values, and reading them from the GPU would stall DALI's stream. The GPU
backend copies every timestamp array of the batch to the device with one asynchronous copy and
aligns all streams of all samples in one kernel launch (NaN rows are found on the device). Both
backends give identical results (bit for bit for float32 outside quaternion groups; SLERP agrees
to float rounding).

**Errors** name ``robocache.align``, the sample and the stream: timestamps not strictly increasing
or not finite, data and timestamps lengths differing, empty streams, streams that do not overlap
(``span="intersection"``), a quaternion group out of range or overlapping another, a list argument
(``methods``, ``max_gap``) whose length is not the number of streams, zero or more than 8 streams,
mixed dtypes or timestamp kinds, none or more than one clock form.
)")
    .NumInput(0, 2 * kMaxStreams + 1)
    .InputDevice(0, 2 * kMaxStreams + 1, dali::InputDevice::Any)
    .InputDevice(1, dali::InputDevice::CPU)
    .InputDevice(3, dali::InputDevice::CPU)
    .InputDevice(5, dali::InputDevice::CPU)
    .InputDevice(7, dali::InputDevice::CPU)
    .InputDevice(9, dali::InputDevice::CPU)
    .InputDevice(11, dali::InputDevice::CPU)
    .InputDevice(13, dali::InputDevice::CPU)
    .InputDevice(15, dali::InputDevice::CPU)
    .NumOutput(3)
    .AddOptionalArg<float>("target_rate", "Reference clock rate in Hz (> 0) over ``span``. Exclusive with ``num_samples`` and a reference timestamps input.", nullptr)
    .AddOptionalArg<int>("num_samples", "Number of evenly spaced reference steps (>= 1) over ``span``, both ends included. Exclusive with ``target_rate`` and a reference timestamps input.", nullptr)
    .AddOptionalArg("span", "Span of a ``target_rate`` / ``num_samples`` clock: ``\"intersection\"`` (default) or ``\"union\"``.", std::string("intersection"))
    .AddOptionalArg("methods", "Per-stream method, one per stream: ``\"linear\"``, ``\"nearest\"`` or ``\"previous\"``. Default ``[]``: all linear.", std::vector<std::string>())
    .AddOptionalArg("max_gap", "Per-stream largest gap in seconds between the two valid rows around a step, one per stream (``inf``: no limit). Default ``[]``: no limit.", std::vector<float>())
    .AddOptionalArg("quaternions", "Flat list of (stream, first channel) pairs, each naming a 4-channel quaternion group. Default ``[]``.", std::vector<int>())
    .AddOptionalArg("quaternion_order", "``\"xyzw\"`` (default) or ``\"wxyz\"``.", std::string("xyzw"))
    .AddOptionalArg("fill", "Value of invalid steps: ``\"hold\"`` (default), ``\"nan\"`` or ``\"zero\"``.", std::string("hold"))
    .AddOptionalArg("dtype", "``\"bfloat16\"`` declares uint16 ``data`` as bfloat16 bit patterns; default ``\"\"`` takes the inputs' type.", std::string(""));

namespace {

rust::Box<robocache::ffi::AlignOp> MakeOp(const OpSpec &spec) {
  robocache::ffi::AlignConfig cfg{};
  cfg.num_inputs = spec.NumRegularInput();
  for (auto &m : spec.GetRepeatedArgument<std::string>("methods")) cfg.methods.push_back(rust::String(m));
  for (float g : spec.GetRepeatedArgument<float>("max_gap")) cfg.max_gap.push_back(g);
  for (int q : spec.GetRepeatedArgument<int>("quaternions")) cfg.quaternions.push_back(q);
  cfg.quaternion_order = spec.GetArgument<std::string>("quaternion_order");
  cfg.fill = spec.GetArgument<std::string>("fill");
  cfg.span = spec.GetArgument<std::string>("span");
  cfg.dtype = spec.GetArgument<std::string>("dtype");
  float rate = 0.f;
  cfg.has_target_rate = spec.TryGetArgument(rate, "target_rate");
  cfg.target_rate = rate;
  int n = 0;
  cfg.has_num_samples = spec.TryGetArgument(n, "num_samples");
  cfg.num_samples = n;
  try {
    return robocache::ffi::align_new(cfg);
  } catch (const rust::Error &e) {
    DALI_FAIL(std::string(e.what()));
  }
}

template <typename B>
void FillStream(robocache::ffi::AlignStreamIn &s, const TensorList<B> &data,
                const TensorList<CPUBackend> &ts, int i) {
  auto dsh = data.tensor_shape_span(i);
  auto tsh = ts.tensor_shape_span(i);
  s = {};
  s.data = reinterpret_cast<size_t>(data.raw_tensor(i));
  s.data_ndim = data.sample_dim();
  s.rows = dsh.size() >= 1 ? dsh[0] : 0;
  s.channels = dsh.size() >= 2 ? dsh[1] : 1;
  s.data_type = robocache_plugin::ToElemType(data.type());
  s.ts = reinterpret_cast<size_t>(ts.raw_tensor(i));
  s.ts_ndim = ts.sample_dim();
  s.ts_len = tsh.size() >= 1 ? tsh[0] : 0;
  s.ts_type = robocache_plugin::ToElemType(ts.type());
}

}  // namespace

template <typename Backend>
RobocacheAlign<Backend>::RobocacheAlign(const OpSpec &spec)
    : Operator<Backend>(spec), op_(MakeOp(spec)) {
  num_streams_ = static_cast<int>(robocache::ffi::align_num_streams(*op_));
  has_ref_ = spec.NumRegularInput() % 2 == 1;
}

template <typename Backend>
void RobocacheAlign<Backend>::CollectSamples(const Workspace &ws) {
  const int ns = num_streams_;
  int n = ws.GetInputBatchSize(0);
  for (int k = 0; k < ws.NumInput(); k++) {
    DALI_ENFORCE(ws.GetInputBatchSize(k) == n,
                 make_string("robocache.align: input 0 has ", n, " samples but input ", k, " has ",
                             ws.GetInputBatchSize(k)));
  }
  if (has_ref_) {
    DALI_ENFORCE(ws.template InputIsType<CPUBackend>(2 * ns),
                 "robocache.align: the reference timestamps (the last input) must be a CPU input");
  }
  streams_.resize(static_cast<size_t>(n) * ns);
  refs_.assign(n, robocache::ffi::AlignRefIn{});
  for (int q = 0; q < ns; q++) {
    const auto &ts = ws.Input<CPUBackend>(2 * q + 1);
    if constexpr (std::is_same_v<Backend, GPUBackend>) {
      DALI_ENFORCE(ws.template InputIsType<GPUBackend>(2 * q),
                   make_string("robocache.align: stream ", q,
                               ": data must be on the GPU for the GPU backend (call .gpu())"));
      const auto &data = ws.Input<GPUBackend>(2 * q);
      for (int i = 0; i < n; i++) FillStream(streams_[i * ns + q], data, ts, i);
    } else {
      const auto &data = ws.Input<CPUBackend>(2 * q);
      for (int i = 0; i < n; i++) FillStream(streams_[i * ns + q], data, ts, i);
    }
  }
  if (has_ref_) {
    const auto &r = ws.Input<CPUBackend>(2 * ns);
    for (int i = 0; i < n; i++) {
      auto sh = r.tensor_shape_span(i);
      refs_[i].ts = reinterpret_cast<size_t>(r.raw_tensor(i));
      refs_[i].ndim = r.sample_dim();
      refs_[i].len = sh.size() >= 1 ? sh[0] : 0;
      refs_[i].ts_type = robocache_plugin::ToElemType(r.type());
    }
  }
}

template <typename Backend>
bool RobocacheAlign<Backend>::SetupImpl(std::vector<OutputDesc> &output_desc,
                                        const Workspace &ws) {
  CollectSamples(ws);
  int n = refs_.size();
  out_lens_.assign(n, 0);
  ROBOCACHE_CALL(total_channels_ = robocache::ffi::align_setup(
      *op_, rust::Slice<const robocache::ffi::AlignStreamIn>(streams_.data(), streams_.size()),
      rust::Slice<const robocache::ffi::AlignRefIn>(refs_.data(), n),
      rust::Slice<int64_t>(out_lens_.data(), n)));
  output_desc.resize(3);
  output_desc[0].type = ws.GetInputDataType(0);
  output_desc[1].type = DALI_UINT8;
  output_desc[2].type = ws.GetInputDataType(1);
  output_desc[0].shape.resize(n, 2);
  output_desc[1].shape.resize(n, 2);
  output_desc[2].shape.resize(n, 1);
  for (int i = 0; i < n; i++) {
    output_desc[0].shape.set_tensor_shape(i, TensorShape<2>(out_lens_[i], total_channels_));
    output_desc[1].shape.set_tensor_shape(i, TensorShape<2>(out_lens_[i], num_streams_));
    output_desc[2].shape.set_tensor_shape(i, TensorShape<1>(out_lens_[i]));
  }
  return true;
}

template <>
void RobocacheAlign<CPUBackend>::RunImpl(Workspace &ws) {
  auto &out = ws.Output<CPUBackend>(0);
  auto &valid = ws.Output<CPUBackend>(1);
  auto &out_ts = ws.Output<CPUBackend>(2);
  out.SetLayout("TC");
  auto &tp = ws.GetThreadPool();
  int n = refs_.size();
  const int ns = num_streams_;
  for (int i = 0; i < n; i++) {
    int64_t rows = 0;
    for (int q = 0; q < ns; q++) rows += streams_[i * ns + q].rows * streams_[i * ns + q].channels;
    tp.AddWork(
        [this, &out, &valid, &out_ts, i, ns](int) {
          robocache::ffi::AlignOut o{reinterpret_cast<size_t>(out.raw_mutable_tensor(i)),
                                     reinterpret_cast<size_t>(valid.raw_mutable_tensor(i)),
                                     reinterpret_cast<size_t>(out_ts.raw_mutable_tensor(i))};
          ROBOCACHE_CALL(robocache::ffi::align_run_cpu(
              *op_, i, rust::Slice<const robocache::ffi::AlignStreamIn>(streams_.data() + i * ns, ns),
              refs_[i], o));
        },
        out_lens_[i] * total_channels_ + rows);
  }
  tp.RunAll();
}

template <>
void RobocacheAlign<GPUBackend>::RunImpl(Workspace &ws) {
  auto &out = ws.Output<GPUBackend>(0);
  auto &valid = ws.Output<GPUBackend>(1);
  auto &out_ts = ws.Output<GPUBackend>(2);
  out.SetLayout("TC");
  int n = refs_.size();
  std::vector<robocache::ffi::AlignOut> outs(n);
  for (int i = 0; i < n; i++) {
    outs[i].out = reinterpret_cast<size_t>(out.raw_mutable_tensor(i));
    outs[i].valid = reinterpret_cast<size_t>(valid.raw_mutable_tensor(i));
    outs[i].out_ts = reinterpret_cast<size_t>(out_ts.raw_mutable_tensor(i));
  }
  auto streams = rust::Slice<const robocache::ffi::AlignStreamIn>(streams_.data(), streams_.size());
  auto refs = rust::Slice<const robocache::ffi::AlignRefIn>(refs_.data(), n);
  auto lens = rust::Slice<const int64_t>(out_lens_.data(), n);
  size_t sizes[2] = {0, 0};  // pinned host bytes, device bytes (the device also holds the records)
  ROBOCACHE_CALL(robocache::ffi::align_gpu_scratch(*op_, streams, refs, lens, rust::Slice<size_t>(sizes, 2)));
  if (sizes[0] == 0) return;
  kernels::DynamicScratchpad scratch(AccessOrder(ws.stream()));
  uint8_t *host = scratch.AllocatePinned<uint8_t>(sizes[0], 64);
  uint8_t *dev = scratch.AllocateGPU<uint8_t>(sizes[1], 64);
  ROBOCACHE_CALL(robocache::ffi::align_run_gpu(
      *op_, streams, refs, lens, rust::Slice<const robocache::ffi::AlignOut>(outs.data(), n),
      reinterpret_cast<size_t>(host), sizes[0], reinterpret_cast<size_t>(dev), sizes[1],
      reinterpret_cast<size_t>(ws.stream()), /*phase: all*/ 0));
}

DALI_REGISTER_OPERATOR(robocache__Align, RobocacheAlign<CPUBackend>, CPU);
DALI_REGISTER_OPERATOR(robocache__Align, RobocacheAlign<GPUBackend>, GPU);

}  // namespace dali
