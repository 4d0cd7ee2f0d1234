"""CALVIN episodes: one ``episode_XXXXXXX.npz`` per frame, episodes from ``ep_start_end_ids.npy``.

A CALVIN split folder (``training/``, ``validation/``) holds a file per recorded frame, named by
its global frame id, with ``actions``, ``rel_actions``, ``robot_obs``, ``scene_obs``,
``rgb_static``, ``rgb_gripper``, ``rgb_tactile``, ``depth_*``; ``ep_start_end_ids.npy`` lists
each episode's first and last frame id (inclusive). Optional: ``lang_annotations/
auto_lang_ann.npy`` (language per frame range) and ``statistics.yaml`` (normalisation).

Without ``ep_start_end_ids.npy`` each run of consecutive frame ids is taken as one episode and
``metadata.attrs["episodes_from"]`` says so. CALVIN stores no timestamps: they are
``(frame_id - first_id) / rate`` with CALVIN's recording rate, 30 Hz, unless ``rate=`` is given,
and ``timestamps_derived`` is set. RGB arrays are camera streams; depth and tactile arrays are
``image`` streams of their own shape.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from . import (
    CorruptDatasetError,
    Dataset,
    DatasetNotFoundError,
    Episode,
    EpisodeMetadata,
    Stream,
)

CALVIN_RATE = 30.0
_FRAME = re.compile(r"^episode_(\d+)\.npz$")


class CalvinDataset(Dataset):
    """A CALVIN split folder.

    Args:
        path: folder of ``episode_XXXXXXX.npz`` frames.
        rate: recording rate in Hz (CALVIN: 30).

    Raises:
        DatasetNotFoundError: when the folder is missing or holds no frames.
        CorruptDatasetError: when ``ep_start_end_ids.npy`` is unreadable or malformed.
    """

    format = "calvin"

    def __init__(self, path: str | Path, rate: float = CALVIN_RATE) -> None:
        p = Path(path)
        if not p.is_dir():
            raise DatasetNotFoundError(f"{p}: no such CALVIN folder")
        super().__init__(p)
        self.declared_rate = float(rate)
        self.robot = "Franka Panda"
        frames = {}
        for f in p.glob("episode_*.npz"):
            m = _FRAME.match(f.name)
            if m:
                frames[int(m.group(1))] = f.name
        self.frame_ids = np.array(sorted(frames), dtype=np.int64)
        self._digits = max((len(_FRAME.match(n).group(1)) for n in frames.values()), default=7)
        ids_file = p / "ep_start_end_ids.npy"
        if ids_file.is_file():
            try:
                ids = np.load(ids_file, allow_pickle=False)
            except (ValueError, OSError) as e:
                raise CorruptDatasetError(f"{ids_file}: unreadable ({e})") from None
            if ids.ndim != 2 or ids.shape[1] != 2 or ids.dtype.kind not in "iu":
                raise CorruptDatasetError(
                    f"{ids_file}: expected an integer [N, 2] array of "
                    f"(start, end) frame ids, got {ids.dtype} {ids.shape}"
                )
            bad = np.nonzero(ids[:, 1] < ids[:, 0])[0]
            if len(bad):
                raise CorruptDatasetError(
                    f"{ids_file}: episode {bad[0]} ends ({ids[bad[0], 1]}) "
                    f"before it starts ({ids[bad[0], 0]})"
                )
            self.ranges = [(int(a), int(b)) for a, b in ids]
            self.episodes_from = "ep_start_end_ids.npy"
        else:
            if not len(self.frame_ids):
                raise DatasetNotFoundError(
                    f"{p}: no episode_*.npz frames and no " f"ep_start_end_ids.npy"
                )
            cuts = np.nonzero(np.diff(self.frame_ids) != 1)[0]
            starts = np.concatenate([[0], cuts + 1])
            ends = np.concatenate([cuts, [len(self.frame_ids) - 1]])
            self.ranges = [
                (int(self.frame_ids[a]), int(self.frame_ids[b]))
                for a, b in zip(starts, ends, strict=False)
            ]
            self.episodes_from = "runs of consecutive frame ids (no ep_start_end_ids.npy)"
        self.language = self._load_language(p)
        self.stats = self._load_stats(p)
        self.episode_indices = list(range(len(self.ranges)))
        self.declared_episodes = len(self.ranges)

    @staticmethod
    def _load_language(p: Path) -> list:
        f = p / "lang_annotations" / "auto_lang_ann.npy"
        if not f.is_file():
            return []
        try:
            ann = np.load(f, allow_pickle=True).item()
            spans = ann["info"]["indx"]
            texts = ann["language"]["ann"]
        except (ValueError, OSError, KeyError, TypeError, AttributeError) as e:
            raise CorruptDatasetError(f"{f}: not a CALVIN language annotation file ({e})") from None
        return [(int(a), int(b), str(t)) for (a, b), t in zip(spans, texts, strict=False)]

    @staticmethod
    def _load_stats(p: Path) -> dict:
        f = p / "statistics.yaml"
        if not f.is_file():
            return {}
        try:
            import yaml  # noqa: PLC0415
        except ImportError:  # pragma: no cover - PyYAML is in requirements-datasets.txt
            return {}
        try:
            raw = yaml.safe_load(f.read_text()) or {}
        except yaml.YAMLError as e:
            raise CorruptDatasetError(f"{f}: invalid YAML ({e})") from None
        out: dict = {}

        def walk(node, prefix=""):
            if isinstance(node, dict):
                if {"mean", "std"} <= set(node):
                    out[prefix.strip(".")] = {
                        k: np.asarray(v, np.float64)
                        for k, v in node.items()
                        if isinstance(v, (list, int, float))
                    }
                    return
                for k, v in node.items():
                    walk(v, f"{prefix}{k}.")
            elif isinstance(node, list):
                for item in node:
                    if isinstance(item, dict) and "name" in item:
                        walk(item, f"{prefix}{item['name']}.")

        walk(raw)
        return out

    def frame_file(self, frame_id: int) -> Path:
        """Path of one frame's npz.

        Args:
            frame_id: global frame id.

        Returns:
            Path: ``episode_XXXXXXX.npz``.
        """
        return self.path / f"episode_{frame_id:0{self._digits}d}.npz"

    def _load_episode(self, index: int) -> Episode:
        start, end = self.ranges[index]
        ids = np.arange(start, end + 1)
        frames = []
        for fid in ids:
            f = self.frame_file(int(fid))
            if not f.is_file():
                raise DatasetNotFoundError(
                    f"{f}: episode {index} (frames {start}..{end}): frame " f"{fid} is missing"
                )
            try:
                with np.load(f, allow_pickle=False) as z:
                    frames.append({k: z[k] for k in z.files})
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
                raise CorruptDatasetError(
                    f"{f}: episode {index}: frame {fid} is not a readable " f"npz ({e})"
                ) from None
        keys = list(frames[0])
        for fid, fr in zip(ids, frames, strict=False):
            if list(fr) != keys:
                raise CorruptDatasetError(
                    f"{self.frame_file(int(fid))}: episode {index}: keys "
                    f"{sorted(fr)} differ from frame {start}'s {sorted(keys)}"
                )
        ts = (ids - start).astype(np.float64) / self.declared_rate
        streams = {}
        for k in keys:
            try:
                vals = np.stack([fr[k] for fr in frames])
            except ValueError:
                raise CorruptDatasetError(
                    f"{self.path}: episode {index}: {k!r} changes shape " f"between frames"
                ) from None
            kind = "image" if k.startswith(("rgb_", "depth_")) else "lowdim"
            streams[k] = Stream.from_array(
                k, ts, vals, kind=kind, rate=self.declared_rate, timestamps_derived=True
            )
        lang = [t for a, b, t in self.language if a <= end and b >= start]
        md = EpisodeMetadata(
            format=self.format,
            source=str(self.path),
            robot=self.robot,
            task=lang[0] if lang else None,
            language=lang,
            declared_rate=self.declared_rate,
            timestamps_derived=True,
            stats=self.stats,
            attrs={"frame_ids": ids, "episodes_from": self.episodes_from},
        )
        return Episode(index, streams, md)

    def describe(self) -> dict:
        """Dataset facts plus frame count and where the episode boundaries came from.

        Returns:
            dict: see :meth:`Dataset.describe`.
        """
        d = super().describe()
        d.update(
            frames=int(len(self.frame_ids)),
            episodes_from=self.episodes_from,
            timestamps="derived from the declared rate",
        )
        return d
