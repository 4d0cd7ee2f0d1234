"""Property-based tests (hypothesis) of the augmentation operators fn.robocache.temporal_jitter,
action_noise and points_augment through real DALI pipelines, on the CPU backend (and the GPU backend
where a GPU is present): random shapes with T=1, C=1, very wide C, single-point clouds, every dtype,
int64 nanoseconds near 2^62, all-NaN and extreme values (1e30, subnormals), random ranges. Each case
matches the independent numpy references of ``robocache.testing_augment`` (which draw the same
Philox numbers) or raises the documented error naming the operator and the sample."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from prop_common import BACKENDS, series_batches, as_f64, assert_error, hostile_sample, fill_values, reference_resample_rules, round_to, run_error, run_op
from robocache.testing_augment import reference_action_noise, reference_points_augment, reference_temporal_jitter

TOL = {"float32": 2e-6, "float16": 2e-3, "float64": 1e-6, "bfloat16": 1.6e-2}
SEED = 4242
f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


def close(got, ref, dtype, scale):
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(ref), rtol=TOL[dtype], atol=TOL[dtype] * max(scale, 1.0))


def scale_of(x):
    a = np.abs(x[np.isfinite(x)])
    return float(a.max()) if a.size else 1.0


def series():
    """A valid ragged batch (prop_common.series_batches), C in 1, 3 or 700."""
    return series_batches((1, 1, 3, 700))


# ---------------------------------------------------------------- temporal_jitter

@pytest.mark.parametrize("backend", BACKENDS)
@given(batch=series(), speed=st.tuples(st.floats(0.3, 1.0), st.floats(1.0, 3.0)), offset=st.floats(0.0, 2.0), warp=st.floats(0.0, 0.9), knots=st.integers(0, 8), form=st.sampled_from(["own", "rate", "count"]), k=st.integers(1, 30), method=st.sampled_from(["linear", "nearest", "previous"]))
def test_temporal_jitter_matches_reference(backend, batch, speed, offset, warp, knots, form, k, method):
    data, data64, tss, dtype, _ = batch
    kw = dict(speed=[float(np.float32(s)) for s in speed], offset=[0.0, float(np.float32(offset))], warp_strength=float(np.float32(warp)), warp_knots=knots, method=method, dtype="bfloat16" if dtype == "bfloat16" else "")
    if form == "rate":
        kw["target_rate"] = float(k)
    elif form == "count":
        kw["num_samples"] = k
    (out, out_ts), = run_op("temporal_jitter", backend, [data, tss], seed=SEED, **kw)
    rk = dict(speed=tuple(kw["speed"]), offset=tuple(kw["offset"]), warp_strength=kw["warp_strength"], warp_knots=knots, target_rate=kw.get("target_rate"), num_samples=kw.get("num_samples"), method=method)
    for i, (d64, ts) in enumerate(zip(data64, tss)):
        _, rt = reference_temporal_jitter(np.zeros((len(ts), 1)), ts, SEED, 0, i, **rk)
        assert out_ts[i].dtype == ts.dtype and len(out_ts[i]) == len(rt)
        if ts.dtype == np.int64:
            np.testing.assert_allclose(out_ts[i], rt, rtol=0, atol=2)  # whole nanoseconds
        else:
            np.testing.assert_allclose(out_ts[i], rt, rtol=0, atol=1e-9 * max(1.0, abs(float(ts[0]))))
        assert (out_ts[i] >= ts[0]).all() and (out_ts[i] <= ts[-1]).all()
        ref = round_to(reference_resample_rules(d64, ts, out_ts[i], method, "clamp", dtype), dtype)
        close(as_f64(out[i], dtype).reshape(ref.shape), ref, dtype, scale_of(d64))


@pytest.mark.parametrize("backend", BACKENDS)
@given(batch=series(), kind=st.sampled_from(["dup", "unsorted", "nan", "mismatch", "empty"]), which=st.integers(0, 2))
def test_temporal_jitter_hostile_timestamps(backend, batch, kind, which):
    data, _, tss, dtype, rng = batch
    i = which % len(data)
    data, tss = list(data), list(tss)
    if kind in ("dup", "unsorted") and len(tss[i]) < 2 or kind == "nan" and tss[i].dtype == np.int64:
        kind = "mismatch"
    want = hostile_sample(rng, data, tss, i, kind)
    msg = run_error("temporal_jitter", backend, [data, tss], seed=SEED, dtype="bfloat16" if dtype == "bfloat16" else "")
    assert_error(msg, f"robocache.temporal_jitter: sample {i}: {want}")


@pytest.mark.parametrize("backend", BACKENDS)
@given(arg=st.sampled_from([
    (dict(speed=[0.0, 1.0]), "sample 0: speed range [0, 1] is empty or not positive"),
    (dict(speed=[1.2, 0.8]), "sample 0: speed range [1.2"),
    (dict(speed=[float("nan"), 1.0]), "sample 0: speed range [NaN, 1]"),
    (dict(offset=[-1.0, 0.0]), "sample 0: offset range [-1, 0] is invalid"),
    (dict(offset=[0.0, float("inf")]), "sample 0: offset range [0, inf] is invalid"),
    (dict(warp_strength=1.0), "sample 0: warp_strength is 1; expected it in [0, 1)"),
    (dict(warp_strength=float("nan")), "sample 0: warp_strength is NaN"),
    (dict(warp_knots=65), "invalid argument `warp_knots`: got 65"),
    (dict(target_rate=0.0), "invalid argument `target_rate`: got 0"),
    (dict(num_samples=0), "invalid argument `num_samples`: got 0"),
    (dict(target_rate=1e30), ("sample 0: output grid has 1720824", "points (1.72082477", "more than 2^31 - 1")),
]))
def test_temporal_jitter_bad_arguments(backend, arg):
    kw, want = arg
    msg = run_error("temporal_jitter", backend, [[np.zeros((3, 2), np.float32)], [np.array([0.0, 1.0, 2.0])]], seed=SEED, **kw)
    want = (want,) if isinstance(want, str) else want
    assert_error(msg, f"robocache.temporal_jitter: {want[0]}", *want[1:])


# ---------------------------------------------------------------- action_noise

@pytest.mark.parametrize("backend", BACKENDS)
@given(batch=series(), sigma=st.lists(st.floats(0.0, 5.0, width=32), min_size=1, max_size=1), p=st.sampled_from([0.0, 0.5, 1.0]), dist=st.sampled_from(["gaussian", "uniform"]), tau=st.sampled_from([0.0, 0.05, 1.0]), bounds=st.booleans())
def test_action_noise_matches_reference(backend, batch, sigma, p, dist, tau, bounds):
    data, data64, _, dtype, _ = batch
    kw = dict(sigma=sigma, p=p, distribution=dist, correlation_time=tau, dtype="bfloat16" if dtype == "bfloat16" else "")
    if tau > 0:
        kw["rate"] = 30.0
    if bounds:
        kw.update(low=[-1.5], high=[2.0])
    (out,), = run_op("action_noise", backend, [data], seed=SEED, **kw)
    rk = {k: v for k, v in kw.items() if k not in ("dtype", "sigma")}
    for i, d64 in enumerate(data64):
        assert out[i].dtype == data[i].dtype and out[i].shape == data[i].shape
        ref = reference_action_noise(d64.astype(np.float32), SEED, 0, i, sigma, **rk).astype(np.float64)
        ref = round_to(ref, dtype)
        close(as_f64(out[i], dtype), ref, dtype, scale_of(d64) + 5 * max(sigma))


@pytest.mark.parametrize("backend", BACKENDS)
@given(arg=st.sampled_from([
    (dict(sigma=[-0.1]), "sample 0: sigma[0] is -0.1"),
    (dict(sigma=[float("nan")]), "sample 0: sigma[0] is NaN"),
    (dict(sigma=[float("inf")]), "sample 0: sigma[0] is inf"),
    (dict(sigma=[0.1, 0.1]), "sample 0: sigma has 2 values but the actions have C=3 channels"),
    (dict(p=float("nan")), "sample 0: p is NaN"),
    (dict(p=-0.5), "sample 0: p is -0.5"),
    (dict(low=[float("nan")]), "invalid argument `low`: got NaN"),
    (dict(low=[1.0], high=[0.0]), "invalid argument `low/high`: got low[0] = 1 > high[0] = 0"),
    (dict(correlation_time=float("inf"), rate=10.0), "sample 0: correlation_time is inf"),
    (dict(correlation_time=0.5, rate=float("nan")), "invalid argument `rate`: got NaN"),
]))
def test_action_noise_bad_arguments(backend, arg):
    kw, want = arg
    msg = run_error("action_noise", backend, [[np.zeros((4, 3), np.float32)]], seed=SEED, **kw)
    want = (want,) if isinstance(want, str) else want
    assert_error(msg, f"robocache.action_noise: {want[0]}", *want[1:])


# ---------------------------------------------------------------- points_augment

@st.composite
def clouds(draw):
    """A ragged batch of float32 clouds ``[N, C]``: N=1 and N=0 included, NaN rows, extremes."""
    c = draw(st.sampled_from([3, 4, 7]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    out = []
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.sampled_from([0, 1, 1, 2, 17, 300]))
        out.append(fill_values(rng, (n, c), draw(st.sampled_from(["normal", "extreme", "all_nan", "some_nan", "const"])), np.float32).astype(np.float32))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@given(pts=clouds(), rotation=st.sampled_from(["z", "so3", "none"]), angle=st.tuples(st.floats(-4, 0), st.floats(0, 4)), scale=st.tuples(st.floats(0.1, 1.0), st.floats(1.0, 3.0)), trans=st.lists(st.floats(0, 5), min_size=3, max_size=3), jitter=st.sampled_from([0.0, 0.01, 1.0]), clip=st.sampled_from([0.0, 0.02]), dropout=st.sampled_from([0.0, 0.3, 0.99]))
def test_points_augment_matches_reference(backend, pts, rotation, angle, scale, trans, jitter, clip, dropout):
    kw = dict(rotation=rotation, angle=[float(np.float32(a)) for a in angle], scale=[float(np.float32(s)) for s in scale], translation=[float(np.float32(t)) for t in trans], jitter=jitter, jitter_clip=clip, dropout=dropout)
    (out, m, mask), = run_op("points_augment", backend, [pts], seed=SEED, **kw)
    for i, p in enumerate(pts):
        r_out, r_m, r_mask = reference_points_augment(p, SEED, 0, i, **kw)
        np.testing.assert_allclose(m[i], r_m, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(mask[i], r_mask)
        assert out[i].shape == p.shape
        s = max(1.0, scale_of(p.astype(np.float64))) * 4 * max(scale) + sum(trans)
        np.testing.assert_array_equal(np.isnan(out[i]), np.isnan(r_out))
        np.testing.assert_allclose(np.nan_to_num(out[i]), np.nan_to_num(r_out), rtol=2e-6, atol=2e-6 * s)


@pytest.mark.parametrize("backend", BACKENDS)
@given(arg=st.sampled_from([
    (dict(angle=[1.0, -1.0]), "sample 0: angle range [1, -1] is empty"),
    (dict(angle=[float("nan"), 1.0]), "sample 0: angle range [NaN, 1] is empty"),
    (dict(scale=[0.0, 1.0]), "sample 0: scale range [0, 1] is empty or not positive"),
    (dict(scale=[1.0, float("inf")]), "sample 0: scale range [1, inf]"),
    (dict(translation=[0.0, -1.0, 0.0]), "sample 0: translation -1; expected finite non-negative"),
    (dict(translation=[0.0, 0.0, float("nan")]), "sample 0: translation NaN"),
    (dict(jitter=-0.1), "sample 0: jitter is -0.1"),
    (dict(jitter_clip=float("nan")), "sample 0: jitter_clip is NaN"),
    (dict(dropout=1.0), "sample 0: dropout is 1; expected a probability in [0, 1)"),
    (dict(rotation="x"), "invalid argument `rotation`"),
]))
def test_points_augment_bad_arguments(backend, arg):
    kw, want = arg
    msg = run_error("points_augment", backend, [[np.zeros((4, 3), np.float32)]], seed=SEED, **kw)
    want = (want,) if isinstance(want, str) else want
    assert_error(msg, f"robocache.points_augment: {want[0]}", *want[1:])


@pytest.mark.parametrize("backend", BACKENDS)
@given(shape=st.sampled_from([(5,), (5, 2), (5, 0), (2, 3, 4)]), dtype=st.sampled_from([np.float32, np.float64]))
def test_points_augment_bad_shapes_and_dtypes(backend, shape, dtype):
    msg = run_error("points_augment", backend, [[np.zeros(shape, dtype)]], seed=SEED)
    if dtype == np.float64:
        assert_error(msg, "robocache.points_augment: unsupported dtype for points: got float64")
    else:
        assert_error(msg, "robocache.points_augment: sample 0: points must be [N, 3 + F]")

