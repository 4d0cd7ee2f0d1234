"""Property-based tests (hypothesis) of fn.robocache.align through real DALI pipelines, on the CPU
backend (and the GPU backend where a GPU is present): 1-4 streams per call with T=1, C=1, very wide
C and quaternion groups, every dtype, float64 seconds and int64 nanoseconds near 2^62, all-NaN
streams, extreme values (1e30, subnormals), reference clocks given as a rate, a count or an
explicit (unsorted, duplicated) timestamps input. Each case matches the independent numpy/scipy
reference ``robocache.testing.reference_align`` or raises the documented error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from prop_common import BACKENDS, DTYPES, as_f64, assert_error, break_timestamps, cast, expected_ts_error, fill_values, run_error, run_op, timestamps
from robocache.testing import random_quaternions, reference_align

TOL = {"float32": 2e-6, "float16": 2e-3, "float64": 1e-12, "bfloat16": 1.6e-2}


@st.composite
def align_batches(draw):
    """``(streams [(data list, data64 list, ts list)], quaternions, dtype)``: per sample every stream
    starts near one origin (shifted by up to a few of its steps, so spans may not overlap)."""
    dtype = draw(st.sampled_from(DTYPES))
    ns = draw(st.booleans())
    n = draw(st.integers(1, 4))
    b = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    chans = [draw(st.sampled_from([1, 1, 4, 6, 300])) for _ in range(n)]
    quats = []
    for s, c in enumerate(chans):
        if c in (4, 6) and draw(st.booleans()):
            quats += [s, c - 4]
    streams = [([], [], []) for _ in range(n)]
    base = draw(st.sampled_from(["zero", "big", "neg"]))
    for _ in range(b):
        origin = None
        for s, c in enumerate(chans):
            t = draw(st.one_of(st.just(1), st.integers(1, 6 if c > 100 else 30)))
            ts = draw(timestamps(t, ns, base=base))
            if origin is None:
                origin = ts[0]
            step = (ts[-1] - ts[0]) // max(t - 1, 1) if ns else (ts[-1] - ts[0]) / max(t - 1, 1)
            shift = int(rng.integers(-2, 3)) * step
            ts = ts - ts[0] + origin + shift
            kind = draw(st.sampled_from(["normal", "extreme", "all_nan", "some_nan", "const"]))
            d = fill_values(rng, (t, c), kind, dtype)
            if s in quats[::2]:
                q = random_quaternions(rng, t)
                if kind in ("all_nan", "some_nan"):
                    q[rng.random(t) < (1.0 if kind == "all_nan" else 0.3)] = np.nan
                d[:, c - 4:] = q
            with np.errstate(all="ignore"):
                d64 = as_f64(cast(d, dtype), dtype)
            streams[s][0].append(cast(d64, dtype))
            streams[s][1].append(d64)
            streams[s][2].append(ts)
    return streams, quats, dtype, rng


def overlap_error(streams, i):
    """The documented message fragment when the sample's streams share no span (intersection)."""
    firsts = [s[2][i][0] for s in streams]
    lasts = [s[2][i][-1] for s in streams]
    if max(firsts) > min(lasts):
        return "the streams do not overlap"
    return None


@pytest.mark.parametrize("backend", BACKENDS)
@given(batch=align_batches(), clock=st.sampled_from(["rate", "count", "reference"]), span=st.sampled_from(["intersection", "union"]), fill=st.sampled_from(["hold", "nan", "zero"]), k=st.integers(1, 40), data=st.data())
def test_matches_reference_or_documented_error(backend, batch, clock, span, fill, k, data):
    streams, quats, dtype, rng = batch
    n = len(streams)
    ns = streams[0][2][0].dtype == np.int64
    unit = 1e9 if ns else 1.0
    methods = [data.draw(st.sampled_from(["linear", "nearest", "previous"])) for _ in range(n)]
    max_gap = [data.draw(st.sampled_from([float("inf"), 0.0, 0.01, 1.0])) for _ in range(n)]
    kw = dict(methods=methods, max_gap=max_gap, quaternions=quats, fill=fill, span=span, dtype="bfloat16" if dtype == "bfloat16" else "")
    inputs, gpu_inputs = [], []
    for d, _, ts in streams:
        gpu_inputs.append(len(inputs))
        inputs += [d, ts]
    b = len(streams[0][0])
    if clock == "reference":  # unsorted, with duplicates, partly outside every stream
        refs = []
        for i in range(b):
            lo = min(s[2][i][0] for s in streams)
            hi = max(s[2][i][-1] for s in streams)
            w = max(float(hi - lo), 1.0)
            x = np.concatenate([rng.uniform(float(lo) - 0.2 * w, float(hi) + 0.2 * w, k), streams[0][2][i][:2].astype(np.float64)])
            x = np.concatenate([x, x[:1]])
            refs.append(np.round(x).astype(np.int64) if ns else x)
        inputs.append(refs)
    elif clock == "rate":
        spans = [max(float(s[2][i][-1] - s[2][i][0]) / unit for s in streams) for i in range(b)]
        kw["target_rate"] = float(np.float32(k / max(max(spans), 1e-3)))
    else:
        kw["num_samples"] = k
    if clock != "reference" and span == "intersection":
        bad = [i for i in range(b) if overlap_error(streams, i)]
        if bad:
            msg = run_error("align", backend, inputs, gpu_inputs=gpu_inputs, **kw)
            assert_error(msg, f"robocache.align: sample {bad[0]}: the streams do not overlap")
            event("no overlap: error")
            return
    event(f"aligned ({clock})")
    (fused, valid, t), = run_op("align", backend, inputs, gpu_inputs=gpu_inputs, **kw)
    for i in range(b):
        if clock == "reference":
            np.testing.assert_array_equal(t[i], inputs[-1][i])
        elif clock == "count":
            assert len(t[i]) == k
        ref, rvalid = reference_align([(s[1][i], s[2][i]) for s in streams], t[i], methods=methods, max_gap=max_gap, quaternions=quats, fill=fill)
        np.testing.assert_array_equal(valid[i].astype(bool), rvalid, err_msg=f"sample {i}")
        got = as_f64(fused[i], dtype)
        assert got.shape == ref.shape
        ref = as_f64(cast(ref, dtype), dtype)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"sample {i}")
        finite = np.concatenate([np.abs(s[1][i][np.isfinite(s[1][i])]) for s in streams] + [np.ones(1)])
        np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(ref), rtol=TOL[dtype], atol=TOL[dtype] * float(finite.max()), err_msg=f"sample {i}")


@pytest.mark.parametrize("backend", BACKENDS)
@given(batch=align_batches(), kind=st.sampled_from(["dup", "unsorted", "nan", "inf", "mismatch", "empty", "ref_nan"]), which=st.integers(0, 7))
def test_hostile_timestamps_give_the_documented_error(backend, batch, kind, which):
    streams, quats, dtype, rng = batch
    n, b = len(streams), len(streams[0][0])
    i, q = which % b, which % n
    ns = streams[0][2][0].dtype == np.int64
    ts = streams[q][2][i]
    if kind in ("dup", "unsorted") and len(ts) < 2:
        kind = "mismatch"
    if kind in ("nan", "inf", "ref_nan") and ns:
        kind = "empty"
    data = [list(s[0]) for s in streams]
    tss = [list(s[2]) for s in streams]
    inputs_ref = None
    if kind == "mismatch":
        tss[q][i] = np.concatenate([ts, ts[-1:] + 1])
        want = f"stream {q}: length mismatch: data has {len(ts)} rows (T) but timestamps has {len(ts) + 1} entries"
    elif kind == "empty":
        data[q][i], tss[q][i] = data[q][i][:0], ts[:0]
        want = f"stream {q}: empty: data has 0 rows and timestamps 0 entries"
    elif kind == "ref_nan":
        inputs_ref = [s[:1].astype(np.float64) for s in streams[0][2]]
        inputs_ref[i] = np.array([0.0, np.nan])
        want = "reference_timestamps[1] is NaN"
    else:
        tss[q][i], _ = break_timestamps(rng, ts, kind)
        want = f"stream {q}: " + expected_ts_error(tss[q][i])
    inputs, gpu_inputs = [], []
    for d, t in zip(data, tss):
        gpu_inputs.append(len(inputs))
        inputs += [d, t]
    kw = dict(quaternions=quats, dtype="bfloat16" if dtype == "bfloat16" else "", span="union")
    if inputs_ref is not None:
        inputs.append(inputs_ref)
    else:
        kw["num_samples"] = 3
    msg = run_error("align", backend, inputs, gpu_inputs=gpu_inputs, **kw)
    assert_error(msg, f"robocache.align: sample {i}: {want}")


@pytest.mark.parametrize("backend", BACKENDS)
@given(arg=st.sampled_from([
    ("target_rate", -1.0, "invalid argument `target_rate`"),
    ("target_rate", float("nan"), "invalid argument `target_rate`"),
    ("num_samples", 0, "invalid argument `num_samples`"),
    ("methods", ["linear", "linear"], "invalid argument `methods`"),
    ("methods", ["spline"], "invalid argument `methods`"),
    ("max_gap", [-1.0], "invalid argument `max_gap`"),
    ("max_gap", [float("nan")], "invalid argument `max_gap`"),
    ("quaternions", [0], "invalid argument `quaternions`"),
    ("quaternions", [0, 1], "invalid argument `quaternions`"),
    ("quaternions", [1, 0], "invalid argument `quaternions`"),
    ("quaternions", [0, -1], "invalid argument `quaternions`"),
    ("fill", "mean", "invalid argument `fill`"),
    ("span", "all", "invalid argument `span`"),
    ("quaternion_order", "zyxw", "invalid argument `quaternion_order`"),
]))
def test_bad_arguments_give_the_documented_error(backend, arg):
    name, value, want = arg
    kw = {} if name in ("target_rate", "num_samples") else {"num_samples": 3}
    kw[name] = value
    data = [np.zeros((3, 4), np.float32)]
    ts = [np.array([0.0, 1.0, 2.0])]
    msg = run_error("align", backend, [data, ts], **kw)
    assert_error(msg, f"robocache.align: {want}")
