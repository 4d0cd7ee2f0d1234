// points_augment.cc: schema (the user documentation), output shapes and the calls into Rust for
// robocache__PointsAugment (fn.robocache.points_augment). GPU: one launch from Rust on ws.stream().
#include "augment.h"

#include "dali/kernels/dynamic_scratchpad.h"

namespace dali {

DALI_SCHEMA(robocache__PointsAugment)
    .DocStr(R"(Randomly rotates, scales, translates, jitters and drops points of point clouds (RoboCache).

Each sample is a cloud ``points`` ``[N, 3 + F]`` float32 (x, y, z then ``F`` feature columns, copied
unchanged; the column count is shared within the batch). Per sample the operator draws

* a rotation ``R``: about z by an angle uniform in ``angle`` (``rotation="z"``, default), a uniform
  random rotation over SO(3) (``"so3"``, Shoemake's quaternion method), or none (``"none"``);
* an isotropic scale ``s`` uniform in ``scale``;
* a translation ``t`` uniform in ``[-translation[i], translation[i]]`` per axis;

and applies ``p' = s R p + t`` (float32, ``M = [s R | t]`` rounded to float32), then adds per-point
Gaussian jitter ``sigma = jitter`` per coordinate, clipped to ``[-jitter_clip, jitter_clip]`` when
``jitter_clip > 0``.

Outputs: the transformed points ``[N, 3 + F]``; the applied transform ``[4, 4]`` float32
(``[[s R, t], [0, 0, 0, 1]]``, without the per-point jitter) so that boxes and labels can follow; and a
keep-mask ``[N]`` uint8: each point is dropped (mask 0) with probability ``dropout``. The point count
is not changed: select ``points[mask == 1]`` downstream (on the GPU this avoids a device-to-host
copy of counts and a host synchronisation).

**Randomness.** Draws come from Philox4x32-10 keyed by ``seed``, the operator's iteration counter, the
sample index and (for jitter and dropout) the point index: the same seed gives the same output on
every run; the per-sample transform is drawn on the host and is identical on both backends, and the
per-point draws are identical integers on both (jitter equal up to float rounding). The GPU backend
transforms the whole batch in one kernel launch after one host-to-device copy.

**Errors** name ``robocache.points_augment`` and the sample: fewer than 3 columns, non-float32 points,
an empty ``angle`` or ``scale`` range (or ``scale <= 0``), negative ``translation``, ``jitter`` or
``jitter_clip``, ``dropout`` outside ``[0, 1)``, column counts differing between samples.
)")
    .NumInput(1)
    .InputDox(0, "points", "TensorList", "Point clouds ``[N, 3 + F]``, float32.")
    .NumOutput(3)
    .AddRandomSeedArg()
    .AddOptionalArg("rotation", "``\"z\"`` (default), ``\"so3\"`` or ``\"none\"``.", std::string("z"))
    .AddOptionalArg<float>("angle", "Rotation angle range about z in radians ``[lo, hi]``. Default ``[-pi, pi]``. Per-sample argument input allowed.", std::vector<float>{-3.14159265f, 3.14159265f}, true)
    .AddOptionalArg<float>("scale", "Isotropic scale range ``[lo, hi]``, ``0 < lo <= hi``. Default ``[1, 1]``. Per-sample argument input allowed.", std::vector<float>{1.f, 1.f}, true)
    .AddOptionalArg<float>("translation", "Largest translation per axis ``[tx, ty, tz]`` (>= 0), uniform in ``[-t, t]``. Default ``[0, 0, 0]``. Per-sample argument input allowed.", std::vector<float>{0.f, 0.f, 0.f}, true)
    .AddOptionalArg<float>("jitter", "Standard deviation of the per-point Gaussian jitter (>= 0). Default 0. Per-sample argument input allowed.", 0.f, true)
    .AddOptionalArg<float>("jitter_clip", "Jitter clipped to ``[-jitter_clip, jitter_clip]`` (>= 0; 0: no clip). Default 0. Per-sample argument input allowed.", 0.f, true)
    .AddOptionalArg<float>("dropout", "Probability that a point is dropped (keep-mask 0), in ``[0, 1)``. Default 0. Per-sample argument input allowed.", 0.f, true);

namespace {

rust::Box<robocache::ffi::AugPointsOp> MakePoints(const OpSpec &spec) {
  robocache::ffi::AugPointsConfig cfg{};
  cfg.rotation = spec.GetArgument<std::string>("rotation");
  cfg.seed = spec.GetArgument<int64_t>("seed");
  try {
    return robocache::ffi::points_augment_new(cfg);
  } catch (const rust::Error &e) {
    DALI_FAIL(std::string(e.what()));
  }
}

}  // namespace

template <typename Backend>
RobocachePointsAugment<Backend>::RobocachePointsAugment(const OpSpec &spec)
    : Operator<Backend>(spec), op_(MakePoints(spec)), angle_("angle", spec), scale_("scale", spec),
      translation_("translation", spec), jitter_("jitter", spec), jitter_clip_("jitter_clip", spec),
      dropout_("dropout", spec) {}

template <typename Backend>
bool RobocachePointsAugment<Backend>::SetupImpl(std::vector<OutputDesc> &output_desc,
                                                const Workspace &ws) {
  const auto &data = ws.Input<Backend>(0);
  int n = data.num_samples();
  angle_.Acquire(spec_, ws, n, TensorShape<1>(2));
  scale_.Acquire(spec_, ws, n, TensorShape<1>(2));
  translation_.Acquire(spec_, ws, n, TensorShape<1>(3));
  jitter_.Acquire(spec_, ws, n);
  jitter_clip_.Acquire(spec_, ws, n);
  dropout_.Acquire(spec_, ws, n);
  samples_.resize(n);
  for (int i = 0; i < n; i++) {
    auto &s = samples_[i];
    auto sh = data.tensor_shape_span(i);
    s = {};
    s.data = reinterpret_cast<size_t>(data.raw_tensor(i));
    s.ndim = data.sample_dim();
    s.n = sh.size() >= 1 ? sh[0] : 0;
    s.dims = sh.size() >= 2 ? sh[1] : 0;
    s.angle_lo = angle_[i].data[0];
    s.angle_hi = angle_[i].data[1];
    s.scale_lo = scale_[i].data[0];
    s.scale_hi = scale_[i].data[1];
    s.tx = translation_[i].data[0];
    s.ty = translation_[i].data[1];
    s.tz = translation_[i].data[2];
    s.jitter = jitter_[i].data[0];
    s.jitter_clip = jitter_clip_[i].data[0];
    s.dropout = dropout_[i].data[0];
  }
  ROBOCACHE_CALL(robocache::ffi::points_augment_setup(
      *op_, robocache_plugin::ToElemType(data.type()),
      rust::Slice<const robocache::ffi::AugPointsSampleIn>(samples_.data(), n)));
  output_desc.resize(3);
  output_desc[0].type = data.type();
  output_desc[0].shape = data.shape();
  output_desc[1].type = DALI_FLOAT;
  output_desc[1].shape = uniform_list_shape(n, TensorShape<2>(4, 4));
  output_desc[2].type = DALI_UINT8;
  output_desc[2].shape.resize(n, 1);
  for (int i = 0; i < n; i++) output_desc[2].shape.set_tensor_shape(i, TensorShape<1>(samples_[i].n));
  return true;
}

template <>
void RobocachePointsAugment<CPUBackend>::RunImpl(Workspace &ws) {
  auto &out = ws.Output<CPUBackend>(0);
  auto &tf = ws.Output<CPUBackend>(1);
  auto &mask = ws.Output<CPUBackend>(2);
  const auto &in = ws.Input<CPUBackend>(0);
  if (!in.GetLayout().empty()) out.SetLayout(in.GetLayout());
  auto &tp = ws.GetThreadPool();
  int n = samples_.size();
  for (int i = 0; i < n; i++) {
    tp.AddWork(
        [this, &out, &tf, &mask, i](int) {
          robocache::ffi::AugPointsOut o{reinterpret_cast<size_t>(out.raw_mutable_tensor(i)),
                                      reinterpret_cast<size_t>(tf.raw_mutable_tensor(i)),
                                      reinterpret_cast<size_t>(mask.raw_mutable_tensor(i))};
          ROBOCACHE_CALL(robocache::ffi::points_augment_run_cpu(*op_, i, samples_[i], o));
        },
        samples_[i].n * samples_[i].dims);
  }
  tp.RunAll();
}

template <>
void RobocachePointsAugment<GPUBackend>::RunImpl(Workspace &ws) {
  auto &out = ws.Output<GPUBackend>(0);
  auto &tf = ws.Output<GPUBackend>(1);
  auto &mask = ws.Output<GPUBackend>(2);
  const auto &in = ws.Input<GPUBackend>(0);
  if (!in.GetLayout().empty()) out.SetLayout(in.GetLayout());
  int n = samples_.size();
  std::vector<robocache::ffi::AugPointsOut> outs(n);
  for (int i = 0; i < n; i++) {
    outs[i].out = reinterpret_cast<size_t>(out.raw_mutable_tensor(i));
    outs[i].transform = reinterpret_cast<size_t>(tf.raw_mutable_tensor(i));
    outs[i].mask = reinterpret_cast<size_t>(mask.raw_mutable_tensor(i));
  }
  auto samples = rust::Slice<const robocache::ffi::AugPointsSampleIn>(samples_.data(), n);
  size_t bytes = 0;
  ROBOCACHE_CALL(bytes = robocache::ffi::points_augment_gpu_scratch_bytes(*op_, samples));
  if (bytes == 0) return;
  kernels::DynamicScratchpad scratch(AccessOrder(ws.stream()));
  uint8_t *host = scratch.AllocatePinned<uint8_t>(bytes, 64);
  uint8_t *dev = scratch.AllocateGPU<uint8_t>(bytes, 64);
  ROBOCACHE_CALL(robocache::ffi::points_augment_run_gpu(
      *op_, samples, rust::Slice<const robocache::ffi::AugPointsOut>(outs.data(), n),
      reinterpret_cast<size_t>(host), bytes, reinterpret_cast<size_t>(dev),
      reinterpret_cast<size_t>(ws.stream())));
}

DALI_REGISTER_OPERATOR(robocache__PointsAugment, RobocachePointsAugment<CPUBackend>, CPU);
DALI_REGISTER_OPERATOR(robocache__PointsAugment, RobocachePointsAugment<GPUBackend>, GPU);

}  // namespace dali
