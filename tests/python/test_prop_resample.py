"""Property-based tests (hypothesis) of fn.robocache.resample through real DALI pipelines, on the CPU
backend (and the GPU backend where a GPU is present): random ragged batches with T=1, C=1, very
wide C, every dtype, float64 seconds and int64 nanoseconds near 2^62, all-NaN and extreme data
(1e30, subnormals), unsorted and duplicate explicit targets. Each case matches an independent numpy
reference of the documented semantics, or raises the documented error; hostile timestamps
(duplicates, unsorted, NaN, inf, length mismatch, T=0) and arguments give the documented message."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from prop_common import BACKENDS, series_batches, as_f64, assert_error, hostile_sample, reference_resample_rules, round_to, run_error, run_op


def check(out, out_ts, data64, ts, method, extrapolate, dtype):
    ref = round_to(reference_resample_rules(data64, ts, out_ts, method, extrapolate, dtype), dtype)
    got = as_f64(out, dtype).reshape(ref.shape)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    scale = float(np.nanmax(np.abs(data64))) if np.isfinite(data64).any() else 1.0
    tol = {"float64": 1e-12, "float32": 1e-6, "float16": 1e-3, "bfloat16": 8e-3}[dtype]
    np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(ref), rtol=tol, atol=tol * max(scale, 1e-300))


def batches():
    """A valid ragged batch (prop_common.series_batches), C in 1, 2, 5 or 700."""
    return series_batches((1, 1, 2, 5, 700))


@pytest.mark.parametrize("backend", BACKENDS)
@given(batch=batches(), method=st.sampled_from(["linear", "nearest", "previous"]), extrapolate=st.sampled_from(["clamp", "nan", "error"]), form=st.sampled_from(["rate", "count", "targets"]), k=st.floats(0.5, 60))
def test_matches_reference_or_documented_error(backend, batch, method, extrapolate, form, k):
    data, data64, tss, dtype, rng = batch
    ns = tss[0].dtype == np.int64
    unit = 1e9 if ns else 1.0
    kw = dict(method=method, extrapolate=extrapolate, dtype="bfloat16" if dtype == "bfloat16" else "")
    inputs = [data, tss]
    spans = [float(t[-1] - t[0]) / unit for t in tss]
    if form == "rate":
        kw["target_rate"] = float(np.float32(k / max(max(spans), 1e-3)))
    elif form == "count":
        kw["num_samples"] = max(1, int(k))
    else:  # unsorted, duplicated, partly outside the span; the empty list too
        tgs = []
        for t in tss:
            lo, hi = float(t[0]), float(t[-1])
            w = max(hi - lo, 1.0)
            x = np.concatenate([rng.uniform(lo - 0.3 * w, hi + 0.3 * w, int(k) % 25), t[rng.integers(0, len(t), 3)].astype(np.float64)])
            x = np.concatenate([x, x[:2]])
            tgs.append((np.clip(np.round(x), -(2**63) + 2**11, 2**63 - 2**11).astype(np.int64) if ns else x) if int(k) % 7 else t[:0].copy())
        inputs.append(tgs)
    outside = [i for i, t in enumerate(tss) if form == "targets" and len(inputs[2][i]) and (inputs[2][i].min() < t[0] or inputs[2][i].max() > t[-1])]
    if extrapolate == "error" and outside:
        msg = run_error("resample", backend, inputs, **kw)
        assert_error(msg, f"robocache.resample: sample {outside[0]}: targets [", 'fall outside the recorded span', 'extrapolate="error"')
        return
    (out, out_ts), = run_op("resample", backend, inputs, **kw)
    for i, t in enumerate(tss):
        assert out_ts[i].dtype == t.dtype
        if form == "targets":
            np.testing.assert_array_equal(out_ts[i], inputs[2][i])
        elif form == "count":
            assert len(out_ts[i]) == kw["num_samples"]
            assert out_ts[i][-1] == t[-1]  # num_samples=1: the one point is the last timestamp
            assert out_ts[i][0] == (t[0] if kw["num_samples"] > 1 else t[-1])
        else:
            assert len(out_ts[i]) == int(np.floor(spans[i] * kw["target_rate"] + 1e-6)) + 1
            assert out_ts[i][0] == t[0] and out_ts[i][-1] <= t[-1]
        if len(out_ts[i]) > 1:
            assert (np.diff(out_ts[i]) >= 0).all() or form == "targets"
        check(out[i], out_ts[i], data64[i], t, method, extrapolate, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@given(batch=batches(), kind=st.sampled_from(["dup", "unsorted", "nan", "inf", "mismatch", "empty"]), which=st.integers(0, 2))
def test_hostile_timestamps_give_the_documented_error(backend, batch, kind, which):
    data, _, tss, dtype, rng = batch
    ns = tss[0].dtype == np.int64
    i = which % len(data)
    if kind in ("dup", "unsorted") and len(tss[i]) < 2:
        kind = "mismatch"
    if kind in ("nan", "inf") and ns:
        kind = "dup" if len(tss[i]) >= 2 else "empty"
    tss = list(tss)
    data = list(data)
    want = hostile_sample(rng, data, tss, i, kind)
    kw = dict(num_samples=4, dtype="bfloat16" if dtype == "bfloat16" else "")
    msg = run_error("resample", backend, [data, tss], **kw)
    assert_error(msg, f"robocache.resample: sample {i}: {want}")


@pytest.mark.parametrize("backend", BACKENDS)
@given(arg=st.sampled_from([("target_rate", 0.0), ("target_rate", -5.0), ("target_rate", float("nan")), ("target_rate", float("inf")), ("num_samples", 0), ("num_samples", -3), ("method", "cubic"), ("extrapolate", "wrap"), ("dtype", "int8")]))
def test_bad_arguments_give_the_documented_error(backend, arg):
    name, value = arg
    kw = {"num_samples": 3} if name not in ("target_rate", "num_samples") else {}
    kw[name] = value
    data = [np.zeros((3, 2), np.float32)]
    ts = [np.array([0.0, 1.0, 2.0])]
    msg = run_error("resample", backend, [data, ts], **kw)
    assert_error(msg, f"robocache.resample: invalid argument `{name}`: got")


@pytest.mark.parametrize("backend", BACKENDS)
@given(rate=st.sampled_from([1e30, 3e38]), ns=st.booleans())
def test_grid_too_large_is_an_error_not_an_allocation(backend, rate, ns):
    ts = [np.array([0, 10**9], np.int64) if ns else np.array([0.0, 1.0])]
    msg = run_error("resample", backend, [[np.zeros((2, 3), np.float32)], ts], target_rate=rate)
    assert_error(msg, "robocache.resample: sample 0: target grid has", "more than 2^31 - 1")


CHILD = r"""
import resource, sys
import numpy as np
resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
from prop_common import run_op
try:
    run_op("resample", "cpu", [[np.zeros((2, 64), np.float32)], [np.array([0.0, 1.0])]], target_rate=2.0e9)
    print("no error")
except RuntimeError as e:
    print("ERROR", str(e))
"""


def test_output_too_large_for_memory_is_an_error_not_a_crash():
    """A grid under the 2^31 - 1 point limit whose output (here 2e9 x 64 floats, 512 GB) does not fit
    in memory: DALI's allocation fails with std::bad_alloc, reported as an error of the operator."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ERROR" in r.stdout and "robocache.resample" in r.stdout and "bad_alloc" in r.stdout, r.stdout[-2000:]
