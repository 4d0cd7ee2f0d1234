"""Dataset adapters: one episode model for the robot-learning formats users have.

An :class:`Episode` is a set of named :class:`Stream` objects. Each stream has its own timestamps
(float64 seconds, or int64 nanoseconds where the source has them) and values (numpy), so cameras,
proprioception and actions recorded on different clocks stay honest until a resampling operator
(``fn.robocache.resample``) puts them on one grid. Episode metadata carries the robot, the task or
language instruction, the declared rate, normalisation statistics, and a flag saying when the
timestamps were derived from a declared rate because the format stores none.

One adapter per file (``lerobot``, ``rlds``, ``robomimic``, ``calvin``; video decoding in
``video``), one factory, :func:`open_dataset`, that picks the adapter from a path. Adapters are
imported lazily, so a missing optional dependency (h5py, PyAV) only matters for the format that
needs it.

Bad input raises subclasses of the built-in exceptions users already catch:
:class:`DatasetNotFoundError` (``FileNotFoundError``), :class:`CorruptDatasetError` and
:class:`UnknownFormatError` (``ValueError``), :class:`MissingKeyError` (``KeyError``) and
:class:`EpisodeIndexError` (``IndexError`` and ``KeyError``). Messages name the file, the episode
and the problem.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CorruptDatasetError",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "Episode",
    "EpisodeIndexError",
    "EpisodeMetadata",
    "MissingKeyError",
    "RateStats",
    "Stream",
    "UnknownFormatError",
    "aggregate_stats",
    "detect_format",
    "find_gaps",
    "measure_rate",
    "open_dataset",
]


# --------------------------------------------------------------------------------------- errors
class DatasetError(Exception):
    """Base of every dataset error; ``str()`` is the plain message (no KeyError quoting)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset, or a file it refers to, does not exist."""


class CorruptDatasetError(DatasetError, ValueError):
    """A file exists but its content is not what the format says (truncated, bad checksum, ...)."""


class UnknownFormatError(DatasetError, ValueError):
    """No adapter recognises the path, or the caller forced a format the path is not in."""


class MissingKeyError(DatasetError, KeyError):
    """A stream, camera or feature key that the episode or dataset does not have."""


class EpisodeIndexError(DatasetError, IndexError, KeyError):
    """An episode index outside the dataset."""


# --------------------------------------------------------------------------------------- model
STREAM_KINDS = ("lowdim", "image", "video", "text")


@dataclasses.dataclass(eq=False)
class Stream:
    """One named signal of an episode: timestamps and values of the same length.

    Values may be lazy: images still encoded and video frames still in their file are decoded
    on first access of :attr:`values`, or only for the samples asked for by :meth:`read` and
    :meth:`window`.

    Attributes:
        name: stream key, e.g. ``"observation.state"`` or ``"observation.images.cam_high"``.
        timestamps: ``[T]`` float64 seconds, or int64 nanoseconds where the source has them.
        kind: ``"lowdim"``, ``"image"`` (decoded or encoded stills), ``"video"`` or ``"text"``.
        shape: per-sample shape (``values.shape[1:]``).
        dtype: numpy dtype of the values.
        rate: declared rate in Hz, or ``None``.
        timestamps_derived: ``True`` where timestamps were computed from ``rate`` because the
            format stores none.
        names: optional channel names (LeRobot ``features[...]["names"]``).
        attrs: extra facts (codec, rotation type, the slice of a GR00T modality, ...).
        loader: ``loader(indices)`` returns the values at ``indices`` (``None`` for all).
        video: the :class:`robocache.datasets.video.VideoSource` behind a video stream.
    """

    name: str
    timestamps: np.ndarray
    kind: str
    shape: tuple
    dtype: np.dtype
    rate: float | None = None
    timestamps_derived: bool = False
    names: list | None = None
    attrs: dict = dataclasses.field(default_factory=dict)
    loader: Callable[[np.ndarray | None], np.ndarray] | None = None
    video: Any = None
    _values: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in STREAM_KINDS:
            raise ValueError(
                f"stream {self.name!r}: kind {self.kind!r} is not one of {STREAM_KINDS}"
            )
        ts = np.asarray(self.timestamps)
        if ts.dtype not in (np.float64, np.int64):
            ts = ts.astype(np.float64)
        if ts.ndim != 1:
            raise ValueError(f"stream {self.name!r}: timestamps must be 1-D, got shape {ts.shape}")
        self.timestamps = ts
        self.shape = tuple(int(s) for s in self.shape)
        self.dtype = np.dtype(self.dtype)
        if self._values is not None and len(self._values) != len(ts):
            raise ValueError(
                f"stream {self.name!r}: {len(self._values)} values but {len(ts)} timestamps"
            )
        if self._values is None and self.loader is None:
            raise ValueError(f"stream {self.name!r}: needs values or a loader")

    @classmethod
    def from_array(
        cls, name: str, timestamps: np.ndarray, values: np.ndarray, kind: str = "lowdim", **kw: Any
    ) -> Stream:
        """Build a stream whose values are already in memory.

        Args:
            name: stream key.
            timestamps: ``[T]`` float64 seconds or int64 nanoseconds.
            values: ``[T, ...]`` array.
            kind: stream kind, ``"lowdim"`` by default.
            **kw: other :class:`Stream` fields (``rate``, ``timestamps_derived``, ``names``...).

        Returns:
            Stream: the stream.
        """
        values = np.asarray(values)
        return cls(
            name=name,
            timestamps=timestamps,
            kind=kind,
            shape=values.shape[1:],
            dtype=values.dtype,
            _values=values,
            **kw,
        )

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def time_unit(self) -> str:
        """``"ns"`` for int64 timestamps, ``"s"`` for float64."""
        return "ns" if self.timestamps.dtype == np.int64 else "s"

    def seconds(self) -> np.ndarray:
        """Timestamps as float64 seconds, whatever the stored unit.

        Returns:
            np.ndarray: ``[T]`` float64.
        """
        if self.time_unit == "ns":
            return self.timestamps.astype(np.float64) * 1e-9
        return self.timestamps

    @property
    def is_loaded(self) -> bool:
        """Whether the values are in memory already."""
        return self._values is not None

    @property
    def values(self) -> np.ndarray:
        """All values, ``[T, *shape]``; decodes lazy streams once and keeps the result."""
        if self._values is None:
            self._values = np.asarray(self.loader(None))  # type: ignore[misc]
        return self._values

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Values of samples ``start:stop``, decoding only those for lazy streams.

        Args:
            start: first sample.
            stop: one past the last sample (``None``: the end).

        Returns:
            np.ndarray: ``[stop - start, *shape]``.

        Raises:
            EpisodeIndexError: when the range is outside the stream.
        """
        n = len(self)
        stop = n if stop is None else stop
        if not (0 <= start <= stop <= n):
            raise EpisodeIndexError(
                f"stream {self.name!r}: samples {start}:{stop} are outside 0:{n}"
            )
        if self._values is not None:
            return self._values[start:stop]
        return np.asarray(self.loader(np.arange(start, stop)))  # type: ignore[misc]

    def window(self, t_start: float, t_end: float) -> tuple[np.ndarray, np.ndarray]:
        """Samples with ``t_start <= t <= t_end`` (in the stream's time unit).

        Only the frames inside the window are decoded for video and encoded-image streams.

        Args:
            t_start: window start, same unit as :attr:`timestamps`.
            t_end: window end (inclusive).

        Returns:
            tuple: ``(timestamps, values)`` of the samples in the window.
        """
        lo = int(np.searchsorted(self.timestamps, t_start, side="left"))
        hi = int(np.searchsorted(self.timestamps, t_end, side="right"))
        return self.timestamps[lo:hi], self.read(lo, hi)

    def __repr__(self) -> str:
        return (
            f"Stream({self.name!r}, kind={self.kind}, T={len(self)}, shape={self.shape}, "
            f"dtype={self.dtype}, unit={self.time_unit}, derived={self.timestamps_derived})"
        )


@dataclasses.dataclass
class EpisodeMetadata:
    """What an episode says about itself.

    Attributes:
        format: adapter name (``"lerobot-v2.1"``, ``"rlds"``, ...).
        source: file or folder the episode was read from.
        robot: robot type, when the format records it.
        task: task description (the first one, for episodes with several).
        language: every language instruction of the episode.
        declared_rate: the rate the format declares, in Hz.
        timestamps_derived: ``True`` when timestamps were derived from ``declared_rate``.
        stats: dataset-level normalisation statistics ``{stream: {"mean": ..., "std": ...}}``.
        episode_stats: statistics of this episode alone, where the format stores them.
        attrs: anything else the format records.
    """

    format: str
    source: str
    robot: str | None = None
    task: str | None = None
    language: list = dataclasses.field(default_factory=list)
    declared_rate: float | None = None
    timestamps_derived: bool = False
    stats: dict = dataclasses.field(default_factory=dict)
    episode_stats: dict = dataclasses.field(default_factory=dict)
    attrs: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Episode:
    """A set of named streams plus metadata.

    Attributes:
        index: episode index within its dataset.
        streams: ``{name: Stream}``, in the format's order.
        metadata: :class:`EpisodeMetadata`.
    """

    index: int
    streams: dict
    metadata: EpisodeMetadata

    def __getitem__(self, key: str) -> Stream:
        try:
            return self.streams[key]
        except KeyError:
            raise MissingKeyError(
                f"{self.metadata.source}: episode {self.index} has no stream {key!r}; "
                f"available: {', '.join(self.streams) or 'none'}"
            ) from None

    def __contains__(self, key: object) -> bool:
        return key in self.streams

    def keys(self) -> list:
        """Stream names."""
        return list(self.streams)

    def of_kind(self, *kinds: str) -> list:
        """Names of the streams of the given kinds.

        Args:
            *kinds: any of ``"lowdim"``, ``"image"``, ``"video"``, ``"text"``.

        Returns:
            list: stream names.
        """
        return [k for k, s in self.streams.items() if s.kind in kinds]

    def camera(self, key: str) -> Stream:
        """The image or video stream ``key``.

        Args:
            key: camera stream name.

        Returns:
            Stream: the camera stream.

        Raises:
            MissingKeyError: when the episode has no camera of that name.
        """
        cams = self.of_kind("image", "video")
        if key not in cams:
            raise MissingKeyError(
                f"{self.metadata.source}: episode {self.index} has no camera {key!r}; "
                f"cameras: {', '.join(cams) or 'none'}"
            )
        return self.streams[key]

    def __repr__(self) -> str:
        return (
            f"Episode({self.index}, format={self.metadata.format}, "
            f"streams={list(self.streams)})"
        )


class Dataset:
    """Base of the adapters: a sequence of episodes plus dataset-level metadata.

    Subclasses set :attr:`format`, :attr:`path`, :attr:`episode_indices` and implement
    :meth:`_load_episode`.
    """

    format: str = "unknown"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.episode_indices: list = []
        self.declared_episodes: int | None = None
        self.robot: str | None = None
        self.declared_rate: float | None = None
        self.stats: dict = {}

    def __len__(self) -> int:
        return len(self.episode_indices)

    def __iter__(self) -> Iterator[Episode]:
        for i in self.episode_indices:
            yield self.episode(i)

    def __getitem__(self, index: int) -> Episode:
        return self.episode(index)

    def check_index(self, index: int) -> None:
        """Raise :class:`EpisodeIndexError` unless ``index`` is one of :attr:`episode_indices`.

        Args:
            index: episode index.

        Raises:
            EpisodeIndexError: naming the dataset and the valid range.
        """
        if not isinstance(index, (int, np.integer)) or int(index) not in set(self.episode_indices):
            shown = _ranges(self.episode_indices)
            raise EpisodeIndexError(
                f"{self.path}: episode {index!r} is out of range; this {self.format} dataset "
                f"has episodes {shown or 'none'}"
            )

    def episode(self, index: int) -> Episode:
        """Load one episode.

        Args:
            index: one of :attr:`episode_indices`.

        Returns:
            Episode: the episode, video and encoded images still lazy.

        Raises:
            EpisodeIndexError: for an index outside the dataset.
            DatasetNotFoundError: when a file the episode needs is missing.
            CorruptDatasetError: when a file the episode needs is unreadable.
        """
        self.check_index(index)
        return self._load_episode(int(index))

    def _load_episode(self, index: int) -> Episode:
        raise NotImplementedError

    def describe(self) -> dict:
        """Dataset-level facts for ``robocache inspect``.

        Returns:
            dict: format, path, robot, declared rate, episode counts.
        """
        return {
            "format": self.format,
            "path": str(self.path),
            "robot": self.robot,
            "declared_rate": self.declared_rate,
            "episodes": len(self),
            "declared_episodes": self.declared_episodes,
        }

    def compute_stats(self, indices: Sequence[int] | None = None) -> dict:
        """Normalisation statistics of the low-dimensional numeric streams, over episodes.

        Args:
            indices: episodes to use (default: all).

        Returns:
            dict: ``{stream: {"min", "max", "mean", "std", "count"}}`` as numpy arrays.
        """
        acc: dict = {}
        for i in self.episode_indices if indices is None else indices:
            ep = self.episode(i)
            for name, s in ep.streams.items():
                if s.kind != "lowdim" or s.dtype.kind not in "fiub":
                    continue
                v = s.values.astype(np.float64).reshape(len(s), -1)
                a = acc.setdefault(name, [])
                a.append(v)
        out = {}
        for name, parts in acc.items():
            v = np.concatenate(parts)
            out[name] = {
                "min": v.min(0),
                "max": v.max(0),
                "mean": v.mean(0),
                "std": v.std(0),
                "count": np.array([len(v)]),
            }
        return out


def aggregate_stats(per_episode: list) -> dict:
    """Dataset statistics from per-episode ones (count-weighted mean, pooled std).

    Args:
        per_episode: ``[{key: {"min", "max", "mean", "std", "count"}}, ...]`` of arrays.

    Returns:
        dict: ``{key: {"min", "max", "mean", "std", "count"}}``.
    """
    out: dict = {}
    keys = {k for st in per_episode for k in st}
    for k in sorted(keys):
        parts = [st[k] for st in per_episode if k in st and {"mean", "std", "count"} <= set(st[k])]
        if not parts:
            continue
        n = np.array([float(np.sum(p["count"])) for p in parts])
        shape = (-1,) + (1,) * (np.asarray(parts[0]["mean"]).ndim)
        means = np.stack([p["mean"] for p in parts])
        stds = np.stack([p["std"] for p in parts])
        w = (n / n.sum()).reshape(shape)
        mean = (w * means).sum(0)
        var = (w * (stds**2 + (means - mean) ** 2)).sum(0)
        out[k] = {"mean": mean, "std": np.sqrt(var), "count": np.array([n.sum()])}
        if all("min" in p for p in parts):
            out[k]["min"] = np.min(np.stack([p["min"] for p in parts]), 0)
        if all("max" in p for p in parts):
            out[k]["max"] = np.max(np.stack([p["max"] for p in parts]), 0)
    return out


def _ranges(indices: Sequence[int]) -> str:
    """Compact text for a sorted list of ints: ``0-3, 7, 9-10``."""
    out, idx = [], sorted(int(i) for i in indices)
    k = 0
    while k < len(idx):
        j = k
        while j + 1 < len(idx) and idx[j + 1] == idx[j] + 1:
            j += 1
        out.append(str(idx[k]) if j == k else f"{idx[k]}-{idx[j]}")
        k = j + 1
    return ", ".join(out)


def derived_timestamps(n: int, rate: float) -> np.ndarray:
    """Timestamps ``k / rate`` for ``k = 0..n-1``, for formats that store none.

    Args:
        n: number of samples.
        rate: declared rate in Hz (> 0).

    Returns:
        np.ndarray: ``[n]`` float64 seconds.

    Raises:
        ValueError: for a non-positive or non-finite rate.
    """
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"declared rate must be a positive number of Hz, got {rate!r}")
    return np.arange(n, dtype=np.float64) / float(rate)


# --------------------------------------------------------------------------------------- rates
@dataclasses.dataclass
class RateStats:
    """Measured sampling rate of one stream.

    Attributes:
        median_hz: 1 / median interval.
        jitter_s: standard deviation of the intervals, seconds.
        jitter_pct: ``jitter_s`` as a percentage of the median interval.
        min_dt_s: shortest interval.
        max_dt_s: longest interval.
        samples: number of timestamps.
    """

    median_hz: float
    jitter_s: float
    jitter_pct: float
    min_dt_s: float
    max_dt_s: float
    samples: int


def measure_rate(timestamps: np.ndarray) -> RateStats | None:
    """Median rate and jitter of a timestamp series.

    Args:
        timestamps: ``[T]`` float64 seconds or int64 nanoseconds.

    Returns:
        RateStats or None: ``None`` when fewer than two samples.
    """
    ts = np.asarray(timestamps)
    ts = ts.astype(np.float64) * 1e-9 if ts.dtype == np.int64 else ts.astype(np.float64)
    if len(ts) < 2:
        return None
    dt = np.diff(ts)
    med = float(np.median(dt))
    jit = float(np.std(dt))
    return RateStats(
        median_hz=(1.0 / med) if med > 0 else float("inf"),
        jitter_s=jit,
        jitter_pct=(100.0 * jit / med) if med > 0 else float("inf"),
        min_dt_s=float(dt.min()),
        max_dt_s=float(dt.max()),
        samples=len(ts),
    )


def find_gaps(timestamps: np.ndarray, threshold_s: float) -> list:
    """Intervals longer than a threshold.

    Args:
        timestamps: ``[T]`` float64 seconds or int64 nanoseconds.
        threshold_s: report intervals strictly longer than this, seconds.

    Returns:
        list: ``[(index, start_s, duration_s), ...]`` with ``index`` the sample before the gap.
    """
    ts = np.asarray(timestamps)
    ts = ts.astype(np.float64) * 1e-9 if ts.dtype == np.int64 else ts.astype(np.float64)
    if len(ts) < 2:
        return []
    dt = np.diff(ts)
    return [(int(i), float(ts[i]), float(dt[i])) for i in np.nonzero(dt > threshold_s)[0]]


# --------------------------------------------------------------------------------------- factory
FORMATS = ("lerobot", "rlds", "robomimic", "calvin")


def detect_format(path: str | Path) -> str:
    """Which adapter reads ``path``.

    Args:
        path: dataset folder or file.

    Returns:
        str: one of :data:`FORMATS`.

    Raises:
        DatasetNotFoundError: when ``path`` does not exist.
        UnknownFormatError: when no adapter recognises it.
    """
    p = Path(path)
    if not p.exists():
        raise DatasetNotFoundError(f"{p}: no such file or folder")
    if p.is_file():
        if p.suffix.lower() in (".hdf5", ".h5", ".he5"):
            return "robomimic"
        if p.name == "info.json" and p.parent.name == "meta":
            return "lerobot"
        if p.name in ("features.json", "dataset_info.json") or ".tfrecord" in p.name:
            return "rlds"
        raise UnknownFormatError(
            f"{p}: unknown dataset file; expected a robomimic/robosuite .hdf5, a LeRobot "
            f"meta/info.json or an RLDS features.json / .tfrecord shard"
        )
    if (p / "meta" / "info.json").is_file():
        return "lerobot"
    if (
        (p / "features.json").is_file()
        or any(p.glob("*/features.json"))
        or any(p.glob("*/*/features.json"))
    ):
        return "rlds"
    if (p / "ep_start_end_ids.npy").is_file() or any(p.glob("episode_*.npz")):
        return "calvin"
    h5 = sorted(p.glob("*.hdf5")) + sorted(p.glob("*.h5"))
    if h5:
        return "robomimic"
    raise UnknownFormatError(
        f"{p}: unknown dataset format; looked for meta/info.json (LeRobot), features.json "
        f"(RLDS/TFDS), episode_*.npz (CALVIN) and *.hdf5 (robomimic/robosuite)"
    )


def open_dataset(path: str | Path, format: str | None = None, **kw: Any) -> Dataset:
    """Open a dataset with the adapter its path calls for.

    Args:
        path: dataset folder or file.
        format: force an adapter (one of :data:`FORMATS`) instead of detecting it.
        **kw: adapter options, e.g. ``rate=`` for formats without timestamps, ``video_backend=``
            for LeRobot, ``split=`` for RLDS.

    Returns:
        Dataset: a :class:`LeRobotDataset`, :class:`RLDSDataset`, :class:`RobomimicDataset` or
        :class:`CalvinDataset`.

    Raises:
        DatasetNotFoundError: when ``path`` does not exist.
        UnknownFormatError: when the format is not recognised or not one of :data:`FORMATS`.
        CorruptDatasetError: when the dataset's metadata is unreadable.
    """
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise UnknownFormatError(f"{path}: format {fmt!r} is not one of {', '.join(FORMATS)}")
    if not Path(path).exists():
        raise DatasetNotFoundError(f"{path}: no such file or folder")
    cls = _adapter(fmt)
    return cls(path, **kw)


def _adapter(fmt: str) -> type:
    if fmt == "lerobot":
        from .lerobot import LeRobotDataset

        return LeRobotDataset
    if fmt == "rlds":
        from .rlds import RLDSDataset

        return RLDSDataset
    if fmt == "robomimic":
        from .robomimic import RobomimicDataset

        return RobomimicDataset
    from .calvin import CalvinDataset

    return CalvinDataset


_LAZY = {
    "LeRobotDataset": "lerobot",
    "RLDSDataset": "rlds",
    "RobomimicDataset": "robomimic",
    "CalvinDataset": "calvin",
    "VideoSource": "video",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def as_mapping(x: Any) -> Mapping:
    """``x`` if it is a mapping, else an empty dict (for optional JSON sections)."""
    return x if isinstance(x, Mapping) else {}
