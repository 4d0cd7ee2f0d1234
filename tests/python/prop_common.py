"""Shared pieces of the property-based tests (test_prop_*.py): the hypothesis settings profiles, the
backends to run on, one helper that pushes a batch through a real DALI pipeline, a watchdog that
turns a hang into a failure, and hostile-value strategies (extremes, subnormals, NaN, int64
nanoseconds near 2^62).

Profiles (``ROBOCACHE_HYPOTHESIS_PROFILE``): ``ci`` (default; modest ``max_examples``, no deadline:
DALI pipeline builds vary in time on a shared CI machine) and ``thorough`` (10x the examples, for a
local hunt). Every example builds a real pipeline, so the example counts are kept small and the
strategies aim straight at the edge cases (T=1, C=1, very wide C, single points, NaN, duplicates).
"""

from __future__ import annotations

import faulthandler
import os
import time
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import robocache  # noqa: F401  (loads the plugin: fn.robocache.*)
from nvidia.dali import fn, pipeline_def

settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("ROBOCACHE_HYPOTHESIS_EXAMPLES", "100")),
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=1000)
settings.load_profile(os.environ.get("ROBOCACHE_HYPOTHESIS_PROFILE", "ci"))

#: A DALI run that takes longer than this is a hang: the process dumps every thread's stack and exits.
HANG_SECONDS = float(os.environ.get("ROBOCACHE_HANG_SECONDS", "120"))
#: Optional wall-clock budget (s) for all property tests of the session (a capped GPU run): once it
#: is spent, further pipeline runs skip their test, which the summary counts as skipped.
BUDGET_SECONDS = float(os.environ.get("ROBOCACHE_PROP_BUDGET_S", "inf"))
_T0 = time.monotonic()


def has_gpu() -> bool:
    """True when DALI sees a CUDA device."""
    try:
        from nvidia.dali.backend import GetCUDADeviceCount

        return GetCUDADeviceCount() > 0
    except Exception:  # noqa: BLE001 - no driver at all
        return False


#: ``cpu`` everywhere; ``gpu`` where a GPU is present (skipped otherwise).
BACKENDS = ["cpu", pytest.param("gpu", marks=pytest.mark.skipif(not has_gpu(), reason="no GPU"))]


@contextmanager
def watchdog(seconds: float = HANG_SECONDS):
    """Turns a hang into a failure: after ``seconds`` the process prints all stacks and exits (a
    Python exception cannot interrupt a thread blocked inside DALI)."""
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def run_op(op, backend, inputs, gpu_inputs=(0,), arg_inputs=None, iterations=1, num_threads=2, seed=None, **kw):
    """Runs ``fn.robocache.<op>`` on one batch in a real DALI pipeline.

    Args:
        op: operator name, e.g. ``"resample"``.
        backend: ``"cpu"`` or ``"gpu"``; on ``gpu`` the regular inputs listed in ``gpu_inputs`` are
            moved to the GPU (timestamps stay CPU inputs, as documented).
        inputs: one list of numpy arrays (the batch) per regular input.
        arg_inputs: ``{name: list of arrays}`` per-sample argument inputs (CPU).
        iterations: batches to run (the same inputs each time).
        seed: DALI ``seed`` argument of the operator (augmentation operators).
        kw: the operator's constant arguments.

    Returns:
        Per iteration, a list of outputs, each a list of numpy arrays (one per sample).

    Raises:
        RuntimeError: DALI's error (the operator's message) at build or run time.
    """
    if time.monotonic() - _T0 > BUDGET_SECONDS:
        pytest.skip(f"ROBOCACHE_PROP_BUDGET_S={BUDGET_SECONDS:.0f} s spent")
    b = len(inputs[0])
    gpu = backend == "gpu"
    arg_inputs = arg_inputs or {}
    names = list(arg_inputs)
    srcs = [list(x) for x in inputs] + [list(arg_inputs[k]) for k in names]

    @pipeline_def(batch_size=b, num_threads=num_threads, device_id=0 if gpu else None, prefetch_queue_depth=1)
    def pipe():
        ins = fn.external_source(source=lambda: srcs, num_outputs=len(srcs), batch=True)
        ins = list(ins) if isinstance(ins, (list, tuple)) else [ins]
        regular = [x.gpu() if gpu and k in gpu_inputs else x for k, x in enumerate(ins[: len(inputs)])]
        extra = dict(zip(names, ins[len(inputs):]))
        if seed is not None:
            extra["seed"] = seed
        out = getattr(fn.robocache, op)(*regular, **extra, **kw)
        return tuple(out) if isinstance(out, (list, tuple)) else (out,)

    res = []
    with watchdog():
        p = pipe()
        p.build()
        for _ in range(iterations):
            outs = p.run()
            res.append([[np.array((o.as_cpu() if gpu and hasattr(o, "as_cpu") else o)[i]) for i in range(b)] for o in outs])
    del p
    return res


def run_error(op, backend, inputs, **kw) -> str:
    """Runs ``op`` expecting a DALI error; returns its message (fails when the batch goes through)."""
    with pytest.raises(RuntimeError) as e:
        run_op(op, backend, inputs, **kw)
    return str(e.value)


def assert_error(msg: str, *expected: str):
    """Every fragment in ``expected`` occurs in ``msg`` (DALI adds its own context around the
    operator's text, so the check is by fragment, the way DALI's tests use ``glob=``)."""
    for frag in expected:
        assert frag in msg, f"expected {frag!r} in the error, got:\n{msg}"


# ---------------------------------------------------------------- hostile values

def extremes(dtype) -> list[float]:
    """Extreme but finite values of ``dtype`` (as numpy dtype or ``"bfloat16"``): +-1e30 (where it
    fits, else the largest), the smallest subnormal, -0.0 and 0."""
    if dtype == "bfloat16":
        return [1e30, -1e30, 9.2e-41, -0.0, 0.0]  # 9.2e-41: a bfloat16 subnormal
    d = np.dtype(dtype)
    big = min(1e30, float(np.finfo(d).max) / 4)
    return [big, -big, float(np.finfo(d).smallest_subnormal), -0.0, 0.0]


def fill_values(rng: np.random.Generator, shape, kind: str, dtype) -> np.ndarray:
    """A float64 array of ``shape`` filled per ``kind`` (``normal``, ``extreme``, ``all_nan``,
    ``some_nan`` or ``const``), representable in ``dtype`` (extremes chosen per dtype)."""
    n = int(np.prod(shape))
    if kind == "extreme":
        x = rng.choice(extremes(dtype), size=n)
    elif kind == "all_nan":
        x = np.full(n, np.nan)
    elif kind == "const":
        x = np.full(n, float(rng.normal()))
    else:
        x = rng.standard_normal(n) * float(rng.choice([1e-3, 1.0, 100.0]))
        if kind == "some_nan" and n:
            x[rng.random(n) < 0.3] = np.nan
    return x.reshape(shape)


def cast(x: np.ndarray, dtype):
    """``x`` in ``dtype``; ``"bfloat16"`` gives uint16 bit patterns (round to nearest even)."""
    if dtype == "bfloat16":
        from robocache.dtypes import float_to_bf16_bits

        return float_to_bf16_bits(x.astype(np.float32))
    return x.astype(dtype)


def as_f64(x: np.ndarray, dtype) -> np.ndarray:
    """Back to float64 (``"bfloat16"`` bits decoded)."""
    if dtype == "bfloat16":
        from robocache.dtypes import bf16_bits_to_float

        return bf16_bits_to_float(x).astype(np.float64)
    return x.astype(np.float64)


@st.composite
def timestamps(draw, t: int, ns: bool, base: str | None = None):
    """``t`` strictly increasing timestamps: float64 seconds (near 0 or near 1e9 s) or int64
    nanoseconds (near 0, near 2^62, or negative), with jittered (sometimes 1 ns) steps."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    base = base or draw(st.sampled_from(["zero", "big", "neg"]))
    if ns:
        b = {"zero": 0, "big": 2**62 - int(rng.integers(0, 10**12)), "neg": -(2**62)}[base]
        step = int(rng.choice([1, 1000, 10**6, 2 * 10**7]))
        steps = rng.integers(1, 2 * step + 1, size=t).astype(np.int64)
        steps[0] = 0
        return b + np.cumsum(steps)
    b = {"zero": 0.0, "big": 1.0e9, "neg": -500.0}[base]
    step = float(rng.choice([1e-3, 0.02, 0.5]))
    return b + np.concatenate([[0.0], np.cumsum(step * rng.uniform(0.5, 1.5, t - 1))])


DTYPES = ["float32", "float64", "float16", "bfloat16"]


@st.composite
def series_batches(draw, channels, max_t: int = 40):
    """A valid ragged batch of 1-3 ``[T, C]`` series in a random dtype, C drawn from ``channels``
    (T at most 6 when C > 100): ``(data lists in dtype, data float64, timestamps, dtype, rng)``."""
    dtype = draw(st.sampled_from(DTYPES))
    ns = draw(st.booleans())
    c = draw(st.sampled_from(list(channels)))
    b = draw(st.integers(1, 3))
    tmax = 6 if c > 100 else max_t
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    data, data64, tss = [], [], []
    for _ in range(b):
        t = draw(st.one_of(st.just(1), st.integers(1, tmax)))
        tss.append(draw(timestamps(t, ns)))
        d64 = round_to(fill_values(rng, (t, c), draw(st.sampled_from(["normal", "extreme", "all_nan", "some_nan", "const"])), dtype), dtype)
        data64.append(d64)
        data.append(cast(d64, dtype))
    return data, data64, tss, dtype, rng


def break_timestamps(rng: np.random.Generator, ts: np.ndarray, kind: str):
    """A copy of ``ts`` made hostile: ``dup`` (a repeated value), ``unsorted`` (two swapped),
    ``nan``/``inf`` (float64 only). Returns ``(ts, index)``: the first index a strict check fails at."""
    ts = ts.copy()
    if kind == "dup":
        i = int(rng.integers(1, len(ts)))
        ts[i] = ts[i - 1]
        return ts, i
    if kind == "unsorted":
        i = int(rng.integers(1, len(ts)))
        ts[i - 1], ts[i] = ts[i], ts[i - 1]
        return ts, i
    i = int(rng.integers(0, len(ts)))
    ts[i] = np.nan if kind == "nan" else np.inf
    return ts, i


def hostile_sample(rng: np.random.Generator, data: list, tss: list, i: int, kind: str) -> str | None:
    """Sample ``i`` of a batch (lists ``data`` and ``tss``, changed in place) made hostile: ``mismatch``
    (one timestamp more than rows), ``empty`` (no rows), or a :func:`break_timestamps` kind. Returns
    the documented message fragment for it (what follows ``robocache.<op>: sample <i>: ``)."""
    if kind == "mismatch":
        tss[i] = np.concatenate([tss[i], tss[i][-1:] + 1])
        return f"length mismatch: data has {len(data[i])} rows (T) but timestamps has {len(tss[i])} entries"
    if kind == "empty":
        data[i], tss[i] = data[i][:0], tss[i][:0]
        return "empty sample: data has 0 rows and timestamps 0 entries"
    tss[i], _ = break_timestamps(rng, tss[i], kind)
    return expected_ts_error(tss[i])


def expected_ts_error(ts: np.ndarray, what: str = "timestamps") -> str | None:
    """The documented message fragment for the first problem of ``ts`` (None if it is valid):
    ``<what>[i] is nan: timestamps must be finite`` or ``<what> not strictly increasing at index i``."""
    if ts.dtype.kind == "f":
        bad = np.nonzero(~np.isfinite(ts))[0]
        if len(bad):
            return f"{what}[{bad[0]}] is {'NaN' if np.isnan(ts[bad[0]]) else ts[bad[0]]}"
    d = np.nonzero(ts[1:] <= ts[:-1])[0]
    if len(d):
        return f"{what} not strictly increasing at index {d[0] + 1}"
    return None


def reference_resample_rules(data, ts, tg, method, extrapolate, dtype):
    """numpy resampling with the documented rules: a target on a timestamp returns that row, linear is
    ``d[i] + w * (d[i+1] - d[i])`` in float32 (float64 for float64 data) with the weight from float64
    time differences, ``nearest`` ties to the earlier sample, outside the span ``clamp`` holds the edge
    row and ``nan`` gives NaN. ``data`` float64 ``[T, C]``; returns float64 ``[N, C]``."""
    acc = np.float64 if dtype == "float64" else np.float32
    n = len(ts)
    tg = np.asarray(tg)
    i = np.clip(np.searchsorted(ts, tg, side="right") - 1, 0, n - 1)
    j = np.minimum(i + 1, n - 1)
    before, after = tg < ts[0], tg > ts[-1]
    on_row = (i == n - 1) | (ts[i] == tg)
    dl = (tg - ts[i]).astype(np.float64)  # int64 ns: exact difference, then float64 (as documented)
    span = (ts[j] - ts[i]).astype(np.float64)
    out = data[i].astype(acc)
    if method == "nearest":
        right = ~on_row & (dl > (ts[j] - tg).astype(np.float64))
        out = np.where(right[:, None], data[j].astype(acc), out)
    elif method == "linear":
        lerp = ~on_row & ~before & ~after
        w = np.where(lerp, dl / np.where(span > 0, span, 1.0), 0.0).astype(acc)[:, None]
        a, b = data[i].astype(acc), data[j].astype(acc)
        with np.errstate(all="ignore"):
            lin = a + w * (b - a)
        out = np.where(lerp[:, None], lin, out)
    out = out.astype(np.float64)
    out[before] = data[0]
    out[after] = data[-1]
    if extrapolate == "nan":
        out[before | after] = np.nan
    return out


def round_to(x, dtype):
    """float64 values rounded through ``dtype`` (what the operator's output holds)."""
    with np.errstate(all="ignore"):
        return as_f64(cast(x, dtype), dtype)
