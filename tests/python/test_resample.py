"""fn.robocache.resample inside real DALI pipelines (CPU backend here; the GPU backend is checked
against this one by benchmarks/gpu_resample.py on a GPU machine), against an independent numpy
reference, on fresh random ragged batches and on real recordings, plus every documented error."""

from __future__ import annotations

import numpy as np
import pytest

import robocache
from nvidia.dali import fn, pipeline_def, types
from robocache.dtypes import bf16_bits_to_float, float_to_bf16_bits
from robocache.testing import random_ragged, read_euroc_imu, read_lerobot_states, reference_resample


def run(data, ts, targets=None, num_threads=2, **kw):
    """One batch through fn.robocache.resample on the CPU backend; returns lists of numpy arrays."""
    srcs = [data, ts] + ([targets] if targets is not None else [])

    @pipeline_def(batch_size=len(data), num_threads=num_threads, device_id=None, prefetch_queue_depth=1)
    def pipe():
        ins = fn.external_source(source=lambda: srcs, num_outputs=len(srcs), batch=True)
        out, out_ts = fn.robocache.resample(*ins, **kw)
        return out, out_ts

    p = pipe()
    p.build()
    o, ot = p.run()
    return [np.array(o[i]) for i in range(len(data))], [np.array(ot[i]) for i in range(len(data))]


TOL = {"float32": 2e-6, "float16": 2e-3, "float64": 1e-12, "bfloat16": 1.6e-2}


def check_against_reference(data, ts, out, out_ts, method, extrapolate, dtype_name, expect_n=None):
    for i, (d, t) in enumerate(zip(data, ts)):
        o = bf16_bits_to_float(out[i]) if dtype_name == "bfloat16" else out[i]
        src = bf16_bits_to_float(d) if dtype_name == "bfloat16" else d
        assert out_ts[i].dtype == t.dtype
        assert o.shape == (len(out_ts[i]),) + src.shape[1:]
        if expect_n is not None:
            assert len(out_ts[i]) == expect_n[i]
        ref = reference_resample(src, t, out_ts[i], method, extrapolate)
        np.testing.assert_array_equal(np.isnan(o), np.isnan(ref))
        scale = max(1.0, float(np.nanmax(np.abs(src)))) if src.size else 1.0
        np.testing.assert_allclose(np.nan_to_num(o.astype(np.float64)), np.nan_to_num(ref), rtol=TOL[dtype_name], atol=TOL[dtype_name] * scale)


@pytest.mark.parametrize("dtype_name", ["float32", "float16", "float64", "bfloat16"])
@pytest.mark.parametrize("method", ["linear", "nearest", "previous"])
@pytest.mark.parametrize("ns", [False, True], ids=["f64s", "i64ns"])
def test_random_ragged_every_form_and_mode(rng, dtype_name, method, ns):
    np_dtype = np.float32 if dtype_name == "bfloat16" else np.dtype(dtype_name)
    for form in ("rate", "count", "targets"):
        for extrapolate in ("clamp", "nan"):
            c = int(rng.choice([1, 3, 14, 33]))
            data, ts = random_ragged(rng, int(rng.integers(1, 12)), c, (1, 120), ns=ns, dtype=np_dtype)
            if dtype_name == "bfloat16":
                data = [float_to_bf16_bits(d) for d in data]
            kw = dict(method=method, extrapolate=extrapolate, dtype="bfloat16" if dtype_name == "bfloat16" else "")
            targets, expect = None, None
            if form == "rate":
                rate = float(rng.choice([3.0, 50.0, 400.0]))
                kw.update(target_rate=rate, start=-0.1, end=1.5)
                span = [(t[0] + (-0.1 * (1e9 if ns else 1)), t[0] + 1.5 * (1e9 if ns else 1)) for t in ts]
                expect = [int(np.floor((b - a) / (1e9 if ns else 1) * rate + 1e-6)) + 1 for a, b in span]
            elif form == "count":
                kw["num_samples"] = int(rng.integers(1, 80))
                expect = [kw["num_samples"]] * len(ts)
            else:
                targets = []
                for t in ts:
                    width = max(float(t[-1] - t[0]), 1.0)
                    x = rng.uniform(float(t[0]) - 0.2 * width, float(t[-1]) + 0.2 * width, int(rng.integers(0, 60)))
                    targets.append(np.round(x).astype(np.int64) if ns else x)
                expect = [len(x) for x in targets]
            out, out_ts = run(data, ts, targets, **kw)
            if targets is not None:
                for a, b in zip(out_ts, targets):
                    np.testing.assert_array_equal(a, b)
            check_against_reference(data, ts, out, out_ts, method, extrapolate, dtype_name, expect)


def test_rate_grid_is_uniform_from_first_to_last(rng):
    data, ts = random_ragged(rng, 5, 4, (10, 300))
    out, out_ts = run(data, ts, target_rate=50.0)
    for t, ot in zip(ts, out_ts):
        assert ot[0] == t[0]
        np.testing.assert_allclose(np.diff(ot)[:-1], 0.02, rtol=0, atol=1e-9)
        assert ot[-1] <= t[-1] and t[-1] - ot[-1] < 0.02 + 1e-9


def test_num_samples_includes_both_ends_and_windows_per_sample(rng):
    data, ts = random_ragged(rng, 6, 2, (50, 100))
    starts = [np.float32(x) for x in rng.uniform(0.0, 0.2, 6)]

    @pipeline_def(batch_size=6, num_threads=1, device_id=None)
    def pipe():
        d, t = fn.external_source(source=lambda: (data, ts), num_outputs=2, batch=True)
        s = fn.external_source(source=lambda: starts, batch=True)
        return tuple(fn.robocache.resample(d, t, num_samples=16, start=s, end=0.25))

    p = pipe()
    p.build()
    o, ot = p.run()
    for i in range(6):
        got = np.array(ot[i])
        assert got[0] == pytest.approx(ts[i][0] + float(starts[i]), abs=1e-12)
        assert got[-1] == pytest.approx(ts[i][0] + 0.25, abs=1e-7)
        assert np.array(o[i]).shape == (16, 2)


def test_one_dimensional_data_and_layout_kept():
    d = [np.arange(5, dtype=np.float32)]
    t = [np.arange(5, dtype=np.float64)]

    @pipeline_def(batch_size=1, num_threads=1, device_id=None)
    def pipe():
        a, b = fn.external_source(source=lambda: (d, t), num_outputs=2, batch=True, layout=["T", None])
        return tuple(fn.robocache.resample(a, b, num_samples=9))

    p = pipe()
    p.build()
    o, ot = p.run()
    np.testing.assert_allclose(np.array(o[0]), np.linspace(0, 4, 9))
    assert o.layout() == "T"


def test_bfloat16_bits_round_trip_matches_float_reference(rng):
    x = rng.standard_normal((200, 7)).astype(np.float32)
    ts = np.cumsum(rng.uniform(0.004, 0.006, 200))
    out, out_ts = run([float_to_bf16_bits(x)], [ts], num_samples=333, dtype="bfloat16")
    assert out[0].dtype == np.uint16
    ref = reference_resample(bf16_bits_to_float(float_to_bf16_bits(x)), ts, out_ts[0])
    expect = bf16_bits_to_float(float_to_bf16_bits(ref.astype(np.float32)))
    got = bf16_bits_to_float(out[0])
    assert np.max(np.abs(got - expect)) <= 2 ** -7 * np.max(np.abs(expect))


def test_euroc_imu_ns_to_50_and_400_hz(data_dir):
    ts, imu = read_euroc_imu(data_dir / "trajectories" / "euroc_v101_micro" / "mav0")
    assert ts.dtype == np.int64 and len(ts) == 29120
    for rate in (50.0, 400.0):
        out, out_ts = run([imu], [ts], target_rate=rate)
        span = (ts[-1] - ts[0]) * 1e-9
        assert len(out_ts[0]) == int(np.floor(span * rate + 1e-6)) + 1
        assert out_ts[0].dtype == np.int64
        np.testing.assert_array_equal(np.diff(out_ts[0])[:10], np.round(np.arange(1, 11) / rate * 1e9).astype(np.int64) - np.round(np.arange(0, 10) / rate * 1e9).astype(np.int64))
        check_against_reference([imu], [ts], out, out_ts, "linear", "clamp", "float32")


def test_lerobot_g1_joints_30hz_to_50hz(data_dir):
    eps = sorted((data_dir / "datasets" / "lerobot_v21_unitree_g1" / "data" / "chunk-000").glob("*.parquet"))
    pairs = [read_lerobot_states(p) for p in eps]
    ts, states = [p[0] for p in pairs], [p[1] for p in pairs]
    assert [s.shape for s in states] == [(479, 26), (393, 26)]
    out, out_ts = run(states, ts, target_rate=50.0)
    for t, o, ot in zip(ts, out, out_ts):
        assert o.shape == (int(np.floor((t[-1] - t[0]) * 50 + 1e-6)) + 1, 26)
    check_against_reference(states, ts, out, out_ts, "linear", "clamp", "float32")
    prev, prev_ts = run(states, ts, target_rate=50.0, method="previous")
    check_against_reference(states, ts, prev, prev_ts, "previous", "clamp", "float32")


def _err(data, ts, targets=None, **kw):
    with pytest.raises(RuntimeError) as e:
        run(data, ts, targets, **kw)
    return str(e.value)


GOOD_D = [np.zeros((4, 2), np.float32), np.ones((3, 2), np.float32)]
GOOD_T = [np.arange(4, dtype=np.float64), np.arange(3, dtype=np.float64)]


@pytest.mark.parametrize(
    "case, data, ts, kw, expected",
    [
        ("duplicate", GOOD_D, [GOOD_T[0], np.array([0.0, 1.0, 1.0])], {}, "robocache.resample: sample 1: timestamps not strictly increasing at index 2"),
        ("unsorted", GOOD_D, [np.array([0.0, 2.0, 1.0, 3.0]), GOOD_T[1]], {}, "robocache.resample: sample 0: timestamps not strictly increasing at index 2"),
        ("nan", GOOD_D, [GOOD_T[0], np.array([0.0, np.nan, 2.0])], {}, "robocache.resample: sample 1: timestamps[1] is NaN"),
        ("ns unsorted", GOOD_D, [np.array([5, 4, 6, 7], np.int64), np.arange(3, dtype=np.int64)], {}, "sample 0: timestamps not strictly increasing at index 1: 4 ns after 5 ns"),
        ("empty", [np.zeros((0, 2), np.float32), GOOD_D[1]], [np.zeros(0), GOOD_T[1]], {}, "robocache.resample: sample 0: empty sample"),
        ("mismatch", GOOD_D, [GOOD_T[0], np.arange(5, dtype=np.float64)], {}, "robocache.resample: sample 1: length mismatch: data has 3 rows (T) but timestamps has 5"),
        ("rate<=0", GOOD_D, GOOD_T, {"target_rate": -5.0}, "robocache.resample: invalid argument `target_rate`: got -5"),
        ("huge grid", GOOD_D, GOOD_T, {"target_rate": 1e9}, "more than 2^31 - 1"),
        ("two forms", GOOD_D, GOOD_T, {"target_rate": 5.0, "num_samples": 3}, "exactly one of `target_rate`, `num_samples` or a `target_timestamps` input"),
        ("no form", GOOD_D, GOOD_T, {}, "robocache.resample: invalid argument `target`: got 0 target forms"),
        ("int data", [d.astype(np.int32) for d in GOOD_D], GOOD_T, {"target_rate": 2.0}, "robocache.resample: unsupported dtype for data: got int32"),
        ("uint16 no bf16", [d.astype(np.uint16) for d in GOOD_D], GOOD_T, {"target_rate": 2.0}, "pass dtype=\"bfloat16\""),
        ("bf16 on float", GOOD_D, GOOD_T, {"target_rate": 2.0, "dtype": "bfloat16"}, "float32 with dtype=\"bfloat16\""),
        ("f32 ts", GOOD_D, [t.astype(np.float32) for t in GOOD_T], {"target_rate": 2.0}, "unsupported dtype for timestamps: got float32, expected one of float64 (seconds) or int64 (nanoseconds)"),
        ("3-D data", [np.zeros((4, 2, 1), np.float32), np.zeros((3, 2, 1), np.float32)], GOOD_T, {"target_rate": 2.0}, "sample 0: data must be [T, C] or [T]; got 3 dimensions"),
        ("2-D ts", GOOD_D, [t[:, None] for t in GOOD_T], {"target_rate": 2.0}, "sample 0: timestamps must be 1-D [T]; got 2 dimensions"),
        ("channels differ", [GOOD_D[0], np.ones((3, 5), np.float32)], GOOD_T, {"target_rate": 2.0}, "sample 1: data has C=5 channels but sample 0 has C=2"),
        ("bad method", GOOD_D, GOOD_T, {"target_rate": 2.0, "method": "cubic"}, "invalid argument `method`: got \"cubic\""),
        ("outside, error", GOOD_D, GOOD_T, {"target_rate": 2.0, "start": -1.0, "extrapolate": "error"}, "sample 0: targets [-1 s, 3 s] fall outside the recorded span [0 s, 3 s]"),
        ("end before start", GOOD_D, GOOD_T, {"num_samples": 3, "start": 2.0, "end": 1.0}, "sample 0: window end 1 s is before its start 2 s"),
    ],
)
def test_bad_input_errors(case, data, ts, kw, expected):
    kw = dict(kw)
    if case not in ("rate<=0", "huge grid", "two forms", "no form") and not any(k in kw for k in ("target_rate", "num_samples")):
        kw["target_rate"] = 2.0
    if case == "no form":
        kw = {}
    assert expected in _err(data, ts, **kw)


def test_target_timestamps_errors():
    tg = [np.array([0.5, np.inf]), np.array([1.0])]
    assert "sample 0: target_timestamps[1] is inf" in _err(GOOD_D, GOOD_T, tg)
    tg = [np.array([1, 2], np.int64), np.array([1], np.int64)]
    assert "target_timestamps are int64 but timestamps are float64" in _err(GOOD_D, GOOD_T, tg)
    tg = [np.array([[0.5]]), np.array([[1.0]])]
    assert "target_timestamps must be 1-D [N]; got 2 dimensions" in _err(GOOD_D, GOOD_T, tg)
    assert "exactly one of" in _err(GOOD_D, GOOD_T, [np.array([0.5]), np.array([1.0])], target_rate=3.0)


def test_gpu_pipeline_without_gpu_says_so():
    if types is None or _has_gpu():
        pytest.skip("a GPU is present; the GPU backend is covered by benchmarks/gpu_resample.py")

    @pipeline_def(batch_size=1, num_threads=1, device_id=0)
    def pipe():
        d, t = fn.external_source(source=lambda: (GOOD_D[:1], GOOD_T[:1]), num_outputs=2, batch=True)
        return tuple(fn.robocache.resample(d.gpu(), t, target_rate=2.0))

    with pytest.raises(RuntimeError, match="CUDA"):
        p = pipe()
        p.build()
        p.run()


def _has_gpu() -> bool:
    try:
        from nvidia.dali.backend import GetCUDADeviceCount

        return GetCUDADeviceCount() > 0
    except Exception:  # noqa: BLE001 - no driver at all
        return False


def test_plugin_loaded_once():
    assert robocache.load_plugin() == robocache.load_plugin()
    assert hasattr(fn.robocache, "resample")


def test_empty_target_list_gives_empty_output():
    tg = [np.zeros(0), np.array([0.5, 1.5])]
    out, out_ts = run(GOOD_D, GOOD_T, tg)
    assert out[0].shape == (0, 2) and out_ts[0].shape == (0,)
    np.testing.assert_allclose(out[1], np.ones((2, 2)))
    np.testing.assert_array_equal(out_ts[1], [0.5, 1.5])
