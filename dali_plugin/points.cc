// points.cc: schemas (the user documentation), output shapes and the calls into Rust for the
// point-cloud operators fn.robocache.voxel_downsample, fn.robocache.voxelize and
// fn.robocache.normalize. CPU and GPU in one file; the GPU launches from Rust on ws.stream().
#include "points.h"

#include "dali/kernels/dynamic_scratchpad.h"

namespace dali {

#define RC_POINTS_COMMON_DOC                                                                       \
  "**Points.** Each sample is a float32 array ``[N, C]`` with ``C >= 3``: x, y, z, then any "      \
  "feature columns (intensity, rgb, ...). ``C`` is shared within a batch, ``N`` is not. A row is " \
  "valid when its x, y and z are finite; rows with NaN or inf coordinates are dropped (feature "   \
  "columns may hold anything; NaN features propagate into the means of their voxel).\n\n"          \
  "**Devices.** On the GPU backend the points must be on the GPU (``.gpu()``); argument inputs "   \
  "(a per-sample ``voxel_size``) are CPU tensors on both backends. The GPU backend processes the " \
  "whole ragged batch with a few kernel launches (never one per sample), compiled at first use "   \
  "by NVRTC.\n\n"

#define RC_VOXEL_DOC                                                                               \
  "**Grid arithmetic** (identical on both backends, float64): the voxel coordinate of a point "    \
  "along an axis is ``floor((p - origin) / voxel_size)``. Means are float64 sums divided by the "   \
  "count and rounded to float32. Both backends add a voxel's points in the same order (up to 32 "  \
  "points: one after another in input order; more: 32 interleaved partial sums, point ``k`` into " \
  "partial ``k mod 32``, then added pairwise), so CPU and GPU give bitwise equal outputs (except "  \
  "voxelize's dense ``\"mean\"`` grid, which the GPU adds with atomics: equal to float32 "        \
  "rounding).\n\n"                                                                                \
  "**Order.** Voxels are sorted by their integer coordinates ``(ix, iy, iz)``, lexicographically " \
  "(by x, then y, then z): deterministic, independent of the input order, and the same on the "   \
  "CPU and the GPU. The GPU backend sorts the voxel keys of each sample with a radix sort.\n\n"

DALI_SCHEMA(robocache__VoxelDownsample)
    .DocStr(R"(Voxel-grid downsampling of point clouds (RoboCache): one output point per occupied voxel,
the mean of the x, y, z and of every feature column of the points in it.

)" RC_POINTS_COMMON_DOC RC_VOXEL_DOC R"(**Grid.** ``voxel_size`` is one value or one per axis, and may be a per-sample argument input (a CPU
tensor of 1 or 3 float32 values per sample). The grid is anchored at ``origin`` (default ``[0, 0, 0]``),
or, with ``anchor="min_bound"``, at the sample's minimum bound minus half a voxel: exactly the grid of
Open3D's ``PointCloud.voxel_down_sample``. No dense grid is built: 1 cm voxels over a 200 m scene are
fine. Voxel coordinates must lie in ``[-2^31, 2^31)`` on every axis and the occupied box must span
fewer than 2^63 cells. On the GPU, boxes of up to 2^40 cells (e.g. 5 cm voxels over 400 m x 400 m x
50 m) take the fast path; larger ones (1 cm over 200 m: 2^41) finish their sort in one thread block
per sample: correct, but slower.

**Outputs.** ``points [M, C]`` float32; then ``counts [M]`` int32 (points per voxel) when
``return_counts=True``; then ``num_points`` (a scalar int32) when ``max_points > 0``.
``min_points_per_voxel`` drops voxels with fewer points.

**Synchronisation.** ``M`` depends on the data. On the GPU backend, without ``max_points``, the
operator copies the per-sample voxel counts (a few bytes per sample) to the host once per batch and
waits for that copy: the one host synchronisation of the operator, so that DALI can allocate the
outputs. With ``max_points = K > 0`` there is no synchronisation at all: ``points`` is ``[K, C]`` (and
``counts`` ``[K]``), the first ``min(M, K)`` rows hold the first voxels in coordinate order, the rest are
zero, and ``num_points`` holds ``min(M, K)``. In that mode a grid error found on the GPU cannot be
raised: the sample gets ``num_points = -1`` and no rows (the CPU backend raises it).

**Errors** name ``robocache.voxel_downsample`` and the sample: ``voxel_size`` <= 0, NaN or inf, or not
1 or 3 values; points not 2-D or with fewer than 3 columns; not float32; a grid beyond 2^31 cells along
an axis (or over 2^63 cells in all); ``C`` differing within a batch; on the GPU, a sample of more than
2^30 - 1 points.
)")
    .NumInput(1)
    .InputDox(0, "points", "TensorList", "Point clouds ``[N, C]`` float32, ``C >= 3`` (x, y, z, features).")
    .NumOutput(1)
    .OutputFn([](const OpSpec &spec) {
      return 1 + (spec.GetArgument<bool>("return_counts") ? 1 : 0) +
             (spec.GetArgument<int>("max_points") > 0 ? 1 : 0);
    })
    .AddArg("voxel_size", "Voxel edge length: one value, or ``[x, y, z]``; > 0. Per-sample argument input allowed.", DALI_FLOAT_VEC, true)
    .AddOptionalArg<std::vector<float>>("origin", "Grid origin ``[x, y, z]`` with ``anchor=\"origin\"``. Default: ``[0, 0, 0]``.", nullptr)
    .AddOptionalArg("anchor", "``\"origin\"`` (default: the grid starts at ``origin``) or ``\"min_bound\"`` (at each sample's minimum bound minus half a voxel, like Open3D).", std::string("origin"))
    .AddOptionalArg("min_points_per_voxel", "Voxels with fewer points are dropped. Default: 1.", 1)
    .AddOptionalArg("return_counts", "Add a ``counts [M]`` int32 output. Default: False.", false)
    .AddOptionalArg("max_points", "When > 0: fixed ``[max_points, C]`` outputs, zero-padded, plus a ``num_points`` output; no host synchronisation. Default: 0 (off).", 0);

DALI_SCHEMA(robocache__Voxelize)
    .DocStr(R"(Voxelizes point clouds over a fixed range (RoboCache): dense grids or sparse voxel lists, the inputs
3D encoders and PointPillars-style models take.

)" RC_POINTS_COMMON_DOC RC_VOXEL_DOC R"(**Grid.** ``range = [xmin, ymin, zmin, xmax, ymax, zmax]``; the grid has
``X = ceil((xmax - xmin) / voxel_x)`` cells along x (likewise y, z), with ``origin = [xmin, ymin, zmin]``.
A point is used when ``min <= p < max`` on every axis (coordinates that round up to ``X`` are clamped
to ``X - 1``); points outside ``range`` are ignored. ``voxel_size`` may be a per-sample argument input,
then dense output shapes differ per sample.

**Modes** (``mode``):

* ``"occupancy"`` (default): ``[X, Y, Z]`` uint8, 1 where a voxel holds a point;
* ``"count"``: ``[X, Y, Z]`` int32 point counts;
* ``"mean"``: ``[X, Y, Z, C]`` float32, the mean of every column of the points in each voxel, 0 where
  empty;
* ``"sparse"``: ``coords [M, 3]`` int32 (voxel indices x, y, z), ``features [M, C]`` float32 means,
  ``counts [M]`` int32, sorted by coordinate; ``min_points_per_voxel`` drops sparse voxels with
  fewer points; ``max_voxels = K > 0`` keeps the K most populated voxels (ties: the voxel earlier in
  coordinate order wins), still sorted by coordinate; ``max_points = K > 0`` pads the three outputs to ``K``
  rows and adds a scalar int32 ``num_voxels`` output (the no-synchronisation path, as in
  ``voxel_downsample``).

Dense grids must have at most 2^31 - 1 cells; sparse grids at most 2^31 - 1 cells per axis and 2^63 in
all. Dense modes and ``max_points`` never synchronise; plain sparse mode copies the per-sample voxel
counts to the host once per batch (the one synchronisation), like ``voxel_downsample``.

**Errors** name ``robocache.voxelize`` and the sample: an empty ``range`` (max <= min on an axis) or
not 6 finite values, ``voxel_size`` <= 0 or NaN, a grid over 2^31 cells, wrong shapes or dtypes.
)")
    .NumInput(1)
    .InputDox(0, "points", "TensorList", "Point clouds ``[N, C]`` float32, ``C >= 3``.")
    .NumOutput(1)
    .OutputFn([](const OpSpec &spec) {
      if (spec.GetArgument<std::string>("mode") != "sparse") return 1;
      return 3 + (spec.GetArgument<int>("max_points") > 0 ? 1 : 0);
    })
    .AddArg("voxel_size", "Voxel edge length: one value, or ``[x, y, z]``; > 0. Per-sample argument input allowed.", DALI_FLOAT_VEC, true)
    .AddArg("range", "``[xmin, ymin, zmin, xmax, ymax, zmax]``; max > min on every axis.", DALI_FLOAT_VEC)
    .AddOptionalArg("mode", "``\"occupancy\"`` (default), ``\"count\"``, ``\"mean\"`` or ``\"sparse\"``.", std::string("occupancy"))
    .AddOptionalArg("min_points_per_voxel", "Sparse mode: voxels with fewer points are dropped. Default: 1.", 1)
    .AddOptionalArg("max_voxels", "Sparse mode: keep at most this many voxels, the most populated (ties: the earlier in coordinate order). Default: 0 (all).", 0)
    .AddOptionalArg("max_points", "Sparse mode: when > 0, outputs padded to this many rows plus a ``num_voxels`` output; no host synchronisation. Default: 0 (off).", 0);

DALI_SCHEMA(robocache__Normalize)
    .DocStr(R"(Centres and scales point clouds (RoboCache); also returns the centre and scale so the transform can be
inverted: ``p = out * scale + centre``.

)" RC_POINTS_COMMON_DOC R"(**Modes** (``mode``), computed over the valid rows in float64:

* ``"center"`` (default): centre = the centroid of x, y, z; scale = 1;
* ``"unit_sphere"``: centre = the centroid; scale = the largest distance from it, so the points fit
  the unit ball;
* ``"unit_cube"``: centre = the middle of the bounding box; scale = its longest side, so the points
  fit a cube of side 1 (``[-0.5, 0.5]^3``).

Only x, y, z change (``(p - centre) / scale`` in float64, rounded to float32); feature columns and
invalid rows pass through (an invalid row's coordinates stay non-finite). A sample with no valid row
gets centre 0 and scale 1; a zero scale (a single point) becomes 1.

**Outputs.** ``points [N, C]`` float32, ``centre [3]`` float32, ``scale`` (a scalar float32). No host
synchronisation. CPU and GPU agree to float32 rounding (the GPU sums in a different order).

**Errors** name ``robocache.normalize`` and the sample: points not 2-D float32 with at least 3 columns,
an unknown mode.
)")
    .NumInput(1)
    .InputDox(0, "points", "TensorList", "Point clouds ``[N, C]`` float32, ``C >= 3``.")
    .NumOutput(3)
    .AddOptionalArg("mode", "``\"center\"`` (default), ``\"unit_sphere\"`` or ``\"unit_cube\"``.", std::string("center"));

namespace {

constexpr int kMaxOut = 4;
constexpr int kMaxDim = 4;

template <typename T>
T ArgOr(const OpSpec &spec, const char *name, T dflt) {
  T v = dflt;
  if (spec.GetSchema().HasArgument(name)) spec.TryGetArgument(v, name);
  return v;
}

std::vector<float> VecArg(const OpSpec &spec, const char *name) {
  std::vector<float> v;
  if (spec.GetSchema().HasArgument(name) && spec.HasArgument(name)) spec.TryGetRepeatedArgument(v, name);
  return v;
}

rust::Vec<float> ToRust(const std::vector<float> &v) {
  rust::Vec<float> r;
  for (float x : v) r.push_back(x);
  return r;
}

rust::Box<robocache::ffi::PointsOp> MakeOp(const OpSpec &spec) {
  robocache::ffi::PointsConfig cfg{};
  const auto &schema = spec.SchemaName();
  cfg.kind = schema == "robocache__VoxelDownsample" ? "voxel_downsample"
             : schema == "robocache__Voxelize"      ? "voxelize"
                                                     : "normalize";
  if (!spec.HasTensorArgument("voxel_size")) cfg.voxel_size = ToRust(VecArg(spec, "voxel_size"));
  cfg.origin = ToRust(VecArg(spec, "origin"));
  cfg.range = ToRust(VecArg(spec, "range"));
  cfg.anchor = ArgOr<std::string>(spec, "anchor", "origin");
  cfg.mode = ArgOr<std::string>(spec, "mode", "");
  cfg.min_points = ArgOr<int>(spec, "min_points_per_voxel", 1);
  cfg.max_points = ArgOr<int>(spec, "max_points", 0);
  cfg.max_voxels = ArgOr<int>(spec, "max_voxels", 0);
  cfg.return_counts = ArgOr<bool>(spec, "return_counts", false);
  try {
    return robocache::ffi::points_new(cfg);
  } catch (const rust::Error &e) {
    DALI_FAIL(std::string(e.what()));
  }
}

}  // namespace

template <typename Backend>
RobocachePoints<Backend>::RobocachePoints(const OpSpec &spec)
    : Operator<Backend>(spec), name_(spec.SchemaName()), op_(MakeOp(spec)) {
  outputs_ = robocache::ffi::points_outputs(*op_);
  voxel_input_ = spec.HasTensorArgument("voxel_size");
}

template <typename Backend>
void RobocachePoints<Backend>::CollectSamples(const Workspace &ws) {
  const auto &in = ws.Input<Backend>(0);
  int n = in.num_samples();
  const TensorList<CPUBackend> *vox = nullptr;
  if (voxel_input_) {
    vox = &ws.ArgumentInput("voxel_size");
    DALI_ENFORCE(vox->type() == DALI_FLOAT,
                 make_string("robocache: voxel_size argument input must be float32, got ", vox->type()));
    DALI_ENFORCE(vox->num_samples() == n,
                 make_string("robocache: voxel_size has ", vox->num_samples(), " samples, points ", n));
  }
  samples_.resize(n);
  for (int i = 0; i < n; i++) {
    auto sh = in.tensor_shape_span(i);
    auto &s = samples_[i];
    s = {};
    s.data = reinterpret_cast<size_t>(in.raw_tensor(i));
    s.ndim = in.sample_dim();
    s.rows = sh.size() >= 1 ? sh[0] : 0;
    s.cols = sh.size() >= 2 ? sh[1] : 0;
    if (vox) {
      s.voxel = reinterpret_cast<size_t>(vox->raw_tensor(i));
      s.voxel_len = volume(vox->tensor_shape_span(i));
    }
  }
}

template <typename Backend>
TensorShape<> RobocachePoints<Backend>::ShapeOf(int i, int k) const {
  TensorShape<> sh;
  int nd = outputs_[k].ndim;
  sh.resize(nd);
  for (int d = 0; d < nd; d++) sh[d] = shapes_[(static_cast<size_t>(i) * kMaxOut + k) * kMaxDim + d];
  return sh;
}

template <typename Backend>
TensorListShape<> RobocachePoints<Backend>::ListShape(int k) const {
  int n = samples_.size();
  TensorListShape<> ls;
  ls.resize(n, outputs_[k].ndim);
  for (int i = 0; i < n; i++) ls.set_tensor_shape(i, ShapeOf(i, k));
  return ls;
}

inline DALIDataType DaliType(robocache::ffi::ElemType t) {
  using robocache::ffi::ElemType;
  return t == ElemType::Float32 ? DALI_FLOAT : t == ElemType::Int32 ? DALI_INT32 : DALI_UINT8;
}

template <typename Backend>
bool RobocachePoints<Backend>::SetupImpl(std::vector<OutputDesc> &output_desc, const Workspace &ws) {
  CollectSamples(ws);
  int n = samples_.size();
  shapes_.assign(static_cast<size_t>(n) * kMaxOut * kMaxDim, 0);
  const auto &in = ws.Input<Backend>(0);
  auto samples = rust::Slice<const robocache::ffi::PointsSampleIn>(samples_.data(), n);
  ROBOCACHE_CALL(known_ = robocache::ffi::points_setup(*op_, robocache_plugin::ToElemType(in.type()), samples,
                                                       rust::Slice<int64_t>(shapes_.data(), shapes_.size())));
  if (std::is_same<Backend, CPUBackend>::value) {
    // The CPU backend computes here: output sizes depend on the data.
    auto &tp = ws.GetThreadPool();
    for (int i = 0; i < n; i++) {
      tp.AddWork(
          [this, i](int) {
            ROBOCACHE_CALL(robocache::ffi::points_cpu_compute(
                *op_, i, samples_[i],
                rust::Slice<int64_t>(shapes_.data() + static_cast<size_t>(i) * kMaxOut * kMaxDim, kMaxOut * kMaxDim)));
          },
          samples_[i].rows * samples_[i].cols);
    }
    tp.RunAll();
    known_ = true;
  }
  if (!known_) return false;
  int nout = outputs_.size();
  output_desc.resize(nout);
  for (int k = 0; k < nout; k++) {
    output_desc[k].type = DaliType(outputs_[k].ty);
    output_desc[k].shape = ListShape(k);
  }
  return true;
}

template <>
void RobocachePoints<CPUBackend>::RunImpl(Workspace &ws) {
  auto &tp = ws.GetThreadPool();
  int n = samples_.size();
  int nout = outputs_.size();
  for (int i = 0; i < n; i++) {
    tp.AddWork(
        [this, &ws, i, nout](int) {
          size_t outs[kMaxOut] = {0, 0, 0, 0};
          for (int k = 0; k < nout; k++) outs[k] = reinterpret_cast<size_t>(ws.Output<CPUBackend>(k).raw_mutable_tensor(i));
          ROBOCACHE_CALL(robocache::ffi::points_cpu_write(*op_, i, rust::Slice<const size_t>(outs, kMaxOut)));
        },
        samples_[i].rows * samples_[i].cols);
  }
  tp.RunAll();
}

template <>
void RobocachePoints<GPUBackend>::RunImpl(Workspace &ws) {
  int n = samples_.size();
  int nout = outputs_.size();
  auto samples = rust::Slice<const robocache::ffi::PointsSampleIn>(samples_.data(), n);
  size_t sizes[2] = {0, 0};
  ROBOCACHE_CALL(robocache::ffi::points_gpu_scratch(*op_, samples, rust::Slice<size_t>(sizes, 2)));
  kernels::DynamicScratchpad scratch(AccessOrder(ws.stream()));
  uint8_t *host = scratch.AllocatePinned<uint8_t>(std::max<size_t>(sizes[0], 64), 64);
  uint8_t *dev = scratch.AllocateGPU<uint8_t>(std::max<size_t>(sizes[1], 64), 64);
  std::vector<size_t> outs(static_cast<size_t>(n) * kMaxOut, 0);
  auto fill_outs = [&]() {
    for (int k = 0; k < nout; k++) {
      auto &o = ws.Output<GPUBackend>(k);
      for (int i = 0; i < n; i++) outs[static_cast<size_t>(i) * kMaxOut + k] = reinterpret_cast<size_t>(o.raw_mutable_tensor(i));
    }
  };
  if (known_) fill_outs();
  bool need_finish = false;
  ROBOCACHE_CALL(need_finish = robocache::ffi::points_gpu_run(
                     *op_, samples, rust::Slice<const size_t>(outs.data(), outs.size()), reinterpret_cast<size_t>(host),
                     sizes[0], reinterpret_cast<size_t>(dev), reinterpret_cast<size_t>(ws.stream()), 0,
                     rust::Slice<int64_t>(shapes_.data(), shapes_.size())));
  if (!need_finish) return;
  // Shapes came back with the one device-to-host copy of the batch; allocate and finish.
  for (int k = 0; k < nout; k++) ws.Output<GPUBackend>(k).Resize(ListShape(k), DaliType(outputs_[k].ty));
  fill_outs();
  ROBOCACHE_CALL(robocache::ffi::points_gpu_finish(
      *op_, samples, rust::Slice<const size_t>(outs.data(), outs.size()), reinterpret_cast<size_t>(host), sizes[0],
      reinterpret_cast<size_t>(dev), reinterpret_cast<size_t>(ws.stream()), 0));
}

DALI_REGISTER_OPERATOR(robocache__VoxelDownsample, RobocachePoints<CPUBackend>, CPU);
DALI_REGISTER_OPERATOR(robocache__VoxelDownsample, RobocachePoints<GPUBackend>, GPU);
DALI_REGISTER_OPERATOR(robocache__Voxelize, RobocachePoints<CPUBackend>, CPU);
DALI_REGISTER_OPERATOR(robocache__Voxelize, RobocachePoints<GPUBackend>, GPU);
DALI_REGISTER_OPERATOR(robocache__Normalize, RobocachePoints<CPUBackend>, CPU);
DALI_REGISTER_OPERATOR(robocache__Normalize, RobocachePoints<GPUBackend>, GPU);

}  // namespace dali
