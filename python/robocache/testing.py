"""Reference implementations and readers used by RoboCache's tests and benchmarks: an independent
numpy resampler, random ragged batches, and readers for the real recordings the tests use."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def reference_resample(data, ts, targets, method="linear", extrapolate="clamp"):
    """Resamples with numpy alone (``numpy.interp`` for linear), independently of the plugin.

    Args:
        data: ``[T, C]`` or ``[T]`` array (computed in float64).
        ts: ``[T]`` strictly increasing timestamps (float64 s or int64 ns).
        targets: ``[N]`` target timestamps, same kind as ``ts``.
        method: ``"linear"``, ``"nearest"`` (ties to the earlier sample) or ``"previous"``.
        extrapolate: ``"clamp"`` or ``"nan"``.

    Returns:
        A float64 array ``[N, C]`` (or ``[N]``).
    """
    d = np.asarray(data, dtype=np.float64)
    flat = d.ndim == 1
    d2 = d[:, None] if flat else d
    ts = np.asarray(ts)
    tg = np.asarray(targets)
    if method == "linear":
        x = (tg - ts[0]).astype(np.float64)
        xp = (ts - ts[0]).astype(np.float64)
        out = np.stack([np.interp(x, xp, d2[:, c]) for c in range(d2.shape[1])], axis=1) if d2.shape[1] else np.zeros((len(tg), 0))
    else:
        i = np.searchsorted(ts, tg, side="right") - 1
        i = np.clip(i, 0, len(ts) - 1)
        if method == "nearest":
            j = np.minimum(i + 1, len(ts) - 1)
            di = (tg - ts[i]).astype(np.float64)
            dj = (ts[j] - tg).astype(np.float64)
            i = np.where((j != i) & (dj < di), j, i)
        out = d2[i]
    if extrapolate == "nan":
        out = out.copy()
        out[(tg < ts[0]) | (tg > ts[-1])] = np.nan
    return out[:, 0] if flat else out


def random_ragged(rng, batch, channels, t_range=(1, 200), ns=False, dtype=np.float32, jitter=0.3):
    """A random ragged batch of trajectories with strictly increasing, jittered timestamps.

    Args:
        rng: ``numpy.random.Generator``.
        batch: number of samples.
        channels: shared C.
        t_range: inclusive range of T per sample.
        ns: int64 nanosecond timestamps instead of float64 seconds.
        dtype: data dtype.
        jitter: relative jitter of the sampling period.

    Returns:
        ``(data, timestamps)`` lists.
    """
    data, tss = [], []
    for _ in range(batch):
        t = int(rng.integers(t_range[0], t_range[1] + 1))
        rate = float(rng.choice([5.0, 15.0, 30.0, 50.0, 100.0, 200.0, 1000.0]))
        dt = (1.0 / rate) * (1.0 + jitter * rng.uniform(-1, 1, t))
        t0 = float(rng.uniform(0, 1000))
        s = t0 + np.concatenate([[0.0], np.cumsum(dt[1:])])
        if ns:
            s = np.round(s * 1e9).astype(np.int64)
            s = np.maximum.accumulate(s + np.arange(t))  # keep strictly increasing
        data.append((rng.standard_normal((t, channels)) * rng.uniform(0.1, 10)).astype(dtype))
        tss.append(s)
    return data, tss


def read_euroc_imu(mav0: str | Path):
    """Reads a EuRoC ASL ``imu0/data.csv``.

    Args:
        mav0: the ``mav0`` folder.

    Returns:
        ``(timestamps int64 ns [T], values float32 [T, 6])`` (gyro xyz, accel xyz).
    """
    raw = np.loadtxt(Path(mav0) / "imu0" / "data.csv", delimiter=",", comments="#", dtype=np.float64)
    ts = np.loadtxt(Path(mav0) / "imu0" / "data.csv", delimiter=",", comments="#", usecols=0, dtype=np.int64)
    return ts, raw[:, 1:].astype(np.float32)


def read_lerobot_states(parquet: str | Path, key="observation.state"):
    """Reads one LeRobot episode's state column and timestamps with pyarrow.

    Args:
        parquet: the episode's parquet file.
        key: the state column.

    Returns:
        ``(timestamps float64 s [T], states float32 [T, D])``.
    """
    import pyarrow.parquet as pq

    tab = pq.read_table(parquet, columns=[key, "timestamp"])
    states = np.stack([np.asarray(x, dtype=np.float32) for x in tab.column(key).to_pylist()])
    ts = np.asarray(tab.column("timestamp").to_numpy(), dtype=np.float64)
    return ts, states


def _normalise(q):
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(n > 0, q / np.where(n > 0, n, 1), q)


def reference_align(streams, targets, methods=None, max_gap=None, quaternions=(), quaternion_order="xyzw", fill="hold"):
    """Aligns streams onto reference times with numpy/scipy alone, independently of the plugin:
    ``numpy.interp`` per channel over each stream's valid (NaN-free) rows, ``scipy.spatial.transform.Slerp``
    for quaternion groups.

    Args:
        streams: list of ``(data [T, C] or [T], timestamps [T])`` (float64 s or int64 ns).
        targets: reference timestamps ``[K]`` of the same kind.
        methods: per-stream ``"linear"``/``"nearest"``/``"previous"`` (default all linear).
        max_gap: per-stream seconds (default no limit).
        quaternions: flat (stream, first channel) pairs.
        quaternion_order: ``"xyzw"`` or ``"wxyz"``.
        fill: ``"hold"``, ``"nan"`` or ``"zero"``.

    Returns:
        ``(fused float64 [K, sum C], valid bool [K, N])``.
    """
    from scipy.spatial.transform import Rotation, Slerp

    n = len(streams)
    methods = methods or ["linear"] * n
    max_gap = max_gap if max_gap is not None and len(max_gap) else [np.inf] * n
    groups = {}
    for s, f in zip(quaternions[::2], quaternions[1::2]):
        groups.setdefault(int(s), []).append(int(f))
    tg = np.asarray(targets)
    ns_unit = tg.dtype == np.int64
    outs, valids = [], []
    for s, (d, ts) in enumerate(streams):
        d = np.asarray(d, dtype=np.float64)
        d = d[:, None] if d.ndim == 1 else d
        ts = np.asarray(ts)
        t0 = ts[0]
        x = (tg - t0).astype(np.float64)
        ok = ~np.isnan(d).any(axis=1)
        tv, dv = ts[ok], d[ok]
        xv = (tv - t0).astype(np.float64)
        k = len(tg)
        out = np.full((k, d.shape[1]), np.nan)
        if len(tv) == 0:
            if fill == "zero":
                out[:] = 0.0
                for f in groups.get(s, []):
                    out[:, f + (0 if quaternion_order == "wxyz" else 3)] = 1.0
            outs.append(out)
            valids.append(np.zeros(k, bool))
            continue
        il = np.searchsorted(tv, tg, side="right") - 1
        ir = il + 1
        has_l, has_r = il >= 0, ir < len(tv)
        ilc, irc = np.clip(il, 0, len(tv) - 1), np.clip(ir, 0, len(tv) - 1)
        exact = has_l & (tv[ilc] == tg)
        inside = (tg >= ts[0]) & (tg <= ts[-1])
        gap = (tv[irc] - tv[ilc]).astype(np.float64)
        limit = max_gap[s] * (1e9 if ns_unit else 1.0)
        valid = exact | (inside & has_l & has_r & (gap <= limit))
        m = methods[s]
        if m == "linear":
            vals = np.stack([np.interp(x, xv, dv[:, c]) for c in range(d.shape[1])], axis=1)
        else:
            pick = ilc.copy()
            if m == "nearest":
                near_r = (tg - tv[ilc]).astype(np.float64) > (tv[irc] - tg).astype(np.float64)
                pick = np.where(~exact & has_r & near_r, irc, ilc)
            vals = dv[pick].copy()
        held = dv[np.where(has_l, ilc, irc)].copy()
        for f in groups.get(s, []):
            sl = slice(f, f + 4)
            held[:, sl] = _normalise(held[:, sl])
            if m != "linear":
                vals[:, sl] = _normalise(vals[:, sl])
                continue
            q = dv[:, sl]
            q = q[:, [1, 2, 3, 0]] if quaternion_order == "wxyz" else q
            inner = valid & ~exact
            res = _normalise(vals[:, sl])
            res[exact] = _normalise(dv[ilc[exact], sl])
            if inner.any() and len(tv) > 1:
                r = Slerp(xv, Rotation.from_quat(q))(x[inner]).as_quat()
                r = r[:, [3, 0, 1, 2]] if quaternion_order == "wxyz" else r
                # q and -q are one rotation: the short arc starts at L's quaternion, so take its hemisphere
                sign = np.sign(np.sum(r * dv[ilc[inner], sl], axis=1, keepdims=True))
                res[inner] = r * np.where(sign == 0, 1, sign)
            vals[:, sl] = res
        out[valid] = vals[valid]
        if fill == "hold":
            out[~valid] = held[~valid]
        elif fill == "zero":
            z = np.zeros(d.shape[1])
            for f in groups.get(s, []):
                z[f + (0 if quaternion_order == "wxyz" else 3)] = 1.0
            out[~valid] = z
        outs.append(out)
        valids.append(valid)
    return np.concatenate(outs, axis=1), np.stack(valids, axis=1)


def random_quaternions(rng, t, step=0.3):
    """A random walk of unit quaternions ``[t, 4]`` (xyzw or wxyz alike), with random sign flips."""
    q = np.cumsum(rng.standard_normal((t, 4)) * step, axis=0) + rng.standard_normal(4)
    q = _normalise(q)
    return q * rng.choice([-1.0, 1.0], size=(t, 1))


def random_streams(rng, batch, specs, ns=False, dtype=np.float32, nan_runs=True, gaps=True, quaternions=()):
    """A random ragged multi-stream batch: per sample, per stream, jittered timestamps at the
    stream's rate over about the same window, with random time gaps (rows removed) and NaN runs.

    Args:
        rng: ``numpy.random.Generator``.
        batch: samples.
        specs: per stream ``(rate Hz, channels)``.
        ns: int64 nanosecond timestamps instead of float64 seconds.
        dtype: data dtype.
        nan_runs, gaps: insert NaN runs / time gaps.
        quaternions: flat (stream, first channel) pairs whose channels get unit quaternions.

    Returns:
        ``streams``: a list per stream of ``(data list, timestamps list)`` over the batch.
    """
    groups = list(zip(quaternions[::2], quaternions[1::2]))
    out = [([], []) for _ in specs]
    for _ in range(batch):
        base = float(rng.uniform(0, 1000))
        dur = float(rng.uniform(0.3, 3.0))
        for s, (rate, c) in enumerate(specs):
            t = max(1, int(dur * rate * rng.uniform(0.8, 1.2)))
            dt = (1.0 / rate) * (1.0 + 0.3 * rng.uniform(-1, 1, t))
            ts = base + rng.uniform(-0.1, 0.1) + np.concatenate([[0.0], np.cumsum(dt[1:])])
            d = rng.standard_normal((t, c)) * rng.uniform(0.1, 10)
            for gs, f in groups:
                if gs == s:
                    d[:, f:f + 4] = random_quaternions(rng, t)
            keep = np.ones(t, bool)
            if gaps and t > 10 and rng.random() < 0.7:
                a = int(rng.integers(1, t - 5))
                keep[a:a + int(rng.integers(1, max(2, t // 4)))] = False
            if nan_runs and t > 5:
                for _ in range(int(rng.integers(0, 3))):
                    a = int(rng.integers(0, t))
                    d[a:a + int(rng.integers(1, 6)), int(rng.integers(0, c))] = np.nan
            ts, d = ts[keep], d[keep]
            if ns:
                ts = np.round(ts * 1e9).astype(np.int64)
                ts = np.maximum.accumulate(ts + np.arange(len(ts)))
            out[s][0].append(d.astype(dtype))
            out[s][1].append(ts)
    return out


def streams_overlap(streams) -> bool:
    """Whether every sample's streams share a time span (``span="intersection"`` needs it; a
    ``random_streams`` batch with short streams at low rates may not).

    Args:
        streams: a list per stream of ``(data list, timestamps list)`` over the batch.
    """
    return all(max(t[i][0] for _, t in streams) <= min(t[i][-1] for _, t in streams) for i in range(len(streams[0][1])))
