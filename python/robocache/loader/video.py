"""Camera video decoded inside the :class:`robocache.RobotDataLoader` DALI pipeline.

A camera whose video files DALI decodes (``video_backend`` ``dali-gpu``: H.264/HEVC/VP9 on NVDEC;
``dali-cpu``: VP8/VP9/MJPEG on the CPU) goes through the pipeline as the encoded file plus the
index of the frame the window needs: per sample the external source hands over the file's bytes
(read once per file and kept, see :class:`EncodedFiles`) and ``[frame index]``, and
``fn.decoders.video(device="mixed" | "cpu", frames=...)`` decodes that frame; resize and colour
jitter follow on the same device. No host thread decodes video on this path. Everything else
(AV1, CPU-only machines with codecs DALI's CPU decoder lacks) stays with PyAV
(:mod:`robocache.loader.frames`).

The frame index is the one :meth:`robocache.datasets.video.VideoSource.decode` gives DALI:
``rint((frame time in the file - first frame time) * fps)``, so the frames are those the per-file
DALI path decodes; within DALI's YUV-to-RGB rounding they equal PyAV's.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

import numpy as np

DEFAULT_CACHE_BYTES = 4 << 30
"""Encoded video kept in memory by :class:`EncodedFiles` (``ROBOCACHE_VIDEO_CACHE_BYTES`` overrides)."""


def decode_device(stream, loader_device: str) -> str | None:
    """The ``fn.decoders.video`` device that decodes this camera stream inside the pipeline.

    Args:
        stream: a camera :class:`~robocache.datasets.Stream`.
        loader_device: the loader's device, ``"cuda"`` or ``"cpu"``.

    Returns:
        ``"mixed"`` (NVDEC; needs a ``cuda`` loader), ``"cpu"`` (DALI's CPU decoder, where the
        file's backend is ``dali-cpu``), or None: not a video file DALI decodes here (PyAV, stills,
        frames already in memory).
    """
    v = getattr(stream, "video", None)
    if v is None or getattr(stream, "_values", None) is not None or stream.loader != v.decode:
        return None
    try:
        name = v.backend.name
    except Exception:  # noqa: BLE001 - no backend fits: the host path reports it
        return None
    if name == "dali-gpu":
        return "mixed" if loader_device == "cuda" else None
    return "cpu" if name == "dali-cpu" else None


def camera_devices(episodes: list, cameras: dict, loader_device: str) -> dict:
    """``{camera: "mixed" | "cpu"}`` for the cameras decoded in the pipeline: those whose every
    episode's stream :func:`decode_device` gives the same device (a camera mixing codecs that need
    different decoders stays on the host path)."""
    out = {}
    for name in cameras:
        devs = {decode_device(e.cameras[name][0], loader_device) for e in episodes}
        if len(devs) == 1 and None not in devs:
            out[name] = devs.pop()
    return out


class EncodedFiles:
    """Encoded video files as ``uint8`` arrays, read once and kept (least recently used files
    dropped beyond ``max_bytes``). Thread-safe.

    Args:
        max_bytes: bytes kept (default :data:`DEFAULT_CACHE_BYTES` or ``ROBOCACHE_VIDEO_CACHE_BYTES``).
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        if max_bytes is None:
            max_bytes = int(os.environ.get("ROBOCACHE_VIDEO_CACHE_BYTES", DEFAULT_CACHE_BYTES))
        self.max_bytes = int(max_bytes)
        self._files: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, path: str) -> np.ndarray:
        """The file's bytes (read-only array)."""
        with self._lock:
            a = self._files.get(path)
            if a is not None:
                self._files.move_to_end(path)
                return a
        try:
            a = np.fromfile(path, np.uint8)
        except OSError as e:
            from ..datasets import DatasetNotFoundError  # noqa: PLC0415

            raise DatasetNotFoundError(f"RobotDataLoader: video file {path} cannot be read ({e.strerror or e}); it was "
                                       f"readable when the loader was built") from None
        if a.size == 0:
            from ..datasets import CorruptDatasetError  # noqa: PLC0415

            raise CorruptDatasetError(f"RobotDataLoader: video file {path} is empty; it held a video when the loader was built")
        a.flags.writeable = False
        with self._lock:
            if path not in self._files:
                self._files[path] = a
                self._bytes += a.nbytes
                while self._bytes > self.max_bytes and len(self._files) > 1:
                    _, old = self._files.popitem(last=False)
                    self._bytes -= old.nbytes
        return a


class CameraFiles:
    """Per episode row, for one camera decoded in the pipeline: its file, its frame times in the
    episode (for the nearest-frame lookup) and each frame's index in the file.

    Args:
        episodes: the loader's :class:`~robocache.loader.host.EpisodeData` rows.
        camera: camera name.
    """

    def __init__(self, episodes: list, camera: str) -> None:
        self.paths, self.times, self.index = [], [], []
        for e in episodes:
            stream, cts = e.cameras[camera]
            v = stream.video
            info = v.info
            self.paths.append(str(v.path))
            self.times.append(np.asarray(cts, np.float64))
            self.index.append(np.rint((v.frame_times - info.start_time_s) * info.fps).astype(np.int32))

    def frames(self, episode_rows: np.ndarray, anchors: np.ndarray) -> tuple:
        """``(paths [B], frame index in the file [B, 1] int32)`` of the frame nearest each anchor."""
        idx = np.empty((len(episode_rows), 1), np.int32)
        paths = []
        for k, (ei, t) in enumerate(zip(episode_rows.tolist(), anchors.tolist())):
            ts = self.times[ei]
            j = int(np.searchsorted(ts, t, side="left"))  # nearest, ties to the earlier (host.nearest_frame)
            if j >= len(ts):
                j = len(ts) - 1
            elif j > 0 and not (ts[j] - t) < (t - ts[j - 1]):
                j -= 1
            idx[k, 0] = self.index[ei][j]
            paths.append(self.paths[ei])
        return paths, idx
