"""fn.robocache.temporal_jitter inside real DALI pipelines (CPU backend; the GPU backend is checked
against it by benchmarks/gpu_augment.py), against an independent numpy reference that draws the same
Philox numbers (robocache.testing_augment), plus distribution checks, determinism and every documented
error."""

from __future__ import annotations

import numpy as np
import pytest

import robocache  # noqa: F401  (loads the plugin)
from nvidia.dali import fn, pipeline_def
from robocache.testing import random_ragged, read_euroc_imu
from robocache.testing_augment import jitter_draw, reference_temporal_jitter, warp_map

SEED = 1234


def _const(v):
    return lambda: v


def run(data, ts, iterations=1, arg_inputs=None, seed=SEED, **kw):
    """Runs `iterations` batches (the same inputs each time) on the CPU backend; returns a list of
    (outputs, warped times) per iteration, as numpy lists."""
    arg_inputs = arg_inputs or {}

    @pipeline_def(batch_size=len(data), num_threads=2, device_id=None, prefetch_queue_depth=1)
    def pipe():
        d, t = fn.external_source(source=lambda: (data, ts), num_outputs=2, batch=True, cycle=None)
        extra = {k: fn.external_source(source=_const(v), batch=True) for k, v in arg_inputs.items()}
        return tuple(fn.robocache.temporal_jitter(d, t, seed=seed, **kw, **extra))

    p = pipe()
    p.build()
    res = []
    for _ in range(iterations):
        o, ot = p.run()
        res.append(([np.array(o[i]) for i in range(len(data))], [np.array(ot[i]) for i in range(len(data))]))
    return res


@pytest.mark.parametrize("ns", [False, True], ids=["f64s", "i64ns"])
@pytest.mark.parametrize("grid", ["original", "rate", "count", "rate+count"])
def test_matches_numpy_reference_with_warp(rng, ns, grid):
    data, ts = random_ragged(rng, 9, 5, (2, 150), ns=ns)
    kw = dict(speed=[0.7, 1.4], offset=[0.0, 0.05], warp_strength=0.6, warp_knots=3)
    if grid == "rate":
        kw["target_rate"] = 37.0
    elif grid == "count":
        kw["num_samples"] = 24
    elif grid == "rate+count":
        kw.update(num_samples=24, target_rate=61.0)
    for it, (out, out_ts) in enumerate(run(data, ts, iterations=2, **kw)):
        for i in range(len(data)):
            ref, ref_t = reference_temporal_jitter(data[i], ts[i], SEED, it, i, **kw)
            assert out_ts[i].dtype == ts[i].dtype and out_ts[i].shape == ref_t.shape
            if ns:
                np.testing.assert_allclose(out_ts[i], ref_t, rtol=0, atol=1)
            else:
                np.testing.assert_allclose(out_ts[i], ref_t, rtol=0, atol=1e-9)
            # interpolation at the operator's own warped times: float32 rounding only
            ref = reference_temporal_jitter(data[i], ts[i], SEED, it, i, **kw)[0] if not ns else ref
            scale = max(1.0, float(np.abs(data[i]).max()))
            np.testing.assert_allclose(out[i], ref, rtol=2e-6, atol=2e-5 * scale)


def test_speed_offset_and_warp_properties(rng):
    b = 64
    ts = [np.linspace(0.0, 2.0, 201) for _ in range(b)]
    data = [np.stack([t, -t], 1).astype(np.float32) for t in ts]  # data = time: reads back the source time
    (out, out_ts), = run(data, ts, speed=[0.5, 2.0], offset=[0.0, 0.5], warp_strength=0.7, warp_knots=5, target_rate=100.0)
    speeds, offsets = [], []
    for i in range(b):
        v, o, knots = jitter_draw(SEED, 0, i, (0.5, 2.0), (0.0, 0.5), 0.7, 5)
        speeds.append(v)
        offsets.append(o)
        t = out_ts[i]
        assert np.all(np.diff(t) >= 0), "warped times must be monotonic"
        assert t[0] == pytest.approx(o, abs=1e-12)
        assert 2.0 - 0.01 * v * 1.7 / 0.3 <= t[-1] <= 2.0  # the rate grid stops within one step of the end
        # output duration (N - 1) / rate ~ (2 - o) / v
        assert (len(t) - 1) / 100.0 == pytest.approx((2.0 - o) / v, abs=0.0100001)
        np.testing.assert_allclose(out[i][:, 0], t, atol=2e-6)  # linear data: value == source time
        # the warp's local speed (source seconds per output second) stays within v * [0.3 / 1.7, 1.7 / 0.3]
        d = np.diff(t)[:-1] / 0.01
        assert d.min() >= v * 0.3 / 1.7 - 1e-9 and d.max() <= v * 1.7 / 0.3 + 1e-9
    speeds = np.array(speeds)
    assert speeds.min() >= 0.5 and speeds.max() <= 2.0
    assert abs(speeds.mean() - 1.25) < 4 * 1.5 / np.sqrt(12 * b)
    assert 0.0 <= min(offsets) and max(offsets) <= 0.5


def test_uniform_speed_distribution_over_many_samples():
    n = 4000
    v = np.array([jitter_draw(SEED, 0, i, (0.8, 1.2))[0] for i in range(n)])
    assert v.min() >= 0.8 and v.max() <= 1.2
    assert abs(v.mean() - 1.0) < 4 * 0.4 / np.sqrt(12 * n)
    assert abs(v.var() - 0.4**2 / 12) < 0.15 * 0.4**2 / 12
    # and the operator uses exactly these draws: a fixed window of 3 steps at 10 Hz reads at v * k / 10
    ts = [np.linspace(0, 1, 11)] * 16
    data = [np.zeros((11, 1), np.float32)] * 16
    (out, out_ts), = run(data, ts, num_samples=3)
    for i in range(16):
        vi = jitter_draw(SEED, 0, i, (0.8, 1.2))[0]
        np.testing.assert_allclose(out_ts[i], vi * np.arange(3) / 10.0, atol=1e-12)
    (out, out_ts), = run(data, ts, target_rate=10.0)
    for i in range(16):
        vi = jitter_draw(SEED, 0, i, (0.8, 1.2))[0]
        assert len(out_ts[i]) == int(np.floor(1.0 / vi * np.float32(10.0) + 1e-6)) + 1
        assert 1.0 - 0.1 * vi <= out_ts[i][-1] <= 1.0


def test_fixed_window_runs_past_the_end_holds_the_last_value():
    ts = [np.linspace(0, 1, 11)]
    data = [np.arange(11, dtype=np.float32)[:, None]]
    (out, out_ts), = run(data, ts, num_samples=30, speed=[1.0, 1.0], target_rate=10.0)
    np.testing.assert_allclose(out_ts[0][:11], ts[0], atol=1e-12)
    assert np.all(out_ts[0][10:] == 1.0) and np.all(out[0][10:, 0] == 10.0)


def test_warp_is_monotonic_and_fixes_the_ends():
    for s in range(50):
        _, _, knots = jitter_draw(7, s, 0, warp_strength=0.95, warp_knots=6)
        x = np.linspace(0, 1, 2001)
        y = warp_map(knots, x)
        assert y[0] == 0 and abs(y[-1] - 1) < 1e-12 and np.all(np.diff(y) > 0)


def test_determinism_iterations_and_seeds(rng):
    data, ts = random_ragged(rng, 6, 3, (20, 60))
    kw = dict(warp_strength=0.5, offset=[0.0, 0.1], num_samples=17)
    a = run(data, ts, iterations=3, **kw)
    b = run(data, ts, iterations=3, **kw)
    for (oa, ta), (ob, tb) in zip(a, b):
        for i in range(6):
            np.testing.assert_array_equal(oa[i], ob[i])
            np.testing.assert_array_equal(ta[i], tb[i])
    assert any(not np.array_equal(a[0][1][i], a[1][1][i]) for i in range(6)), "iterations must differ"
    c = run(data, ts, seed=SEED + 1, **kw)
    assert any(not np.array_equal(a[0][1][i], c[0][1][i]) for i in range(6)), "seeds must differ"


def test_per_sample_argument_inputs(rng):
    data, ts = random_ragged(rng, 4, 2, (30, 40))
    speeds = [np.array([s, s], np.float32) for s in (0.5, 1.0, 2.0, 1.0)]
    strength = [np.float32(x) for x in (0.0, 0.3, 0.0, 0.9)]
    (out, out_ts), = run(data, ts, arg_inputs={"speed": speeds, "warp_strength": strength}, target_rate=20.0)
    for i in range(4):
        ref, ref_t = reference_temporal_jitter(data[i], ts[i], SEED, 0, i, speed=tuple(speeds[i]), warp_strength=float(strength[i]), target_rate=20.0)
        np.testing.assert_allclose(out_ts[i], ref_t, atol=1e-9)


def test_identity_when_speed_one_and_no_warp(rng):
    data, ts = random_ragged(rng, 5, 4, (2, 80), jitter=0.0)
    (out, out_ts), = run(data, ts, speed=[1.0, 1.0])
    for i in range(5):
        assert len(out_ts[i]) == len(ts[i])
        np.testing.assert_allclose(out_ts[i], ts[i], atol=1e-9)
        np.testing.assert_allclose(out[i], data[i], rtol=1e-5, atol=1e-4)


def test_real_euroc_imu_int64_ns(data_dir):
    ts, imu = read_euroc_imu(data_dir / "trajectories" / "euroc_v101_micro" / "mav0")
    ts, imu = ts[:4000], imu[:4000]
    kw = dict(speed=[0.9, 1.1], warp_strength=0.3, target_rate=100.0)
    (out, out_ts), = run([imu], [ts], **kw)
    ref, ref_t = reference_temporal_jitter(imu, ts, SEED, 0, 0, **kw)
    np.testing.assert_allclose(out_ts[0], ref_t, rtol=0, atol=1)
    np.testing.assert_allclose(out[0], ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "kw, text",
    [
        (dict(speed=[1.2, 0.8]), "sample 0: speed range [1.2000000476837158, 0.800000011920929] is empty or not positive"),
        (dict(speed=[0.0, 1.0]), "speed range [0, 1] is empty or not positive"),
        (dict(offset=[0.2, 0.1]), "offset range"),
        (dict(warp_strength=1.0), "warp_strength is 1; expected it in [0, 1)"),
        (dict(num_samples=0), "`num_samples`: got 0"),
        (dict(target_rate=-1.0), "`target_rate`: got -1"),
        (dict(warp_knots=100), "`warp_knots`"),
        (dict(method="cubic"), "method"),
    ],
)
def test_errors(kw, text):
    ts = [np.linspace(0, 1, 5)]
    data = [np.zeros((5, 2), np.float32)]
    with pytest.raises(RuntimeError, match="robocache.temporal_jitter") as e:
        run(data, ts, **kw)
    assert text in str(e.value), str(e.value)


def test_bad_samples():
    with pytest.raises(RuntimeError, match=r"robocache.temporal_jitter: sample 1: timestamps not strictly increasing"):
        run([np.zeros((3, 1), np.float32)] * 2, [np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 1.0])])
    with pytest.raises(RuntimeError, match=r"sample 0: length mismatch"):
        run([np.zeros((4, 1), np.float32)], [np.array([0.0, 1.0, 2.0])])
    with pytest.raises(RuntimeError, match=r"unsupported dtype for timestamps"):
        run([np.zeros((3, 1), np.float32)], [np.array([0.0, 1.0, 2.0], np.float32)])


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16", "float64"])
def test_other_dtypes_and_one_dimensional_data(rng, dtype_name):
    from robocache.dtypes import bf16_bits_to_float, float_to_bf16_bits

    data, ts = random_ragged(rng, 4, 1, (5, 60))
    flat = [d[:, 0] for d in data]
    src = [float_to_bf16_bits(d) for d in flat] if dtype_name == "bfloat16" else [d.astype(dtype_name) for d in flat]
    kw = dict(warp_strength=0.4, target_rate=25.0)
    (out, out_ts), = run(src, ts, dtype="bfloat16" if dtype_name == "bfloat16" else "", **kw)
    for i in range(4):
        assert out[i].dtype == src[i].dtype and out[i].ndim == 1
        base = bf16_bits_to_float(src[i]) if dtype_name == "bfloat16" else src[i].astype(np.float64)
        ref, ref_t = reference_temporal_jitter(base, ts[i], SEED, 0, i, **kw)
        np.testing.assert_allclose(out_ts[i], ref_t, atol=1e-9)
        got = bf16_bits_to_float(out[i]) if dtype_name == "bfloat16" else out[i].astype(np.float64)
        tol = {"float16": 2e-3, "bfloat16": 1.6e-2, "float64": 1e-12}[dtype_name]
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * max(1.0, float(np.abs(base).max())))
