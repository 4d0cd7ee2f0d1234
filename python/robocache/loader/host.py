"""Host side of :class:`robocache.RobotDataLoader`: datasets opened, keys mapped to the common
layout, episodes indexed into windows, normalisation statistics, and per-window sample assembly
for the DALI pipeline's external source.

Everything here runs before the first batch (validation, indexing) or inside the external source
(slicing the recorded samples around a window, picking a camera frame). No DALI, no torch.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import (
    CorruptDatasetError,
    Dataset,
    DatasetError,
    DatasetNotFoundError,
    MissingKeyError,
    open_dataset,
)

STATE_CANDIDATES = ("observation.state", "observation.states", "state", "states", "proprio", "observation.proprio",
                    "robot_obs")  # robot_obs: CALVIN
ACTION_CANDIDATES = ("action", "actions")
# robosuite 0.x demos store the action as joint velocities plus gripper actuation
ACTION_FALLBACK = (("joint_velocities", "gripper_actuations"),)


@dataclasses.dataclass
class DatasetSpec:
    """One dataset of a :class:`~robocache.RobotDataLoader` mixture, with its key mapping.

    Attributes:
        path: dataset folder or file (anything :func:`robocache.datasets.open_dataset` reads), or an
            opened :class:`~robocache.datasets.Dataset`.
        state_keys: low-dimensional streams concatenated (in this order) into ``state``. Default:
            GR00T ``state.*`` slices of ``meta/modality.json`` where present, else the first of
            ``observation.state``, ``states``, ... the dataset has.
        action_keys: streams concatenated into ``action``. Default: GR00T ``action.*`` slices, else
            ``action`` / ``actions`` (robosuite 0.x: ``joint_velocities`` + ``gripper_actuations``).
        cameras: ``{loader camera name: stream key}``; names not given here are matched to a stream
            called ``name`` or ending in ``.name`` / ``_name`` (``front`` ->
            ``observation.images.front``, ``video.front``).
        weight: mixture weight (alternative to the loader's ``weights``).
        episodes: episode indices to use (default: all present).
        stats: ``{stream key: {"mean", "std", "min", "max"}}`` overriding the dataset's statistics.
        name: display name (default: the folder or file name).
        open_kwargs: extra arguments of ``open_dataset`` (``rate=``, ``video_backend=``, ...).
    """

    path: Any
    state_keys: list | None = None
    action_keys: list | None = None
    cameras: dict | None = None
    weight: float | None = None
    episodes: list | None = None
    stats: dict | None = None
    name: str | None = None
    open_kwargs: dict = dataclasses.field(default_factory=dict)


def as_spec(x: Any) -> DatasetSpec:
    """A :class:`DatasetSpec` from a path, a Dataset, a dict of spec fields or a spec."""
    if isinstance(x, DatasetSpec):
        return x
    if isinstance(x, dict):
        unknown = set(x) - {f.name for f in dataclasses.fields(DatasetSpec)}
        if unknown:
            raise ValueError(f"RobotDataLoader: dataset entry has unknown fields {sorted(unknown)}; DatasetSpec fields: "
                             f"{[f.name for f in dataclasses.fields(DatasetSpec)]}")
        if "path" not in x:
            raise ValueError("RobotDataLoader: a dataset entry given as a dict needs 'path'")
        return DatasetSpec(**x)
    if isinstance(x, (str, Path, Dataset)):
        return DatasetSpec(path=x)
    raise TypeError(f"RobotDataLoader: a dataset must be a path, a Dataset, a dict or a DatasetSpec, got {type(x).__name__}")


@dataclasses.dataclass
class EpisodeData:
    """What the loader keeps of one episode: low-dim arrays in the common layout plus cameras."""

    index: int
    t0: float
    state_ts: np.ndarray
    state: np.ndarray
    action_ts: np.ndarray
    action: np.ndarray
    task: int
    cameras: dict  # loader camera name -> (Stream, timestamps relative to t0)
    max_gap: dict = dataclasses.field(default_factory=dict)  # "state"/"action" -> seconds

    @property
    def span(self) -> tuple:
        """Common recorded span of state and action, seconds from ``t0``."""
        return max(self.state_ts[0], self.action_ts[0]), min(self.state_ts[-1], self.action_ts[-1])


class HostDataset:
    """One dataset of the mixture, opened, validated and indexed.

    Args:
        i: position in the mixture (for messages).
        spec: the :class:`DatasetSpec`.
        cfg: loader settings (``steps``, ``period``, ``cameras``, ``pad``, ``short_episodes``).
        tasks: the loader's task list, extended in place.
    """

    def __init__(self, i: int, spec: DatasetSpec, cfg: dict, tasks: list) -> None:
        self.i = i
        self.spec = spec
        try:
            self.ds = spec.path if isinstance(spec.path, Dataset) else open_dataset(spec.path, **spec.open_kwargs)
        except DatasetError as e:
            raise type(e)(f"RobotDataLoader: datasets[{i}]: {e}") from None
        p = self.ds.path
        self.name = spec.name or getattr(self.ds, "name", None) or (
            f"{p.parent.parent.name}/{p.parent.name}" if p.is_file() and p.stem == "demo" else p.name)
        self.where = f"RobotDataLoader: datasets[{i}] ({self.name}, {self.ds.path})"
        indices = list(self.ds.episode_indices) if spec.episodes is None else list(spec.episodes)
        if not indices:
            raise DatasetNotFoundError(f"{self.where}: has no episodes")
        first = self._load(indices[0])
        self.state_keys = list(spec.state_keys) if spec.state_keys else self._default_keys(first, "state")
        self.action_keys = list(spec.action_keys) if spec.action_keys else self._default_keys(first, "action")
        self._meta_stats = first.metadata.stats or {}
        self.camera_keys = {name: self._camera_key(first, name) for name in cfg["cameras"]}
        self.state_dim = self._dims(first, self.state_keys, "state")
        self.action_dim = self._dims(first, self.action_keys, "action")
        self._widths = {k: (int(np.prod(first[k].shape)) if first[k].shape else 1) for k in self.state_keys + self.action_keys}
        self.episodes: list = []
        anchors_ep, anchors_t = [], []
        short = []
        before, after = (cfg["steps"][0] - 1) * cfg["period"], (cfg["steps"][1] - 1) * cfg["period"]
        for k, idx in enumerate(indices):
            ep = first if k == 0 else self._load(idx)
            e = self._episode_data(ep, tasks, cfg)
            lo, hi = e.span
            if hi - lo < before + after - 1e-9:
                short.append((idx, hi - lo))
                continue
            a = e.state_ts[(e.state_ts >= lo - 1e-9) & (e.state_ts <= hi + 1e-9)]
            if not cfg["pad"]:
                a = a[(a - before >= lo - 1e-9) & (a + after <= hi + 1e-9)]
            self.episodes.append(e)
            anchors_ep.append(np.full(len(a), len(self.episodes) - 1, np.int64))
            anchors_t.append(a)
        if short:
            what = ", ".join(f"episode {j} ({s:.3f} s)" for j, s in short[:5]) + (" ..." if len(short) > 5 else "")
            msg = (f"{self.where}: {len(short)} episode(s) shorter than a window of {before + after:.3f} s "
                   f"({cfg['steps'][0]} observation + {cfg['steps'][1]} action steps at {1 / cfg['period']:g} Hz): {what}")
            if cfg["short_episodes"] == "error":
                raise ValueError(msg + "; pass short_episodes='skip' to leave them out, or shorter horizons")
            warnings.warn(msg + "; skipped (short_episodes='skip')", stacklevel=4)
        if not self.episodes:
            raise ValueError(f"{self.where}: no episode is long enough for a window")
        self.win_episode = np.concatenate(anchors_ep)
        self.win_anchor = np.concatenate(anchors_t)
        if len(self.win_anchor) == 0:
            raise ValueError(f"{self.where}: no window fits (pad=False and every episode too short)")
        self.stats = self._stats(spec.stats or {})

    # ------------------------------------------------------------------------------------ keys
    def _load(self, idx: int):
        try:
            return self.ds.episode(idx)
        except DatasetError as e:
            raise type(e)(f"{self.where}: {e}") from None

    def _default_keys(self, ep, group: str) -> list:
        sliced = [k for k, s in ep.streams.items() if k.startswith(group + ".") and s.kind == "lowdim" and "slice" in s.attrs]
        if sliced:  # GR00T modality.json view
            return sliced
        for k in STATE_CANDIDATES if group == "state" else ACTION_CANDIDATES:
            if k in ep.streams and ep.streams[k].kind == "lowdim":
                return [k]
        if group == "action":
            for combo in ACTION_FALLBACK:
                if all(k in ep.streams for k in combo):
                    return list(combo)
        lowdim = ep.of_kind("lowdim")
        raise MissingKeyError(f"{self.where}: no {group} stream found (looked for "
                              f"{', '.join(STATE_CANDIDATES if group == 'state' else ACTION_CANDIDATES)}); low-dimensional "
                              f"streams: {', '.join(lowdim) or 'none'}; pass {group}_keys= in a DatasetSpec")

    def _camera_key(self, ep, name: str) -> str:
        cams = ep.of_kind("image", "video")
        given = (self.spec.cameras or {}).get(name)
        if given is not None:
            if given not in cams:
                raise MissingKeyError(f"{self.where}: camera {name!r} is mapped to {given!r}, which is not a camera of "
                                      f"this dataset; cameras: {', '.join(cams) or 'none'}")
            return given
        match = [c for c in cams if c == name or c.endswith("." + name) or c.endswith("_" + name)]
        if len(match) != 1:
            problem = "no camera" if not match else f"several cameras ({', '.join(match)})"
            raise MissingKeyError(f"{self.where}: unknown camera key {name!r}: {problem} matches it; cameras: "
                                  f"{', '.join(cams) or 'none'}; map it with DatasetSpec(cameras={{{name!r}: <stream key>}})")
        return match[0]

    def _dims(self, ep, keys: list, group: str) -> int:
        d = 0
        for k in keys:
            s = ep[k] if k in ep else None
            if s is None:
                raise MissingKeyError(f"{self.where}: {group} key {k!r} is not a stream of episode {ep.index}; "
                                      f"streams: {', '.join(ep.keys())}")
            if s.kind != "lowdim" or s.dtype.kind not in "fiub":
                raise ValueError(f"{self.where}: {group} key {k!r} is a {s.kind} stream of {s.dtype}, not numeric low-dim data")
            d += int(np.prod(s.shape)) if s.shape else 1
        return d

    # ------------------------------------------------------------------------------------ episodes
    def _concat(self, ep, keys: list, group: str) -> tuple:
        ts0 = ep[keys[0]].seconds()
        parts = []
        for k in keys:
            s = ep[k]
            if len(s) != len(ts0) or not np.array_equal(s.seconds(), ts0):
                raise CorruptDatasetError(f"{self.where}: episode {ep.index}: {group} keys {keys[0]!r} and {k!r} have different "
                                          f"timestamps; concatenated keys must share a clock")
            parts.append(np.asarray(s.values, np.float32).reshape(len(s), -1))
        return ts0, np.concatenate(parts, axis=1)

    def _episode_data(self, ep, tasks: list, cfg: dict) -> EpisodeData:
        sts, sv = self._concat(ep, self.state_keys, "state")
        ats, av = self._concat(ep, self.action_keys, "action")
        if sv.shape[1] != self.state_dim or av.shape[1] != self.action_dim:
            raise CorruptDatasetError(f"{self.where}: episode {ep.index}: state/action widths {sv.shape[1]}/{av.shape[1]} differ "
                                      f"from the first episode's {self.state_dim}/{self.action_dim}")
        for what, ts in (("state", sts), ("action", ats)):
            if len(ts) == 0 or not np.all(np.isfinite(ts)) or (len(ts) > 1 and not np.all(np.diff(ts) > 0)):
                raise CorruptDatasetError(f"{self.where}: episode {ep.index}: {what} timestamps are empty, not finite or not increasing")
        t0 = float(sts[0])
        cams = {}
        for name, key in self.camera_keys.items():
            if key not in ep:
                raise MissingKeyError(f"{self.where}: episode {ep.index}: unknown camera key {key!r} (camera {name!r}); "
                                      f"cameras: {', '.join(ep.of_kind('image', 'video')) or 'none'}")
            s = ep[key]
            if s.video is not None:
                if not Path(s.video.path).is_file():
                    raise DatasetNotFoundError(f"{self.where}: episode {ep.index}: camera {name!r} ({key}): video file {s.video.path} "
                                               f"is missing; leave the episode out with DatasetSpec(episodes=[...])")
                try:
                    s.video.check()
                except DatasetError as e:
                    raise type(e)(f"{self.where}: {e}") from None
            cams[name] = (s, s.seconds() - t0)
        task = ep.metadata.task or ""
        if task not in tasks:
            tasks.append(task)
        gaps = {}
        for g, ts in (("state", sts), ("action", ats)):
            gap = default_max_gap(ts, cfg["max_gap"])
            gaps[g] = math.inf if len(ts) < 2 or float(np.max(np.diff(ts))) <= gap else gap  # inf: no gap to mask
        return EpisodeData(ep.index, t0, sts - t0, sv, ats - t0, av, tasks.index(task), cams, gaps)

    # ------------------------------------------------------------------------------------ stats
    def _stats(self, override: dict) -> dict:
        """Per-channel ``mean/std/min/max`` of state and action: override, dataset file, else computed."""
        out = {}
        for group, keys, attr in (("state", self.state_keys, "state"), ("action", self.action_keys, "action")):
            parts: dict = {s: [] for s in ("mean", "std", "min", "max")}
            source = []
            for k in keys:
                st = override.get(k) or self._meta_stats.get(k) or self.ds.stats.get(k) or {}
                width = self._widths[k]
                got = {s: np.asarray(st[s], np.float64).reshape(-1) for s in parts if s in st}
                if len(got) == 4 and all(v.size == width for v in got.values()):
                    source.append("given" if k in override else "dataset")
                else:
                    off = self._key_offset(keys, k)
                    v = np.concatenate([getattr(e, attr)[:, off:off + width] for e in self.episodes]).astype(np.float64)
                    got = {"mean": v.mean(0), "std": v.std(0), "min": v.min(0), "max": v.max(0)}
                    source.append("computed")
                for s in parts:
                    parts[s].append(got[s])
            out[group] = {s: np.concatenate(v) for s, v in parts.items()}
            out[group]["source"] = source
        return out

    def _key_offset(self, keys: list, key: str) -> int:
        return sum(self._widths[k] for k in keys[: keys.index(key)])

    @property
    def num_windows(self) -> int:
        """Windows in this dataset's table."""
        return len(self.win_anchor)


def default_max_gap(ts: np.ndarray, max_gap: float | None) -> float:
    """The gap threshold of a stream: ``max_gap``, or 3 median sampling intervals when ``None``."""
    if max_gap is not None:
        return float(max_gap)
    if len(ts) < 2:
        return math.inf
    return 3.0 * float(np.median(np.diff(ts)))


def step_times(anchor: float, steps: tuple, period: float) -> tuple:
    """Target times of a window: observation steps ending at ``anchor``, action steps from it.

    Args:
        anchor: window anchor (observation time), seconds from the episode's start.
        steps: ``(To, Ta)``.
        period: ``1 / target_frequency``.

    Returns:
        tuple: ``(obs [To], act [Ta])`` float64 seconds.
    """
    to, ta = steps
    return anchor + (np.arange(to) - (to - 1)) * period, anchor + np.arange(ta) * period


def valid_mask(ts: np.ndarray, targets: np.ndarray, max_gap: float) -> np.ndarray:
    """Which targets lie inside the recorded span and not inside a gap wider than ``max_gap``.

    Args:
        ts: recorded timestamps ``[T]`` (seconds).
        targets: target times ``[N]``.
        max_gap: widest interval between recorded samples that still interpolates, seconds.

    Returns:
        np.ndarray: ``[N]`` bool.
    """
    eps = 1e-9
    ok = (targets >= ts[0] - eps) & (targets <= ts[-1] + eps)
    if len(ts) > 1 and math.isfinite(max_gap):
        i = np.searchsorted(ts, targets, side="right") - 1
        np.clip(i, 0, len(ts) - 2, out=i)
        lo, hi = ts[i], ts[i + 1]
        ok &= (np.abs(targets - lo) <= eps) | (np.abs(targets - hi) <= eps) | (hi - lo <= max_gap)
    return ok


def around(ts: np.ndarray, lo: float, hi: float) -> tuple:
    """Index range of the recorded samples a resample of ``[lo, hi]`` needs (one either side)."""
    a = max(int(np.searchsorted(ts, lo, side="right")) - 1, 0)
    b = min(int(np.searchsorted(ts, hi, side="left")) + 1, len(ts))
    return a, max(b, a + 1)


def nearest_frame(ts: np.ndarray, t: float) -> int:
    """Index of the frame nearest ``t`` (ties go to the earlier frame)."""
    j = int(np.searchsorted(ts, t, side="left"))
    if j <= 0:
        return 0
    if j >= len(ts):
        return len(ts) - 1
    return j if (ts[j] - t) < (t - ts[j - 1]) else j - 1


def window_table(hosts: list, offsets: tuple) -> dict:
    """Every window of every dataset in flat arrays, for batch-at-once assembly.

    Args:
        hosts: the loader's :class:`HostDataset` list.
        offsets: ``(obs [To], act [Ta])`` target offsets from the anchor, seconds.

    Returns:
        dict: ``row_offset [D]`` (dataset ``d``'s window ``r`` is global row ``row_offset[d] + r``),
        per row ``anchor``, ``episode`` (into ``episodes``), ``<g>_slice [R, 2]`` (recorded samples a
        window needs, one either side); per episode ``<g>_span [E, 2]``, ``<g>_has_gap``,
        ``episode_index``, ``task``, ``<g>_base``/``<g>_len`` (where each episode's samples sit in
        ``<g>_flat [S, D]`` float32 / ``<g>_ts_flat [S]`` float64, all episodes' samples in one array);
        and ``episodes`` (the :class:`EpisodeData` list, whose arrays become views into the flat ones).
    """
    episodes, ep_base, row_offset = [], [], []
    anchors, ep_rows, slices = [], [], {"state": [], "action": []}
    rows = 0
    for h in hosts:
        row_offset.append(rows)
        ep_base.append(len(episodes))
        episodes += h.episodes
        anchors.append(h.win_anchor)
        ep_rows.append(h.win_episode + ep_base[-1])
        for g, off in (("state", offsets[0]), ("action", offsets[1])):
            sl = np.zeros((h.num_windows, 2), np.int64)
            bounds = np.searchsorted(h.win_episode, np.arange(len(h.episodes) + 1))  # windows are grouped by episode
            for k, e in enumerate(h.episodes):
                sel = slice(bounds[k], bounds[k + 1])
                ts = getattr(e, g + "_ts")
                a = np.maximum(np.searchsorted(ts, h.win_anchor[sel] + off[0], side="right") - 1, 0)
                b = np.minimum(np.searchsorted(ts, h.win_anchor[sel] + off[-1], side="left") + 1, len(ts))
                sl[sel, 0], sl[sel, 1] = a, np.maximum(b, a + 1)
            slices[g].append(sl)
        rows += h.num_windows
    out = {"row_offset": np.asarray(row_offset, np.int64), "anchor": np.concatenate(anchors),
           "episode": np.concatenate(ep_rows), "episodes": episodes,
           "episode_index": np.array([e.index for e in episodes], np.int64), "task": np.array([e.task for e in episodes], np.int64)}
    for g in ("state", "action"):
        # every episode's samples in one array (the episodes keep views into it): a batch's windows
        # are then gathered with one fancy index
        lens = np.array([len(getattr(e, g + "_ts")) for e in episodes], np.int64)
        out[g + "_len"], out[g + "_base"] = lens, np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        out[g + "_flat"] = np.ascontiguousarray(np.concatenate([getattr(e, g) for e in episodes]), np.float32)
        out[g + "_ts_flat"] = np.ascontiguousarray(np.concatenate([getattr(e, g + "_ts") for e in episodes]), np.float64)
        for e, b, n in zip(episodes, out[g + "_base"].tolist(), lens.tolist()):
            if getattr(e, g).dtype == np.float32 and getattr(e, g + "_ts").dtype == np.float64:
                setattr(e, g, out[g + "_flat"][b:b + n])
                setattr(e, g + "_ts", out[g + "_ts_flat"][b:b + n])
        out[g + "_slice"] = np.concatenate(slices[g])
        out[g + "_span"] = np.array([[getattr(e, g + "_ts")[0], getattr(e, g + "_ts")[-1]] for e in episodes], np.float64)
        out[g + "_has_gap"] = np.array([math.isfinite(e.max_gap[g]) for e in episodes], bool)
        out[g + "_any_gap"] = bool(out[g + "_has_gap"].any())
    return out
