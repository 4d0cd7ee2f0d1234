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
