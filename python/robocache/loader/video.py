"""Camera video decoded inside the :class:`robocache.RobotDataLoader` DALI pipeline.

A camera whose video files DALI decodes (``video_backend`` ``dali-gpu``: H.264/HEVC/VP9 on NVDEC;
``dali-cpu``: VP8/VP9/MJPEG on the CPU) goes through the pipeline as the encoded file plus the
index of the frame the window needs: per sample the external source hands over the file's bytes
(read once per file and kept, see :class:`EncodedFiles`) and ``[frame index]``, and
``fn.decoders.video(device="mixed" | "cpu", frames=...)`` decodes that frame; resize and colour
jitter follow on the same device. No host thread decodes video on this path. Everything else
(AV1, CPU-only machines with codecs DALI's CPU decoder lacks) stays with PyAV
(:mod:`robocache.loader.frames`).

What goes in per sample is the group of pictures holding the frame, cut out as a tiny stream
(:mod:`robocache.loader.clips`: DALI 2.4 decodes a whole file from its first frame on), for H.264,
HEVC, VP8 and VP9; other codecs go in as the whole file with the frame index
:meth:`robocache.datasets.video.VideoSource.decode` gives DALI
(``rint((frame time in the file - first frame time) * fps)``). Within DALI's YUV-to-RGB rounding
the frames equal PyAV's.
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


def window_devices(episodes: list, devices: dict) -> dict:
    """The cameras of :func:`camera_devices` decoded per window inside the pipeline (without a frame
    cache): DALI's CPU decoder, or NVDEC where ``video_backend="dali-gpu"`` was asked for explicitly.
    With ``auto``, a GPU-decodable camera is decoded per window by PyAV worker processes instead
    (measured on an H200: ~60 samples/s through ``fn.decoders.video`` per window, DALI 2.4 setting up
    a decoder per sample, against several hundred for 16 PyAV workers); with a frame cache it is
    decoded once by NVDEC."""
    out = {}
    for cam, dev in devices.items():
        if dev == "cpu" or all(getattr(e.cameras[cam][0].video, "requested_backend", "auto") == "dali-gpu" for e in episodes):
            out[cam] = dev
    return out


class EncodedFiles:
    """Encoded video kept in memory for the pipeline, least recently used files dropped beyond
    ``max_bytes``: whole files (``uint8`` arrays, read once) and, for the codecs of
    :func:`robocache.loader.clips.clip_codec`, each file's :class:`~robocache.loader.clips.ClipIndex`.
    Thread-safe.

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

    def _cached(self, key):
        with self._lock:
            a = self._files.get(key)
            if a is not None:
                self._files.move_to_end(key)
            return a

    def _keep(self, key, value, nbytes: int):
        with self._lock:
            if key in self._files:
                return self._files[key]
            self._files[key] = value
            self._bytes += nbytes
            while self._bytes > self.max_bytes and len(self._files) > 1:
                k, old = self._files.popitem(last=False)
                self._bytes -= old.nbytes
        return value

    def get(self, path: str) -> np.ndarray:
        """The whole file's bytes (read-only array)."""
        a = self._cached(path)
        if a is not None:
            return a
        try:
            a = np.fromfile(path, np.uint8)
        except OSError as e:
            raise _gone(path, e) from None
        if a.size == 0:
            from ..datasets import CorruptDatasetError  # noqa: PLC0415

            raise CorruptDatasetError(f"RobotDataLoader: video file {path} is empty; it held a video when the loader was built")
        a.flags.writeable = False
        return self._keep(path, a, a.nbytes)

    def clips(self, path: str):
        """The file's :class:`~robocache.loader.clips.ClipIndex` (one demux pass on first use)."""
        from .clips import ClipIndex  # noqa: PLC0415

        key = ("clips", path)
        c = self._cached(key)
        if c is not None:
            return c
        try:
            c = ClipIndex(path, "RobotDataLoader: ")
        except FileNotFoundError as e:
            raise _gone(path, e) from None
        return self._keep(key, c, c.nbytes)


def _gone(path: str, e: OSError):
    from ..datasets import DatasetNotFoundError  # noqa: PLC0415

    return DatasetNotFoundError(f"RobotDataLoader: video file {path} cannot be read ({e.strerror or e}); it was readable "
                                f"when the loader was built")


def use_clips() -> bool:
    """GOP clips for the codecs that take them (default), or whole files (``ROBOCACHE_VIDEO_CLIPS=0``)."""
    return os.environ.get("ROBOCACHE_VIDEO_CLIPS", "1").strip().lower() not in ("0", "false", "no", "off")


class CameraFiles:
    """Per episode row, for one camera decoded in the pipeline: its file, the episode's frame times
    (for the nearest-frame lookup) and where each frame is in the file.

    Args:
        episodes: the loader's :class:`~robocache.loader.host.EpisodeData` rows.
        camera: camera name.
        cache: the :class:`EncodedFiles` the bytes come from.
    """

    def __init__(self, episodes: list, camera: str, cache: EncodedFiles) -> None:
        from .clips import clip_codec  # noqa: PLC0415

        self.cache, self.camera = cache, camera
        self.paths, self.times, self.index, self.file_times, self.tol, self.clip = [], [], [], [], [], []
        clips = use_clips()
        for e in episodes:
            stream, cts = e.cameras[camera]
            v = stream.video
            info = v.info
            self.paths.append(str(v.path))
            self.times.append(np.asarray(cts, np.float64))
            self.index.append(np.rint((v.frame_times - info.start_time_s) * info.fps).astype(np.int32))
            self.file_times.append(np.asarray(v.frame_times, np.float64))
            self.tol.append(0.5 / info.fps if info.fps > 0 else 1e-3)
            self.clip.append(clips and clip_codec(info.codec))
        self.ranks: list = [None] * len(episodes)  # per row: display rank in the file of each episode frame (clips)

    def _ranks(self, ei: int, ci) -> np.ndarray:
        r = self.ranks[ei]
        if r is None:
            r = ci.frame_at(self.file_times[ei], self.tol[ei])
            self.ranks[ei] = r
        return r

    def inputs(self, episode_rows: np.ndarray, anchors: np.ndarray) -> tuple:
        """``(encoded arrays [B], frame index in each [B, 1] int32, paths [B])`` for the frame
        nearest each anchor: the frame's GOP clip (see :mod:`robocache.loader.clips`) or the whole
        file."""
        from ..datasets import CorruptDatasetError  # noqa: PLC0415

        idx = np.empty((len(episode_rows), 1), np.int32)
        arrays, paths = [], []
        for k, (ei, t) in enumerate(zip(episode_rows.tolist(), anchors.tolist())):
            ts = self.times[ei]
            j = int(np.searchsorted(ts, t, side="left"))  # nearest, ties to the earlier (host.nearest_frame)
            if j >= len(ts):
                j = len(ts) - 1
            elif j > 0 and not (ts[j] - t) < (t - ts[j - 1]):
                j -= 1
            path = self.paths[ei]
            if self.clip[ei]:
                ci = self.cache.clips(path)
                r = int(self._ranks(ei, ci)[j])
                if r < 0:
                    raise CorruptDatasetError(f"RobotDataLoader: camera {self.camera!r}: video {path} has no frame within "
                                              f"{self.tol[ei] * 1e3:.1f} ms of t={self.file_times[ei][j]:.4f} s")
                arr, idx[k, 0] = ci.clip(r)
            else:
                arr, idx[k, 0] = self.cache.get(path), self.index[ei][j]
            arrays.append(arr)
            paths.append(path)
        return arrays, idx, paths
