"""LeRobot datasets (v2.0/v2.1 and v3.0, plus GR00T's ``meta/modality.json``), read with pyarrow.

Layouts:

* v2.x: one parquet file per episode (``data/chunk-XXX/episode_XXXXXX.parquet``), one mp4 per
  episode and camera, JSON-lines metadata (``meta/episodes.jsonl``, ``tasks.jsonl``,
  ``episodes_stats.jsonl`` in v2.1, ``stats.json`` in v2.0).
* v3.0: episodes concatenated into chunked parquet files (``data/chunk-XXX/file-XXX.parquet``),
  videos concatenated likewise, metadata in parquet (``meta/episodes/**.parquet`` with each
  episode's file, row range, video ``from_timestamp`` and per-episode stats;
  ``meta/tasks.parquet``) and ``meta/stats.json``.

``meta/info.json`` gives the features (dtype, shape, names; ``video`` features with codec facts)
and ``fps``. Row timestamps come from the ``timestamp`` column (float32 seconds, widened to
float64); frame ``i`` of a camera sits at ``from_timestamp + timestamp[i]`` in its video file.

GR00T's ``meta/modality.json`` splits the concatenated ``observation.state`` and ``action`` into
named slices (``state.<name>``, ``action.<name>``) with rotation type and absolute/relative flags,
renames videos (``video.<name>``) and maps annotation columns to task text. With
``modality="auto"`` (default) a dataset that has the file is read in that view.

:class:`LeRobotWriter` writes the v2.1 layout (used by ``robocache convert``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import (
    CorruptDatasetError,
    Dataset,
    DatasetNotFoundError,
    Episode,
    EpisodeIndexError,
    EpisodeMetadata,
    MissingKeyError,
    Stream,
    UnknownFormatError,
    _ranges,
    aggregate_stats,
    as_mapping,
)
from .video import VideoSource, decode_images

BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")
V2_DATA = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V2_VIDEO = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"


def _pa():
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    return pa, pq


def read_json(path: Path, what: str = "") -> Any:
    """Parse a JSON file, with errors that name it.

    Args:
        path: file.
        what: what the file is, for the missing-file message.

    Returns:
        Any: the parsed JSON.

    Raises:
        DatasetNotFoundError: when missing.
        CorruptDatasetError: when not valid JSON.
    """
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: missing{'; ' + what if what else ''}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CorruptDatasetError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None


def read_jsonl(path: Path) -> list:
    """Parse a JSON-lines file, naming the line of any error.

    Args:
        path: file.

    Returns:
        list: one parsed object per non-empty line.

    Raises:
        DatasetNotFoundError: when missing.
        CorruptDatasetError: when a line is not valid JSON.
    """
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: missing") from None
    out = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise CorruptDatasetError(f"{path}: line {n} is not valid JSON: {e.msg}") from None
    return out


def _as_arrays(stats: Mapping) -> dict:
    """``{key: {stat: list}}`` -> ``{key: {stat: np.ndarray}}``."""
    return {
        k: {s: np.asarray(v, dtype=np.float64) for s, v in as_mapping(d).items()}
        for k, d in as_mapping(stats).items()
    }


def column_to_numpy(col: Any, shape: tuple, dtype: Any, context: str) -> np.ndarray:
    """A (possibly nested) list or scalar parquet column as ``[T, *shape]`` numpy.

    Args:
        col: pyarrow Array or ChunkedArray.
        shape: per-row shape from ``info.json``.
        dtype: numpy dtype.
        context: file/episode/key text for errors.

    Returns:
        np.ndarray: ``[T, *shape]``.

    Raises:
        CorruptDatasetError: on nulls or a size that does not match ``shape``.
    """
    pa, _ = _pa()
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n = len(arr)
    if arr.null_count:
        raise CorruptDatasetError(f"{context}: {arr.null_count} null rows")
    while (
        pa.types.is_list(arr.type)
        or pa.types.is_large_list(arr.type)
        or pa.types.is_fixed_size_list(arr.type)
    ):
        arr = arr.flatten()
    flat = arr.to_numpy(zero_copy_only=False)
    per_row = int(np.prod(shape)) if len(shape) else 1
    if flat.size != n * per_row:
        raise CorruptDatasetError(
            f"{context}: {flat.size} values in {n} rows, but info.json declares shape {list(shape)}"
        )
    return flat.reshape((n,) + tuple(shape)).astype(dtype, copy=False)


def _image_hw(feat: Mapping) -> tuple:
    """(height, width) of an image/video feature, whatever order its shape uses."""
    info = as_mapping(feat.get("info"))
    if "video.height" in info and "video.width" in info:
        return int(info["video.height"]), int(info["video.width"])
    shape = list(feat.get("shape", []))
    names = [str(n).lower() for n in (feat.get("names") or [])]
    if "height" in names and "width" in names and len(shape) == len(names):
        return shape[names.index("height")], shape[names.index("width")]
    if len(shape) == 3:
        return (shape[1], shape[2]) if shape[0] in (1, 3, 4) else (shape[0], shape[1])
    raise CorruptDatasetError(f"image feature has no usable shape: {dict(feat)}")


class LeRobotDataset(Dataset):
    """A LeRobot dataset folder (v2.0, v2.1 or v3.0).

    Args:
        path: dataset root (the folder holding ``meta/``), or its ``meta/info.json``.
        video_backend: ``"auto"``, ``"pyav"``, ``"dali-gpu"`` or ``"dali-cpu"``.
        modality: ``"auto"`` (GR00T view when ``meta/modality.json`` exists), ``"raw"`` or
            ``"groot"`` (requires the file).
        image_device: DALI device for ``image`` features: ``"auto"``, ``"mixed"`` or ``"cpu"``.

    Raises:
        DatasetNotFoundError: when ``meta/info.json`` (or modality.json for ``"groot"``) is missing.
        CorruptDatasetError: when metadata is unreadable or inconsistent.
        UnknownFormatError: for an unsupported ``codebase_version``.
    """

    def __init__(
        self,
        path: str | Path,
        video_backend: str = "auto",
        modality: str = "auto",
        image_device: str = "auto",
    ) -> None:
        p = Path(path)
        root = p.parent.parent if p.name == "info.json" else p
        super().__init__(root)
        self.info = read_json(root / "meta" / "info.json", "a LeRobot dataset needs meta/info.json")
        info_path = root / "meta" / "info.json"
        self.version = str(self.info.get("codebase_version", ""))
        if not self.version.startswith(("v2.", "v3.")):
            raise UnknownFormatError(
                f"{info_path}: LeRobot codebase_version {self.version or '(none)'!r} is not "
                f"supported; expected v2.0, v2.1 or v3.0"
            )
        self.format = f"lerobot-{self.version}"
        if "fps" not in self.info or not isinstance(self.info.get("features"), dict):
            raise CorruptDatasetError(f"{info_path}: needs 'fps' and a 'features' object")
        self.fps = float(self.info["fps"])
        self.declared_rate = self.fps
        self.robot = self.info.get("robot_type")
        self.features: dict = self.info["features"]
        self.video_keys = [k for k, f in self.features.items() if f.get("dtype") == "video"]
        self.video_backend = video_backend
        self.image_device = image_device
        self.declared_episodes = int(self.info.get("total_episodes", 0)) or None
        self.tasks: dict = {}
        self.episodes_meta: dict = {}
        self.episode_stats: dict = {}
        if self.version.startswith("v2."):
            self._load_meta_v2()
        else:
            self._load_meta_v3()
        if not self.stats and self.episode_stats:
            self.stats = aggregate_stats(list(self.episode_stats.values()))
        self.modality = self._load_modality(modality)
        self.missing_episodes = sorted(set(self.episodes_meta) - set(self.episode_indices))

    # ----------------------------------------------------------------------------- metadata
    def _load_meta_v2(self) -> None:
        meta = self.path / "meta"
        for row in read_jsonl(meta / "episodes.jsonl"):
            self.episodes_meta[int(row["episode_index"])] = row
        for row in read_jsonl(meta / "tasks.jsonl") if (meta / "tasks.jsonl").exists() else []:
            self.tasks[int(row["task_index"])] = row["task"]
        if (meta / "episodes_stats.jsonl").exists():
            for row in read_jsonl(meta / "episodes_stats.jsonl"):
                self.episode_stats[int(row["episode_index"])] = _as_arrays(row.get("stats"))
        if (meta / "stats.json").exists():
            self.stats = _as_arrays(read_json(meta / "stats.json"))
        self.episode_indices = [
            i for i in sorted(self.episodes_meta) if self.data_file(i).is_file()
        ]

    def _load_meta_v3(self) -> None:
        _, pq = _pa()
        meta = self.path / "meta"
        files = sorted((meta / "episodes").glob("**/*.parquet"))
        if not files:
            raise DatasetNotFoundError(
                f"{meta / 'episodes'}: no episode metadata parquet files "
                f"(LeRobot v3.0 keeps them in meta/episodes/chunk-*/)"
            )
        for f in files:
            rows = self._read_parquet(f, "episode metadata").to_pylist()
            for row in rows:
                i = int(row["episode_index"])
                self.episodes_meta[i] = row
                st: dict = {}
                for k, v in row.items():
                    if k.startswith("stats/") and k.count("/") >= 2 and v is not None:
                        key, stat = k[len("stats/") :].rsplit("/", 1)
                        st.setdefault(key, {})[stat] = np.asarray(v, np.float64)
                if st:
                    self.episode_stats[i] = st
        tasks_file = meta / "tasks.parquet"
        if tasks_file.exists():
            t = self._read_parquet(tasks_file, "tasks")
            names = (
                t.column("task").to_pylist()
                if "task" in t.column_names
                else t.column(t.column_names[-1]).to_pylist()
            )
            for ti, name in zip(t.column("task_index").to_pylist(), names, strict=False):
                self.tasks[int(ti)] = name
        if (meta / "stats.json").exists():
            self.stats = _as_arrays(read_json(meta / "stats.json"))
        self.episode_indices = [
            i for i in sorted(self.episodes_meta) if self.data_file(i).is_file()
        ]

    def _load_modality(self, modality: str) -> dict | None:
        f = self.path / "meta" / "modality.json"
        if modality not in ("auto", "raw", "groot"):
            raise ValueError(f"modality must be 'auto', 'raw' or 'groot', got {modality!r}")
        if modality == "raw" or (modality == "auto" and not f.exists()):
            return None
        mod = read_json(f, "modality='groot' needs GR00T's meta/modality.json")
        if not isinstance(mod, dict):
            raise CorruptDatasetError(f"{f}: expected a JSON object")
        for group in ("state", "action"):
            for name, spec in as_mapping(mod.get(group)).items():
                orig = spec.get(
                    "original_key", "observation.state" if group == "state" else "action"
                )
                if orig not in self.features:
                    raise MissingKeyError(
                        f"{f}: {group}.{name} refers to {orig!r}, which is not a "
                        f"feature of {self.path / 'meta' / 'info.json'}"
                    )
                dim = int(np.prod(self.features[orig].get("shape", [0])))
                try:
                    start, end = int(spec["start"]), int(spec["end"])
                except (KeyError, TypeError, ValueError):
                    raise CorruptDatasetError(
                        f"{f}: {group}.{name} needs integer 'start' and " f"'end'"
                    ) from None
                if not 0 <= start < end <= dim:
                    raise CorruptDatasetError(
                        f"{f}: {group}.{name} slice [{start}:{end}] does not "
                        f"fit {orig!r} of size {dim}"
                    )
        for name, spec in as_mapping(mod.get("video")).items():
            orig = as_mapping(spec).get("original_key", f"observation.images.{name}")
            if orig not in self.video_keys:
                raise MissingKeyError(
                    f"{f}: video.{name} refers to {orig!r}, which is not a video "
                    f"feature; videos: {', '.join(self.video_keys) or 'none'}"
                )
        return mod

    def _read_parquet(self, f: Path, what: str, **kw: Any) -> Any:
        pa, pq = _pa()
        if not f.is_file():
            raise DatasetNotFoundError(f"{f}: {what} file is missing")
        try:
            return pq.read_table(f, **kw)
        except (pa.ArrowInvalid, OSError) as e:
            raise CorruptDatasetError(f"{f}: {what} is not a readable parquet file: {e}") from None

    # ----------------------------------------------------------------------------- paths
    def data_file(self, index: int) -> Path:
        """Parquet file that holds episode ``index``.

        Args:
            index: episode index.

        Returns:
            Path: the file (which may be missing from a partial download).
        """
        tmpl = self.info.get("data_path", V2_DATA)
        if self.version.startswith("v2."):
            chunk = index // int(self.info.get("chunks_size", 1000))
            return self.path / tmpl.format(episode_chunk=chunk, episode_index=index)
        row = self.episodes_meta[index]
        return self.path / tmpl.format(
            chunk_index=int(row["data/chunk_index"]), file_index=int(row["data/file_index"])
        )

    def video_file(self, index: int, key: str) -> tuple:
        """Video file of camera ``key`` in episode ``index`` and the episode's time offset in it.

        Args:
            index: episode index.
            key: video feature key.

        Returns:
            tuple: ``(path, from_timestamp_s)``.

        Raises:
            MissingKeyError: when ``key`` is not a video feature.
        """
        if key not in self.video_keys:
            raise MissingKeyError(
                f"{self.path}: {key!r} is not a video feature; videos: "
                f"{', '.join(self.video_keys) or 'none'}"
            )
        tmpl = self.info.get("video_path") or V2_VIDEO
        if self.version.startswith("v2."):
            chunk = index // int(self.info.get("chunks_size", 1000))
            return self.path / tmpl.format(
                episode_chunk=chunk, video_key=key, episode_index=index
            ), 0.0
        row = self.episodes_meta[index]
        pre = f"videos/{key}/"
        return (
            self.path
            / tmpl.format(
                video_key=key,
                chunk_index=int(row[pre + "chunk_index"]),
                file_index=int(row[pre + "file_index"]),
            ),
            float(row.get(pre + "from_timestamp") or 0.0),
        )

    def check_index(self, index: int) -> None:
        """Like :meth:`Dataset.check_index`, but says when the episode is declared yet missing.

        Args:
            index: episode index.

        Raises:
            DatasetNotFoundError: when the metadata lists the episode but its data file is absent.
            EpisodeIndexError: when the metadata does not list it.
        """
        if not isinstance(index, (int, np.integer)):
            super().check_index(index)
        if int(index) in self.episodes_meta and int(index) not in self.episode_indices:
            raise DatasetNotFoundError(
                f"{self.path}: episode {index}: data file "
                f"{self.data_file(int(index))} is missing"
            )
        if self.missing_episodes and int(index) not in self.episodes_meta:
            raise EpisodeIndexError(
                f"{self.path}: episode {index!r} is out of range; the metadata lists episodes "
                f"{_ranges(list(self.episodes_meta))}, of which {_ranges(self.episode_indices)} "
                f"have data"
            )
        super().check_index(index)

    # ----------------------------------------------------------------------------- episodes
    def _load_episode(self, index: int) -> Episode:
        meta = self.episodes_meta[index]
        f = self.data_file(index)
        ctx = f"{f}: episode {index}"
        if self.version.startswith("v2."):
            table = self._read_parquet(f, f"episode {index} data")
        else:
            table = self._read_parquet(
                f, f"episode {index} data", filters=[("episode_index", "=", index)]
            )
        n = table.num_rows
        length = meta.get("length")
        if length is not None and int(length) != n:
            raise CorruptDatasetError(f"{ctx}: {n} rows but the episode metadata says {length}")
        if "timestamp" not in table.column_names:
            raise CorruptDatasetError(f"{ctx}: no 'timestamp' column")
        if "episode_index" in table.column_names:
            ep_col = table.column("episode_index").to_numpy()
            if n and not np.all(ep_col == index):
                raise CorruptDatasetError(
                    f"{ctx}: rows of episode(s) {sorted(set(ep_col.tolist()) - {index})} "
                    f"found in this episode's file"
                )
        ts = table.column("timestamp").to_numpy().astype(np.float64)
        if n > 1 and not np.all(np.diff(ts) > 0):
            k = int(np.argmin(np.diff(ts) > 0))
            raise CorruptDatasetError(
                f"{ctx}: timestamps not increasing at row {k + 1} "
                f"({ts[k]:.6f} then {ts[k + 1]:.6f})"
            )
        streams: dict = {}
        for key, feat in self.features.items():
            if key in BOOKKEEPING:
                continue
            dtype = feat.get("dtype")
            kw = dict(rate=self.fps, names=_flat_names(feat.get("names")))
            if dtype == "video":
                path, offset = self.video_file(index, key)
                src = VideoSource(
                    path, offset + ts, self.fps, f"{ctx} camera {key!r}", self.video_backend
                )
                h, w = _image_hw(feat)
                streams[key] = Stream(
                    key,
                    ts,
                    "video",
                    (h, w, 3),
                    np.uint8,
                    rate=self.fps,
                    loader=src.decode,
                    video=src,
                    attrs={
                        "path": str(path),
                        "from_timestamp": offset,
                        **as_mapping(feat.get("info")),
                    },
                )
                continue
            if key not in table.column_names:
                raise CorruptDatasetError(
                    f"{ctx}: info.json declares feature {key!r} but the " f"file has no such column"
                )
            col = table.column(key)
            if dtype == "image":
                enc = [d["bytes"] if isinstance(d, dict) else d for d in col.to_pylist()]
                h, w = _image_hw(feat)
                streams[key] = Stream(
                    key,
                    ts,
                    "image",
                    (h, w, 3),
                    np.uint8,
                    loader=_images(enc, self.image_device, f"{ctx} camera {key!r}"),
                    **kw,
                )
            elif dtype == "string":
                streams[key] = Stream.from_array(
                    key, ts, np.array(col.to_pylist(), object), kind="text", rate=self.fps
                )
            else:
                vals = column_to_numpy(
                    col, tuple(feat.get("shape", [1])), np.dtype(dtype), f"{ctx} column {key!r}"
                )
                streams[key] = Stream.from_array(key, ts, vals, **kw)
        tasks = [str(t) for t in (meta.get("tasks") or [])]
        md = EpisodeMetadata(
            format=self.format,
            source=str(f),
            robot=self.robot,
            task=tasks[0] if tasks else None,
            language=tasks,
            declared_rate=self.fps,
            timestamps_derived=False,
            stats=self.stats,
            episode_stats=self.episode_stats.get(index, {}),
            attrs={"length": n, "codebase_version": self.version},
        )
        if self.modality is not None:
            streams, md.stats, md.episode_stats = self._groot_view(
                streams, table, ts, ctx, md.episode_stats
            )
        return Episode(index, streams, md)

    def _groot_view(
        self, raw: dict, table: Any, ts: np.ndarray, ctx: str, episode_stats: dict
    ) -> tuple:
        """Streams, stats and episode stats in GR00T's modality.json view."""
        mod = self.modality or {}
        out: dict = {}
        used: set = set()
        stats, ep_stats = dict(self.stats), dict(episode_stats)
        for group in ("state", "action"):
            for name, spec in as_mapping(mod.get(group)).items():
                orig = spec.get(
                    "original_key", "observation.state" if group == "state" else "action"
                )
                src = raw[orig]
                start, end = int(spec["start"]), int(spec["end"])
                key = f"{group}.{name}"
                attrs = {
                    "original_key": orig,
                    "slice": [start, end],
                    "rotation_type": spec.get("rotation_type"),
                    "absolute": bool(spec.get("absolute", True)),
                    "dtype": spec.get("dtype"),
                    "range": spec.get("range"),
                }
                vals = src.values.reshape(len(src), -1)[:, start:end]
                out[key] = Stream.from_array(
                    key,
                    src.timestamps,
                    vals,
                    rate=src.rate,
                    attrs=attrs,
                    names=src.names[start:end] if src.names else None,
                )
                for dst, srcst in ((stats, self.stats), (ep_stats, episode_stats)):
                    if orig in srcst:  # per-channel stats sliced like the values; count kept
                        dst[key] = {
                            s: (v[..., start:end] if v.ndim and v.shape[-1] > 1 else v)
                            for s, v in srcst[orig].items()
                        }
                used.add(orig)
        for name, spec in as_mapping(mod.get("video")).items():
            orig = as_mapping(spec).get("original_key", f"observation.images.{name}")
            key = f"video.{name}"
            out[key] = dataclasses.replace(
                raw[orig], name=key, attrs={**raw[orig].attrs, "original_key": orig}
            )
            used.add(orig)
        for name, spec in as_mapping(mod.get("annotation")).items():
            orig = as_mapping(spec).get("original_key", f"annotation.{name}")
            if orig not in table.column_names:
                raise MissingKeyError(
                    f"{ctx}: annotation.{name} refers to column {orig!r}, which "
                    f"the episode's table does not have"
                )
            idx = table.column(orig).to_numpy().reshape(-1).astype(np.int64)
            bad = [int(i) for i in idx if int(i) not in self.tasks]
            if bad:
                raise CorruptDatasetError(
                    f"{ctx}: {orig!r} refers to task index {bad[0]}, which " f"meta/tasks has not"
                )
            out[f"annotation.{name}"] = Stream.from_array(
                f"annotation.{name}",
                ts,
                np.array([self.tasks[int(i)] for i in idx], object),
                kind="text",
                attrs={"original_key": orig},
            )
            used.add(orig)
        for k, s in raw.items():
            if k not in used:
                out[k] = s
        return out, stats, ep_stats

    def describe(self) -> dict:
        """Dataset facts plus version, cameras and missing episodes.

        Returns:
            dict: see :meth:`Dataset.describe`.
        """
        d = super().describe()
        d.update(
            version=self.version,
            video_keys=self.video_keys,
            missing_episodes=len(self.missing_episodes),
            tasks=len(self.tasks),
            groot_modality=self.modality is not None,
        )
        return d


def _flat_names(names: Any) -> list | None:
    if isinstance(names, dict):  # v2.0 style {"motors": [...]}
        names = next(iter(names.values()), None)
    if isinstance(names, list) and len(names) == 1 and isinstance(names[0], list):
        names = names[0]
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return list(names)
    return None


def _images(encoded: list, device: str, context: str):
    def load(idx: np.ndarray | None) -> np.ndarray:
        sel = encoded if idx is None else [encoded[int(i)] for i in idx]
        return decode_images(sel, device, context)

    load.encoded = encoded  # the still-encoded images, for pipelines that decode them (RobotDataLoader)
    return load


# --------------------------------------------------------------------------------------- writer
class LeRobotWriter:
    """Write a LeRobot v2.1 dataset: per-episode parquet, mp4 per camera, JSON-lines metadata.

    Args:
        root: output folder (created).
        fps: frame rate of every episode.
        robot_type: ``info.json`` ``robot_type``.
        chunks_size: episodes per chunk folder.
    """

    def __init__(
        self, root: str | Path, fps: float, robot_type: str | None = None, chunks_size: int = 1000
    ) -> None:
        self.root = Path(root)
        self.fps = fps
        self.robot_type = robot_type
        self.chunks_size = chunks_size
        self.features: dict = {}
        self.tasks: dict = {}
        self.episodes: list = []
        self.stats: list = []
        self.frames = 0
        (self.root / "meta").mkdir(parents=True, exist_ok=True)

    def video_path(self, episode_index: int, key: str) -> Path:
        """Where camera ``key`` of an episode goes (parent folders created).

        Args:
            episode_index: episode index.
            key: video feature key.

        Returns:
            Path: the mp4 path.
        """
        p = self.root / V2_VIDEO.format(
            episode_chunk=episode_index // self.chunks_size,
            video_key=key,
            episode_index=episode_index,
        )
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def add_episode(
        self,
        episode_index: int,
        timestamps: np.ndarray,
        columns: Mapping,
        tasks: list,
        videos: Mapping | None = None,
        names: Mapping | None = None,
        extra: Mapping | None = None,
    ) -> None:
        """Write one episode's table and record its metadata.

        Args:
            episode_index: index of the episode in the output.
            timestamps: ``[T]`` seconds from the episode start.
            columns: ``{key: [T, ...] array}`` low-dimensional features.
            tasks: task strings of the episode (the first becomes every row's ``task_index``).
            videos: ``{key: {"height", "width", "codec", "stats"}}`` for cameras already written
                to :meth:`video_path`.
            names: optional channel names per column key.
            extra: additional fields for the ``episodes.jsonl`` line.
        """
        pa, pq = _pa()
        n = len(timestamps)
        for t in tasks or ["(no task)"]:
            self.tasks.setdefault(t, len(self.tasks))
        task_index = self.tasks[(tasks or ["(no task)"])[0]]
        arrays, ep_stats = {}, {}
        for key, v in columns.items():
            v = np.asarray(v)
            v2 = v.reshape(n, -1) if v.ndim != 2 else v
            shape = list(v.shape[1:]) or [1]
            self.features.setdefault(
                key, {"dtype": str(v.dtype), "shape": shape, "names": (names or {}).get(key)}
            )
            if shape == [1]:
                arrays[key] = pa.array(v2[:, 0])
            else:
                arrays[key] = pa.FixedSizeListArray.from_arrays(
                    pa.array(v2.reshape(-1)), v2.shape[1]
                )
            if v.dtype.kind in "fiub":
                ep_stats[key] = _series_stats(v2)
        for key, vi in (videos or {}).items():
            h, w = vi["height"], vi["width"]
            info = {"video.height": h, "video.width": w, "video.codec": vi["codec"],
                    "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                    "video.fps": self.fps, "video.channels": 3, "has_audio": False}  # fmt: skip
            self.features.setdefault(key, {"dtype": "video", "shape": [h, w, 3], "info": info,
                                           "names": ["height", "width", "channel"]})  # fmt: skip
            if vi.get("stats"):
                ep_stats[key] = vi["stats"]
        ts = np.asarray(timestamps, np.float64)
        ep_stats["timestamp"] = _series_stats(ts[:, None])
        arrays["timestamp"] = pa.array(ts.astype(np.float32))
        arrays["frame_index"] = pa.array(np.arange(n, dtype=np.int64))
        arrays["episode_index"] = pa.array(np.full(n, episode_index, np.int64))
        arrays["index"] = pa.array(np.arange(self.frames, self.frames + n, dtype=np.int64))
        arrays["task_index"] = pa.array(np.full(n, task_index, np.int64))
        for key in BOOKKEEPING:
            dt = "float32" if key == "timestamp" else "int64"
            self.features.setdefault(key, {"dtype": dt, "shape": [1], "names": None})
        f = self.root / V2_DATA.format(
            episode_chunk=episode_index // self.chunks_size, episode_index=episode_index
        )
        f.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(arrays), f)
        self.frames += n
        self.episodes.append(
            {"episode_index": episode_index, "tasks": list(tasks), "length": n, **dict(extra or {})}
        )
        self.stats.append({"episode_index": episode_index, "stats": _jsonable(ep_stats)})

    def close(self) -> None:
        """Write ``meta/``: ``info.json``, ``episodes.jsonl``, ``tasks.jsonl``, episode stats."""
        meta = self.root / "meta"
        n_eps = len(self.episodes)
        videos = [k for k, f in self.features.items() if f["dtype"] == "video"]
        info = {
            "codebase_version": "v2.1",
            "robot_type": self.robot_type,
            "total_episodes": n_eps,
            "total_frames": self.frames,
            "total_tasks": len(self.tasks),
            "total_videos": n_eps * len(videos),
            "total_chunks": (
                max((e["episode_index"] for e in self.episodes), default=0) // self.chunks_size
            )
            + 1,
            "chunks_size": self.chunks_size,
            "fps": self.fps,
            "splits": {"train": f"0:{n_eps}"},
            "data_path": V2_DATA,
            "video_path": V2_VIDEO if videos else None,
            "features": self.features,
        }
        (meta / "info.json").write_text(json.dumps(info, indent=4))
        (meta / "episodes.jsonl").write_text("".join(json.dumps(e) + "\n" for e in self.episodes))
        (meta / "tasks.jsonl").write_text(
            "".join(json.dumps({"task_index": i, "task": t}) + "\n" for t, i in self.tasks.items())
        )
        (meta / "episodes_stats.jsonl").write_text(
            "".join(json.dumps(s) + "\n" for s in self.stats)
        )


def _series_stats(v: np.ndarray) -> dict:
    """Per-channel min/max/mean/std/count of a ``[T, C]`` array, as LeRobot's stats files hold."""
    f = v.astype(np.float64)
    return {"min": f.min(0), "max": f.max(0), "mean": f.mean(0), "std": f.std(0),
            "count": np.array([len(f)])}  # fmt: skip


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x
