"""robomimic and robosuite HDF5 demonstrations, read with h5py.

Layout: ``data/demo_N/`` groups, one per demonstration, each with ``states``, ``actions`` and, in
robomimic files, ``obs/*``, ``next_obs/*``, ``rewards``, ``dones``; robosuite 0.x files have
``joint_velocities``, ``gripper_actuations``, ... instead of ``actions``. Attributes: ``data``
has ``env`` and ``env_info`` (robosuite) or ``env_args`` (robomimic, JSON with
``env_kwargs.control_freq``); each demo may have ``num_samples`` and ``model_file``.

Every dataset of a demo whose first dimension is the demo's length becomes a stream (``obs/x`` ->
``obs.x``); zero-width ones are skipped. ``uint8`` datasets of shape ``[T, H, W, 3]`` are camera
streams. HDF5 demos store no timestamps: they are ``k / rate`` with the rate from ``rate=``, the
file's ``control_freq``, or robosuite's default for the file's version (20 Hz for 1.x, 100 Hz for
0.x), and ``timestamps_derived`` is set.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from . import (
    CorruptDatasetError,
    Dataset,
    DatasetNotFoundError,
    Episode,
    EpisodeMetadata,
    Stream,
    UnknownFormatError,
    derived_timestamps,
)

DEFAULT_RATE_V1 = 20.0
DEFAULT_RATE_V0 = 100.0


def _h5py():
    try:
        import h5py  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - exercised only without h5py
        raise ImportError("robomimic/robosuite datasets need h5py: pip install h5py") from e
    return h5py


def _attr(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _json_attr(attrs: dict, key: str) -> dict:
    raw = attrs.get(key)
    if not isinstance(raw, str):
        return {}
    try:
        val = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return val if isinstance(val, dict) else {}


def _demo_sort_key(name: str) -> tuple:
    m = re.search(r"(\d+)$", name)
    return (int(m.group(1)) if m else 1 << 62, name)


class RobomimicDataset(Dataset):
    """A robomimic or robosuite ``demo.hdf5``.

    Args:
        path: the HDF5 file, or a folder holding exactly one.
        rate: control rate in Hz (default: from the file, else robosuite's default).

    Raises:
        DatasetNotFoundError: when the file is missing.
        CorruptDatasetError: when it is not HDF5 or has no ``data`` group of demos.
        UnknownFormatError: when a folder holds no or several HDF5 files.
    """

    format = "robomimic"

    def __init__(self, path: str | Path, rate: float | None = None) -> None:
        p = Path(path)
        if p.is_dir():
            files = sorted(p.glob("*.hdf5")) + sorted(p.glob("*.h5"))
            if len(files) != 1:
                raise UnknownFormatError(
                    f"{p}: expected one .hdf5 file, found "
                    f"{', '.join(f.name for f in files) if files else 'none'}; pass the file"
                )
            p = files[0]
        if not p.is_file():
            raise DatasetNotFoundError(f"{p}: no such HDF5 file")
        super().__init__(p)
        h5py = _h5py()
        try:
            f = h5py.File(p, "r")
        except OSError as e:
            raise CorruptDatasetError(f"{p}: not a readable HDF5 file ({e})") from None
        with f:
            if "data" not in f or not isinstance(f["data"], h5py.Group):
                raise CorruptDatasetError(
                    f"{p}: no 'data' group; not a robomimic/robosuite file "
                    f"(top level: {', '.join(f.keys()) or 'empty'})"
                )
            data = f["data"]
            self.attrs = {k: _attr(v) for k, v in data.attrs.items()}
            self.demos = sorted(
                (k for k in data.keys() if isinstance(data[k], h5py.Group)), key=_demo_sort_key
            )
            self.masks = {k: [_attr(x) for x in f["mask"][k][()]] for k in f.get("mask", {})}
        if not self.demos:
            raise CorruptDatasetError(f"{p}: the 'data' group holds no demos")
        env_info = _json_attr(self.attrs, "env_info")
        env_args = _json_attr(self.attrs, "env_args")
        kwargs = (
            env_args.get("env_kwargs", {}) if isinstance(env_args.get("env_kwargs"), dict) else {}
        )
        self.env = self.attrs.get("env") or env_args.get("env_name") or env_info.get("env_name")
        robots = env_info.get("robots") or kwargs.get("robots")
        self.robot = ", ".join(robots) if isinstance(robots, list) else robots
        if self.robot is None and isinstance(self.env, str):  # robosuite 0.x: "SawyerLift"
            m = re.match(r"^(Sawyer|Panda|Baxter|Jaco|IIWA|UR5e|Kinova3)", self.env)
            self.robot = m.group(1) if m else None
        version = str(self.attrs.get("repository_version", ""))
        freq = kwargs.get("control_freq") or env_info.get("control_freq")
        if rate is not None:
            self.declared_rate, self.rate_source = float(rate), "given"
        elif freq:
            self.declared_rate, self.rate_source = float(freq), "control_freq in the file"
        elif version.startswith("0."):
            self.declared_rate, self.rate_source = DEFAULT_RATE_V0, f"robosuite {version} default"
        else:
            self.declared_rate = DEFAULT_RATE_V1
            self.rate_source = f"robosuite {version or '1.x'} default"
        self.episode_indices = list(range(len(self.demos)))
        self.declared_episodes = len(self.demos)

    def _load_episode(self, index: int) -> Episode:
        h5py = _h5py()
        name = self.demos[index]
        ctx = f"{self.path}: episode {index} ({name})"
        try:
            f = h5py.File(self.path, "r")
        except OSError as e:
            raise CorruptDatasetError(f"{ctx}: not a readable HDF5 file ({e})") from None
        with f:
            g = f["data"][name]
            dsets: dict = {}
            g.visititems(
                lambda k, o: dsets.__setitem__(k, o) if isinstance(o, h5py.Dataset) else None
            )
            n = g.attrs.get("num_samples")
            if n is None:
                for key in ("actions", "states"):
                    if key in dsets:
                        n = dsets[key].shape[0]
                        break
                else:
                    n = max((d.shape[0] for d in dsets.values() if d.ndim), default=0)
            n = int(n)
            ts = derived_timestamps(n, self.declared_rate)  # type: ignore[arg-type]
            streams: dict = {}
            skipped = []
            for key, d in dsets.items():
                if d.ndim == 0:
                    continue
                if d.shape[0] != n:
                    if key in ("actions", "states"):
                        raise CorruptDatasetError(
                            f"{ctx}: {key!r} has {d.shape[0]} rows, the demo " f"has {n} samples"
                        )
                    skipped.append(key)
                    continue
                if d.size == 0:
                    skipped.append(key)
                    continue
                try:
                    vals = d[()]
                except OSError as e:
                    raise CorruptDatasetError(
                        f"{ctx}: dataset {key!r} is unreadable: {e}"
                    ) from None
                sname = key.replace("/", ".")
                kind = (
                    "image"
                    if vals.dtype == np.uint8 and vals.ndim == 4 and vals.shape[-1] in (1, 3)
                    else "lowdim"
                )
                streams[sname] = Stream.from_array(
                    sname,
                    ts,
                    vals,
                    kind=kind,
                    rate=self.declared_rate,
                    timestamps_derived=True,
                    attrs={"hdf5_path": f"data/{name}/{key}"},
                )
            attrs = {k: _attr(v) for k, v in g.attrs.items()}
        md = EpisodeMetadata(
            format=self.format,
            source=str(self.path),
            robot=self.robot,
            task=self.env,
            language=[],
            declared_rate=self.declared_rate,
            timestamps_derived=True,
            attrs={"demo": name, "skipped": skipped, "rate_source": self.rate_source, **attrs},
        )
        return Episode(index, streams, md)

    def describe(self) -> dict:
        """Dataset facts plus environment, rate source and filter masks.

        Returns:
            dict: see :meth:`Dataset.describe`.
        """
        d = super().describe()
        d.update(
            env=self.env,
            rate_source=self.rate_source,
            demos=self.demos[:5] + (["..."] if len(self.demos) > 5 else []),
            masks=sorted(self.masks),
            timestamps="derived from the declared rate",
        )
        return d
