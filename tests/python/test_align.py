"""fn.robocache.align inside real DALI pipelines (CPU backend here; the GPU backend is checked
against this one by benchmarks/gpu_align.py on a GPU machine), against an independent numpy/scipy
reference (numpy.interp per channel, scipy Slerp for quaternion groups) on fresh random ragged
multi-stream batches with gaps and NaN runs, on real recordings, plus every documented error."""

from __future__ import annotations

import numpy as np
import pytest

import robocache  # noqa: F401  (loads the plugin)
from nvidia.dali import fn, pipeline_def
from robocache.dtypes import bf16_bits_to_float, float_to_bf16_bits
from robocache.testing import random_quaternions, random_streams, reference_align, streams_overlap

TOL = {"float32": 2e-6, "float16": 2e-3, "float64": 1e-12, "bfloat16": 1.6e-2}


def run_align(streams, reference=None, num_threads=2, **kw):
    """One batch through fn.robocache.align on the CPU backend.

    streams: list of (data list, timestamps list); reference: list of arrays or None.
    Returns (fused, valid, t) as lists of numpy arrays."""
    srcs = []
    for d, t in streams:
        srcs += [d, t]
    if reference is not None:
        srcs.append(reference)
    b = len(srcs[0])

    @pipeline_def(batch_size=b, num_threads=num_threads, device_id=None, prefetch_queue_depth=1)
    def pipe():
        ins = fn.external_source(source=lambda: srcs, num_outputs=len(srcs), batch=True)
        return tuple(fn.robocache.align(*ins, **kw))

    p = pipe()
    p.build()
    f, v, t = p.run()
    return [np.array(f[i]) for i in range(b)], [np.array(v[i]) for i in range(b)], [np.array(t[i]) for i in range(b)]


def as_float(x, dtype_name):
    return bf16_bits_to_float(x) if dtype_name == "bfloat16" else np.asarray(x)


def check(streams, fused, valid, t, dtype_name="float32", **kw):
    """Compares every sample with reference_align; returns the number of invalid flags seen."""
    seen_invalid = 0
    for i in range(len(fused)):
        st = [(as_float(d[i], dtype_name), ts[i]) for d, ts in streams]
        ref, rvalid = reference_align(st, t[i], **kw)
        np.testing.assert_array_equal(valid[i].astype(bool), rvalid, err_msg=f"sample {i}")
        got = as_float(fused[i], dtype_name).astype(np.float64)
        assert got.shape == ref.shape
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"sample {i}")
        finite = [np.abs(d)[~np.isnan(d)] for d, _ in st]
        scale = max([1.0] + [float(x.max()) for x in finite if x.size])
        np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(ref), rtol=TOL[dtype_name], atol=TOL[dtype_name] * scale, err_msg=f"sample {i}")
        seen_invalid += int((~rvalid).sum())
    return seen_invalid


@pytest.mark.parametrize("dtype_name", ["float32", "float16", "float64", "bfloat16"])
@pytest.mark.parametrize("ns", [False, True], ids=["f64s", "i64ns"])
def test_random_ragged_streams_vs_reference(rng, dtype_name, ns):
    np_dtype = np.float32 if dtype_name == "bfloat16" else np.dtype(dtype_name)
    invalid = 0
    for form in ("rate", "count", "reference"):
        for fill in ("hold", "nan", "zero"):
            n = int(rng.integers(1, 6))
            specs = [(float(rng.choice([15.0, 30.0, 100.0, 200.0, 500.0])), int(rng.choice([1, 3, 4, 7, 9]))) for _ in range(n)]
            quats = []
            for s, (_, c) in enumerate(specs):
                if c >= 4 and rng.random() < 0.7:
                    quats += [s, int(rng.integers(0, c - 3))]
            streams = random_streams(rng, int(rng.integers(1, 8)), specs, ns=ns, dtype=np_dtype, quaternions=quats)
            if dtype_name == "bfloat16":
                streams = [([float_to_bf16_bits(x) for x in d], t) for d, t in streams]
            methods = [str(rng.choice(["linear", "nearest", "previous"])) for _ in range(n)]
            max_gap = [float(rng.choice([np.inf, 3.0 / r, 1.5 / r, 0.05])) for r, _ in specs]
            order = str(rng.choice(["xyzw", "wxyz"]))
            kw = dict(methods=methods, max_gap=max_gap, quaternions=quats, quaternion_order=order, fill=fill)
            reference = None
            if form == "rate":
                # "intersection" only where every sample's streams overlap (else the operator rightly refuses)
                span = str(rng.choice(["intersection", "union"])) if streams_overlap(streams) else "union"
                kw.update(target_rate=float(rng.choice([10.0, 50.0, 333.0])), span=span)
            elif form == "count":
                kw.update(num_samples=int(rng.integers(1, 90)), span="union")
            else:
                reference = []
                for i in range(len(streams[0][0])):
                    lo = min(float(t[i][0]) for _, t in streams) - (5e7 if ns else 0.05)
                    hi = max(float(t[i][-1]) for _, t in streams) + (5e7 if ns else 0.05)
                    x = np.sort(rng.uniform(lo, hi, int(rng.integers(0, 120))))
                    x = np.concatenate([x, streams[0][1][i][:3]])  # exact hits too
                    reference.append(np.round(x).astype(np.int64) if ns else x)
            opts = {k: v for k, v in kw.items() if k in ("target_rate", "num_samples", "span")}
            fused, valid, t = run_align(streams, reference, dtype="bfloat16" if dtype_name == "bfloat16" else "", **kw)
            if reference is not None:
                for a, b in zip(t, reference):
                    np.testing.assert_array_equal(a, b)
            elif "num_samples" in opts:
                for i, a in enumerate(t):  # span="union": from the earliest first to the latest last timestamp
                    lo, hi = min(ts[i][0] for _, ts in streams), max(ts[i][-1] for _, ts in streams)
                    assert len(a) == opts["num_samples"] and a[-1] == hi
                    assert a[0] == (lo if len(a) > 1 else hi)
            for i in range(len(fused)):
                assert fused[i].shape == (len(t[i]), sum(c for _, c in specs))
                assert valid[i].shape == (len(t[i]), n) and valid[i].dtype == np.uint8
                assert t[i].dtype == (np.int64 if ns else np.float64)
            invalid += check(streams, fused, valid, t, dtype_name, **{k: v for k, v in kw.items() if k not in opts})
    assert invalid > 0  # the random gaps, NaN runs and spans did produce invalid steps


def test_hand_case_gap_nan_and_fill():
    d0 = [np.array([[0.0], [10.0], [np.nan], [30.0]], np.float32)]
    t0 = [np.array([0.0, 1.0, 2.0, 3.0])]
    d1 = [np.array([[0.0, 0.0], [4.0, 8.0]], np.float32)]
    t1 = [np.array([0.5, 2.5])]
    f, v, t = run_align([(d0, t0), (d1, t1)], target_rate=2.0, max_gap=[1.5, float("inf")], fill="nan")
    np.testing.assert_array_equal(t[0], [0.5, 1.0, 1.5, 2.0, 2.5])
    np.testing.assert_array_equal(v[0], [[1, 1], [1, 1], [0, 1], [0, 1], [0, 1]])
    np.testing.assert_array_equal(f[0][:2], [[5.0, 0.0, 0.0], [10.0, 1.0, 2.0]])
    assert np.isnan(f[0][2:, 0]).all()
    f, v, t = run_align([(d0, t0), (d1, t1)], [np.array([-1.0, 1.2, 2.9])], max_gap=[2.5, 0.5])
    np.testing.assert_array_equal(v[0], [[0, 0], [1, 0], [1, 0]])
    np.testing.assert_allclose(f[0], [[0.0, 0.0, 0.0], [12.0, 0.0, 0.0], [29.0, 4.0, 8.0]])  # hold: first row before the span, L inside
    f, v, t = run_align([(d0, t0), (d1, t1)], [np.zeros(0)])  # an empty reference: zero steps
    assert f[0].shape == (0, 3) and v[0].shape == (0, 2) and t[0].shape == (0,)


def test_zero_fill_writes_identity_quaternions():
    q = random_quaternions(np.random.default_rng(0), 5)
    d = [np.concatenate([np.ones((5, 1)), q], axis=1).astype(np.float32)]
    t = [np.arange(5, dtype=np.float64)]
    for order, ident in (("xyzw", [0, 0, 0, 1]), ("wxyz", [1, 0, 0, 0])):
        f, v, _ = run_align([(d, t)], [np.array([-1.0, 2.0, 9.0])], quaternions=[0, 1], quaternion_order=order, fill="zero")
        np.testing.assert_array_equal(v[0][:, 0], [0, 1, 0])
        np.testing.assert_array_equal(f[0][0], [0] + ident)
        np.testing.assert_allclose(f[0][1, 1:], q[2] / np.linalg.norm(q[2]), rtol=1e-6)


def test_bench_shape_four_streams(rng):
    specs = [(200.0, 6), (100.0, 7), (30.0, 7), (500.0, 6)]
    streams = random_streams(rng, 4, specs, quaternions=[2, 3])
    kw = dict(methods=["linear", "linear", "linear", "previous"], max_gap=[0.02, 0.05, 0.1, 0.01], quaternions=[2, 3])
    f, v, t = run_align(streams, target_rate=50.0, **kw)
    check(streams, f, v, t, **kw)


def _euroc_csv(path, dtype=np.float64):
    return np.loadtxt(path, delimiter=",", comments="#", dtype=dtype)


def test_euroc_imu_aligned_to_cam0_frames(data_dir):
    mav0 = data_dir / "trajectories" / "euroc_v101_micro" / "mav0"
    imu_ts = np.loadtxt(mav0 / "imu0" / "data.csv", delimiter=",", comments="#", usecols=0, dtype=np.int64)
    imu = _euroc_csv(mav0 / "imu0" / "data.csv")[:, 1:].astype(np.float32)
    cam = np.loadtxt(mav0 / "cam0" / "data.csv", delimiter=",", comments="#", usecols=0, dtype=np.int64)
    assert len(cam) == 95 and imu.shape == (29120, 6)
    f, v, t = run_align([([imu], [imu_ts])], [cam], max_gap=[0.01])
    np.testing.assert_array_equal(t[0], cam)
    inside = (cam >= imu_ts[0]) & (cam <= imu_ts[-1])
    assert inside.sum() > 80
    np.testing.assert_array_equal(v[0][:, 0].astype(bool), inside)
    x, xp = (cam - imu_ts[0]).astype(np.float64), (imu_ts - imu_ts[0]).astype(np.float64)
    for c in range(6):
        ref = np.interp(x, xp, imu[:, c].astype(np.float64))
        np.testing.assert_allclose(f[0][inside, c], ref[inside], rtol=2e-6, atol=2e-6 * np.abs(imu[:, c]).max())


def _tum(path):
    a = np.loadtxt(path, comments="#")
    return np.ascontiguousarray(a[:, 0]), a[:, 1:].astype(np.float32)


def test_tum_fr2_desk_mocap_gap_is_invalid(data_dir):
    d = data_dir / "trajectories" / "tum_fr2_desk"
    gt_t, gt = _tum(d / "fr2_desk_groundtruth.txt")
    orb_t, _ = _tum(d / "fr2_desk_ORB.txt")
    # The mocap log repeats one timestamp (index 10859, two poses): the operator rejects that, as it
    # should; keep the first pose of the pair.
    keep = np.concatenate([[True], np.diff(gt_t) > 0])
    assert (~keep).sum() == 1
    gt_t, gt = np.ascontiguousarray(gt_t[keep]), np.ascontiguousarray(gt[keep])
    big = np.flatnonzero(np.diff(gt_t) > 10.0)
    assert len(big) == 1  # the 12 s hole in the motion capture
    g0, g1 = gt_t[big[0]], gt_t[big[0] + 1]
    kw = dict(max_gap=[0.1], quaternions=[0, 3], quaternion_order="xyzw")
    f, v, t = run_align([([gt], [gt_t])], [orb_t], **kw)
    valid = v[0][:, 0].astype(bool)
    in_gap = (orb_t > g0) & (orb_t < g1)
    assert in_gap.sum() > 300  # ~31 Hz for ~12 s
    assert not valid[in_gap].any()
    # everywhere: valid exactly where the two mocap samples around the frame are <= 0.1 s apart
    # (the log has a few shorter 1-2 s dropouts too)
    i = np.clip(np.searchsorted(gt_t, orb_t, side="right") - 1, 0, len(gt_t) - 2)
    inside = (orb_t >= gt_t[0]) & (orb_t <= gt_t[-1])
    np.testing.assert_array_equal(valid, inside & ((gt_t[i] == orb_t) | (gt_t[i + 1] - gt_t[i] <= 0.1)))
    assert valid.mean() > 0.7  # 77 %: the 12 s hole is 13 % of the frames
    # held values across the gap: the last mocap pose before it
    np.testing.assert_allclose(f[0][in_gap][:, :3], np.repeat(gt[big[0]][None, :3], in_gap.sum(), 0))
    check([([gt], [gt_t])], f, v, t, **kw)


def test_euroc_v102_groundtruth_orientation_slerp(data_dir):
    from scipy.spatial.transform import Rotation, Slerp

    d = data_dir / "trajectories" / "euroc_v102"
    gt_t = np.loadtxt(d / "V102_groundtruth.csv", delimiter=",", comments="#", usecols=0, dtype=np.int64)
    gt = _euroc_csv(d / "V102_groundtruth.csv")[:, 1:].astype(np.float64)
    est_t = np.round(np.loadtxt(d / "V102.txt")[:, 0] * 1e9).astype(np.int64)
    assert gt.shape == (16702, 16)
    pose, vel = np.ascontiguousarray(gt[:, :7]), np.ascontiguousarray(gt[:, 7:10])
    f, v, t = run_align([([pose], [gt_t]), ([vel], [gt_t])], [est_t], quaternions=[0, 3], quaternion_order="wxyz", max_gap=[0.02, 0.02], fill="nan")
    ok = v[0][:, 0].astype(bool)
    inside = (est_t >= gt_t[0]) & (est_t <= gt_t[-1])
    assert ok.sum() > 100
    np.testing.assert_array_equal(ok, inside)
    x, xp = (est_t - gt_t[0]) * 1e-9, (gt_t - gt_t[0]) * 1e-9
    rots = Rotation.from_quat(pose[:, [4, 5, 6, 3]])
    ref = Slerp(xp, rots)(x[ok])
    got = Rotation.from_quat(f[0][ok][:, [4, 5, 6, 3]])
    assert np.max((ref.inv() * got).magnitude()) < 1e-6
    np.testing.assert_allclose(np.linalg.norm(f[0][ok][:, 3:7], axis=1), 1.0, atol=1e-12)
    for c in range(3):
        np.testing.assert_allclose(f[0][ok][:, c], np.interp(x[ok], xp, pose[:, c]), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(f[0][ok][:, 7 + c], np.interp(x[ok], xp, vel[:, c]), rtol=1e-12, atol=1e-12)


D = [np.zeros((4, 2), np.float32), np.ones((3, 2), np.float32)]
T = [np.arange(4, dtype=np.float64), np.arange(3, dtype=np.float64)]
Q = [np.zeros((4, 5), np.float32), np.zeros((3, 5), np.float32)]


def _err(streams, reference=None, **kw):
    with pytest.raises(RuntimeError) as e:
        run_align(streams, reference, **kw)
    return str(e.value)


@pytest.mark.parametrize(
    "streams, reference, kw, expected",
    [
        ([(D, T), (D, [T[0], np.array([0.0, 2.0, 1.0])])], None, {}, "robocache.align: sample 1: stream 1: timestamps not strictly increasing at index 2: 1 after 2"),
        ([(D, T), (D, [T[0], np.array([0.0, np.nan, 2.0])])], None, {}, "robocache.align: sample 1: stream 1: timestamps[1] is NaN"),
        ([(D, [np.array([5, 4, 6, 7], np.int64), np.arange(3, dtype=np.int64)])], None, {}, "robocache.align: sample 0: stream 0: timestamps not strictly increasing at index 1: 4 ns after 5 ns"),
        ([(D, T), (D, [T[0], np.arange(5, dtype=np.float64)])], None, {}, "robocache.align: sample 1: stream 1: length mismatch: data has 3 rows (T) but timestamps has 5 entries"),
        ([(D, T), ([np.zeros((0, 2), np.float32), D[1]], [np.zeros(0), T[1]])], None, {}, "robocache.align: sample 0: stream 1: empty"),
        ([(Q, T)], None, {"quaternions": [0, 2]}, "robocache.align: invalid argument `quaternions`: got a group at channels 2..5 of stream 0, which has 5 channels"),
        ([(Q, T)], None, {"quaternions": [1, 0]}, "invalid argument `quaternions`: got the pair (1, 0), expected a stream index in [0, 1)"),
        ([(Q, T)], None, {"quaternions": [0, 0, 0]}, "`quaternions`: got 3 values, expected a flat list of (stream, first channel) pairs"),
        ([(Q, T)], None, {"quaternions": [0, 0, 0, 1]}, "overlapping groups at channels 0 and 1 of stream 0"),
        ([(D, T), (D, T)], None, {"methods": ["linear"]}, "robocache.align: invalid argument `methods`: got a list of 1 values, expected one value per stream (2 streams)"),
        ([(D, T), (D, T)], None, {"max_gap": [0.1, 0.1, 0.1]}, "invalid argument `max_gap`: got a list of 3 values, expected one value per stream (2 streams)"),
        ([(D, T)], None, {"max_gap": [-1.0]}, "invalid argument `max_gap`: got -1"),
        ([(D, T)], None, {"methods": ["cubic"]}, "invalid argument `methods`: got \"cubic\""),
        ([(D, T)], None, {"fill": "mean"}, "invalid argument `fill`: got \"mean\""),
        ([(D, T)], None, {"span": "all"}, "invalid argument `span`"),
        ([(D, T)], None, {"quaternion_order": "zyxw"}, "invalid argument `quaternion_order`"),
        ([(D, T)], [T[0], T[1]], {"target_rate": 5.0}, "2 reference clock forms"),
        ([(D, T)], None, {"no_clock": True}, "0 reference clock forms"),
        ([(D, T), (D, [t + 10.0 for t in T])], None, {}, "robocache.align: sample 0: the streams do not overlap: stream 1 starts at 10 s after stream 0 ends at 3 s"),
        ([(D, T), (D, [t.astype(np.int64) for t in T])], None, {}, "robocache.align: sample 0: stream 1: timestamps are int64 but stream 0's are float64"),
        ([(D, T)], [t.astype(np.int64) for t in T], {"no_clock": True}, "robocache.align: sample 0: reference timestamps are int64 but the streams' are float64"),
        ([(D, T)], [np.array([0.5, np.inf]), np.array([1.0])], {"no_clock": True}, "robocache.align: sample 0: reference_timestamps[1] is inf s: must be finite"),
        ([(D, T), ([d.astype(np.float16) for d in D], T)], None, {}, "robocache.align: sample 0: stream 1: data is float16 but stream 0 is float32"),
        ([([d.astype(np.int32) for d in D], T)], None, {}, "robocache.align: unsupported dtype for data: got int32"),
        ([([d.astype(np.uint16) for d in D], T)], None, {}, "pass dtype=\"bfloat16\""),
        ([(D, [t.astype(np.float32) for t in T])], None, {}, "unsupported dtype for timestamps: got float32"),
        ([([np.zeros((4, 2, 1), np.float32), np.zeros((3, 2, 1), np.float32)], T)], None, {}, "sample 0: stream 0: data must be [T, C] or [T]; got 3 dimensions"),
        ([(D, T), ([D[0], np.ones((3, 5), np.float32)], T)], None, {}, "sample 1: stream 1: data has C=5 channels but sample 0 has C=2"),
    ],
)
def test_bad_input_errors(streams, reference, kw, expected):
    kw = dict(kw)
    if kw.pop("no_clock", False) is False and reference is None and not any(k in kw for k in ("target_rate", "num_samples")):
        kw["target_rate"] = 2.0
    assert expected in _err(streams, reference, **kw)


def test_zero_streams_and_too_many():
    @pipeline_def(batch_size=1, num_threads=1, device_id=None)
    def only_reference():
        r = fn.external_source(source=lambda: [T[0]], batch=True)
        return tuple(fn.robocache.align(r))

    with pytest.raises(RuntimeError, match=r"robocache.align: invalid argument `inputs`: got 1 input\(s\), i.e. zero streams"):
        p = only_reference()
        p.build()
        p.run()

    @pipeline_def(batch_size=1, num_threads=1, device_id=None)
    def no_inputs():
        return tuple(fn.robocache.align(target_rate=2.0))

    with pytest.raises(RuntimeError, match=r"robocache.align: invalid argument `inputs`: got 0 input\(s\), i.e. zero streams"):
        p = no_inputs()
        p.build()
        p.run()

    @pipeline_def(batch_size=1, num_threads=1, device_id=None)
    def nine_streams():
        ins = fn.external_source(source=lambda: [D[:1], T[:1]] * 9, num_outputs=18, batch=True)
        return tuple(fn.robocache.align(*ins, target_rate=2.0))

    with pytest.raises(ValueError, match="robocache.align expects from 0 to 17 inputs"):  # at most 8 streams (+ reference)
        p = nine_streams()
        p.build()
        p.run()


def test_raw_abi_plans_like_the_operator(rng):
    """The C ABI the GPU evidence script drives (phase -1: validate and plan; needs no GPU)."""
    from robocache._raw_align import AlignBatch

    specs = [(200.0, 6), (30.0, 7)]
    streams = random_streams(rng, 5, specs, quaternions=[1, 3])
    data, ts = [d for d, _ in streams], [t for _, t in streams]
    rb = AlignBatch(data, ts, target_rate=50.0, quaternions=[1, 3], max_gap=[0.02, 0.1], methods=["linear", "nearest"], plan_only=True)
    f, _, t = run_align(streams, target_rate=50.0, quaternions=[1, 3])
    assert rb.lens == [len(x) for x in t] and rb.total_channels == 13 and rb.scratch_bytes > 0
    with pytest.raises(RuntimeError, match="robocache.align: invalid argument `quaternions`"):
        AlignBatch(data, ts, target_rate=50.0, quaternions=[1, 4], plan_only=True)


def test_eight_streams_and_a_reference(rng):
    """The most inputs the schema takes: 8 streams + reference timestamps (17 inputs)."""
    specs = [(float(r), int(c)) for r, c in zip(rng.choice([20.0, 100.0, 400.0], 8), rng.integers(1, 9, 8))]
    streams = random_streams(rng, 3, specs)
    reference = [np.sort(rng.uniform(t[0] - 0.1, t[-1] + 0.1, 50)) for t in streams[0][1]]
    kw = dict(max_gap=[0.1] * 8, fill="nan")
    f, v, t = run_align(streams, reference, **kw)
    assert v[0].shape == (50, 8) and f[0].shape == (50, sum(c for _, c in specs))
    check(streams, f, v, t, **kw)


@pytest.fixture(scope="module")
def kernel_on_cpu(tmp_path_factory):
    """kernels/align.cu + align_flat.cu built for the CPU (tests/emulate/): the GPU kernels' source, run on the
    operator's own packed descriptors (Phase::Emulate) on machines without a GPU."""
    import ctypes
    import shutil
    import subprocess
    from pathlib import Path

    cxx = shutil.which("g++") or shutil.which("c++")
    assert cxx, "a C++ compiler is needed (it also builds the plugin)"
    src = Path(__file__).resolve().parents[1] / "emulate" / "align_emulator.cc"
    lib = tmp_path_factory.mktemp("emu") / "align_emulator.so"
    subprocess.run([cxx, "-std=c++17", "-O1", "-ffp-contract=off", "-shared", "-fPIC", "-Wno-unknown-pragmas", "-o", str(lib), str(src)], check=True)
    return ctypes.CDLL(str(lib))


# Launch knobs (ROBOCACHE_ALIGN_*, read per launch): the defaults; the tiled form (kernels/align.cu)
# with rows in global memory, with every stream's rows in shared-memory windows, with windows too
# narrow for most steps and an odd tile (the kernel's global-memory searches), and with a
# shared-memory budget too small for the output tile and most windows (cut windows, unstaged stores)
# with large tiles; the flat forms (kernels/align_flat.cu): flat, staged, locate + gather (odd tile), rows;
# the sweep (kernels/align_sweep.cu, selectable for computed clocks) with small blocks, and with a
# shared-memory budget too small for its staged steps (stores straight to global memory).
KNOB_SETS = {
    "default": {},
    "sweep": {"DESIGN": "sweep"},
    "sweep_small": {"DESIGN": "sweep", "TILE": "32", "BLOCK": "64"},
    "sweep_unstaged": {"DESIGN": "sweep", "TILE": "48", "SMEM": "256"},
    "tiled": {"DESIGN": "tiled"},
    "dense": {"DESIGN": "tiled", "SPARSE": "1000000"},
    "global": {"DESIGN": "tiled", "SPARSE": "0", "MARGIN": "0", "MARGIN_SHIFT": "31", "TILE": "5"},
    "cut": {"DESIGN": "tiled", "SMEM": "256", "TILE": "64"},
    "flat": {"DESIGN": "flat"},
    "staged": {"DESIGN": "staged"},
    "gather": {"DESIGN": "gather", "TILE": "5"},
    "rows": {"DESIGN": "rows"},
}


@pytest.mark.parametrize("knobs", list(KNOB_SETS))
@pytest.mark.parametrize("dtype_name", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("ns", [False, True], ids=["f64s", "i64ns"])
def test_gpu_kernel_source_on_cpu_matches_cpu_backend(rng, kernel_on_cpu, dtype_name, ns, knobs, monkeypatch):
    """The kernel source and the GPU packing, emulated on the CPU with poisoned outputs, against the
    Rust CPU backend in a DALI pipeline: bit for bit (valid flags, timestamps and values), under
    launch knobs that send the kernel down each of its paths."""
    import ctypes

    for k, v in KNOB_SETS[knobs].items():
        monkeypatch.setenv(f"ROBOCACHE_ALIGN_{k}", v)

    from robocache._raw_align import AlignBatch

    np_dtype = np.float32 if dtype_name == "bfloat16" else np.dtype(dtype_name)
    suffix = {"float32": "f32", "float64": "f64", "bfloat16": "bf16"}[dtype_name]
    emulator = ctypes.cast(getattr(kernel_on_cpu, f"emulate_align_{suffix}"), ctypes.c_void_p).value
    for fill in ("hold", "nan", "zero"):
        for form in ("rate", "count", "reference"):
            n = int(rng.integers(1, 9))
            specs = [(float(rng.choice([15.0, 30.0, 100.0, 200.0, 500.0])), int(rng.choice([1, 3, 4, 7, 9]))) for _ in range(n)]
            quats = []
            for s, (_, c) in enumerate(specs):
                if c >= 4 and rng.random() < 0.7:
                    quats += [s, int(rng.integers(0, c - 3))]
            streams = random_streams(rng, int(rng.integers(1, 10)), specs, ns=ns, dtype=np_dtype, quaternions=quats)
            if dtype_name == "bfloat16":
                streams = [([float_to_bf16_bits(x) for x in d], t) for d, t in streams]
            kw = dict(
                methods=[str(rng.choice(["linear", "nearest", "previous"])) for _ in range(n)],
                max_gap=[float(rng.choice([np.inf, 3.0 / r, 1.5 / r, 0.05])) for r, _ in specs],
                quaternions=quats, quaternion_order=str(rng.choice(["xyzw", "wxyz"])), fill=fill,
                dtype="bfloat16" if dtype_name == "bfloat16" else "",
            )
            reference, clock = None, {}
            if form == "rate":
                # "intersection" only where every sample's streams overlap (else the operator rightly refuses)
                span = str(rng.choice(["intersection", "union"])) if streams_overlap(streams) else "union"
                clock = dict(target_rate=float(rng.choice([10.0, 50.0, 333.0])), span=span)
            elif form == "count":
                clock = dict(num_samples=int(rng.integers(1, 90)), span="union")
            else:
                reference = []
                for i in range(len(streams[0][0])):
                    lo = min(float(t[i][0]) for _, t in streams) - (5e7 if ns else 0.05)
                    hi = max(float(t[i][-1]) for _, t in streams) + (5e7 if ns else 0.05)
                    x = np.sort(rng.uniform(lo, hi, int(rng.integers(0, 120))))
                    reference.append(np.round(x).astype(np.int64) if ns else x)
            rb = AlignBatch([d for d, _ in streams], [t for _, t in streams], reference, host=True, **kw, **clock)
            rb.emulate(emulator)
            f, v, t = run_align(streams, reference, **kw, **clock)
            for i in range(len(f)):
                np.testing.assert_array_equal(rb.out_ts[i], t[i])
                np.testing.assert_array_equal(rb.valid[i], v[i])
                np.testing.assert_array_equal(rb.out[i].view(np.uint8), f[i].view(np.uint8), err_msg=f"{form} {fill} sample {i}")


def test_keyword_reference_helper(rng):
    from robocache.align import align

    streams = random_streams(rng, 2, [(100.0, 3), (30.0, 2)])
    reference = [np.sort(rng.uniform(t[0], t[-1], 17)) for t in streams[0][1]]
    srcs = [streams[0][0], streams[0][1], streams[1][0], streams[1][1], reference]

    @pipeline_def(batch_size=2, num_threads=1, device_id=None)
    def pipe():
        a, at, b, bt, r = fn.external_source(source=lambda: srcs, num_outputs=5, batch=True)
        return align(a, at, b, bt, reference_timestamps=r, max_gap=[0.05, 0.1])

    p = pipe()
    p.build()
    f, v, t = p.run()
    want = run_align(streams, reference, max_gap=[0.05, 0.1])
    for i in range(2):
        np.testing.assert_array_equal(np.array(t[i]), reference[i])
        np.testing.assert_array_equal(np.array(f[i]), want[0][i])
        np.testing.assert_array_equal(np.array(v[i]), want[1][i])
    with pytest.raises(ValueError, match="expected \\(data, timestamps\\) pairs, got 3 inputs"):
        align(1, 2, 3)
