"""Video frames of :class:`robocache.RobotDataLoader` decoded in worker processes.

PyAV decodes one frame at a time under the GIL, so host threads do not scale; a pool of worker
processes does (like a PyTorch ``DataLoader``'s workers). The external source hands each
batch's video frames to the pool a few batches ahead and collects them when DALI asks for the
batch. A worker decodes exactly the frames the in-process path decodes (``Stream.read(j, j + 1)``,
the same seek and forward decode, keeping the file open between frames), so the frames are the
same; only which process decodes them changes.

Only video streams the host decodes go to the workers (:func:`host_video`: PyAV videos, and
videos DALI could decode that are neither decoded in the pipeline nor cached; the workers decode
them with PyAV). JPEG stills are decoded by DALI in the pipeline or on the host.
"""

from __future__ import annotations

import multiprocessing
from collections import OrderedDict
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from .host import nearest_frame

_STREAMS: dict = {}  # in a worker: (episode row, camera) -> Stream


def _init(streams: dict) -> None:
    import av  # noqa: F401, PLC0415  (import the decoder before the first batch)

    _STREAMS.update(streams)


def _decode(jobs: list) -> tuple:
    """Worker: ``[((episode row, camera), frame index)]`` -> the frames written to one file in
    shared memory (``/dev/shm``): ``(path, [(offset, shape)])``, in order; the loader maps the file
    (no copy through a pipe) and deletes it. Without room there: ``(None, frames)``."""
    frames = [pyav_frame(_STREAMS[key], j) for key, j in jobs]
    if _SHM_DIR is None:
        return None, frames
    path = None
    try:
        fd, path = tempfile.mkstemp(prefix="robocache-frames-", dir=_SHM_DIR)
        where, off = [], 0
        with os.fdopen(fd, "wb") as f:
            for x in frames:
                f.write(memoryview(x).cast("B"))
                where.append((off, x.shape))
                off += x.nbytes
        return path, where
    except OSError:  # /dev/shm full (a container's default 64 MB): send the frames through the pipe
        if path is not None:
            _unlink(path)
        return None, frames


def _load(result: tuple) -> list:
    """Main process: the frames of one task, as views of the mapped file (which is deleted)."""
    path, where = result
    if path is None:  # frames sent inline
        return where
    try:
        if not where or all(int(np.prod(s)) == 0 for _, s in where):
            return [np.zeros(s, np.uint8) for _, s in where]
        buf = np.memmap(path, np.uint8, mode="r")
        return [buf[o:o + int(np.prod(s))].reshape(s) for o, s in where]
    finally:
        _unlink(path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _drop(fut) -> None:
    """Done callback of a task nobody will collect: delete its file."""
    if not fut.cancelled() and fut.exception() is None and fut.result()[0] is not None:
        _unlink(fut.result()[0])


_SHM_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


_OPEN: OrderedDict = OrderedDict()  # in a worker: video path -> (container, stream), a few kept open
_KEEP_OPEN = 4


def pyav_frame(stream, j: int) -> np.ndarray:
    """Frame ``j`` of a camera stream: what ``stream.read(j, j + 1)[0]`` returns. For a PyAV video
    the container stays open between frames (opening it and starting the decoder costs about as
    much as decoding a frame): the same seek to the keyframe before the frame's time and the same
    forward decode to the frame within half a period as ``robocache.datasets.video.decode_pyav``;
    anything unexpected falls back to ``stream.read``, which also reports errors."""
    v = getattr(stream, "video", None)
    if v is not None and getattr(stream, "_values", None) is None and stream.loader == v.decode and 0 <= j < len(v.frame_times):
        try:
            got = _decode_open(str(v.path), float(v.frame_times[j]), float(v.info.fps))
            if got is not None:
                return got
        except Exception:  # noqa: BLE001 - the reference path below raises the dataset's own error
            _close(str(v.path))
    return np.ascontiguousarray(stream.read(j, j + 1)[0])


_frame = pyav_frame  # the name the tests use


def _decode_open(path: str, t: float, fps: float):
    import av  # noqa: PLC0415

    if path in _OPEN:
        _OPEN.move_to_end(path)
    else:
        while len(_OPEN) >= _KEEP_OPEN:
            _close(next(iter(_OPEN)))
        c = av.open(path)
        _OPEN[path] = (c, c.streams.video[0])
    c, s = _OPEN[path]
    tb = float(s.time_base)
    tol = 0.5 / fps if fps > 0 else 1e-3
    c.seek(max(int((t - tol) / tb), 0), stream=s, backward=True, any_frame=False)
    for frame in c.decode(s):
        if frame.pts is None:
            continue
        ft = frame.pts * tb
        if abs(ft - t) <= tol:
            return np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
        if ft > t + tol:
            return None  # passed it: let stream.read decide (and report)
    return None


def _close(path: str) -> None:
    c = _OPEN.pop(path, None)
    if c is not None:
        try:
            c[0].close()
        except Exception:  # noqa: BLE001
            pass


def _ready() -> int:
    return 0


def pyav_video(stream) -> bool:
    """Whether the pool decodes this camera stream (a video file decoded by PyAV)."""
    v = getattr(stream, "video", None)
    try:
        return v is not None and v.backend.name == "pyav"
    except Exception:  # noqa: BLE001 - unknown backend: keep it in-process
        return False


def host_video(cfg: dict, name: str, stream, cached=()) -> bool:
    """Whether the host decodes this camera stream with PyAV: a PyAV video, or a video DALI could
    decode that is neither decoded per window in the pipeline (``cfg["video_window"]``) nor cached."""
    if cfg["encoded"][name] or name in cached:
        return False
    if name in cfg.get("video", {}):
        return name not in cfg.get("video_window", {})
    return pyav_video(stream)


def video_streams(table: dict, cfg: dict, cached=()) -> dict:
    """``{(episode row, camera): Stream}`` of the streams the pool decodes (``cached``: cameras
    served from the frame cache)."""
    out = {}
    for ei, e in enumerate(table["episodes"]):
        for name in cfg["cameras"]:
            stream = e.cameras[name][0]
            if host_video(cfg, name, stream, cached):
                out[(ei, name)] = stream
    return out


class FramePool:
    """Worker processes decoding the video frames of batches ahead of time.

    Args:
        streams: :func:`video_streams` (sent to each worker once, when it starts).
        cfg: loader settings (``cameras``).
        workers: number of worker processes.
        start_method: ``"fork"`` (default: starts at once, needs no ``if __name__ == "__main__"``
            guard; the workers never touch CUDA, so a parent with a CUDA context is fine, as with a
            PyTorch ``DataLoader``), ``"spawn"`` or ``"forkserver"``.
        ahead: batches submitted ahead of the one DALI asks for.
        chunk: frames per task (a batch's frames are spread over the workers in tasks of this size).
    """

    def __init__(self, streams: dict, cfg: dict, workers: int, ahead: int, start_method: str = "fork", chunk: int = 2) -> None:
        self.streams, self.cfg, self.workers, self.ahead, self.chunk = streams, cfg, int(workers), int(ahead), int(chunk)
        self.ex = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(start_method), initializer=_init,
                                      initargs=(streams,))
        try:
            for f in [self.ex.submit(_ready) for _ in range(self.workers)]:
                f.result(timeout=120)
        except BaseException:
            self.close()
            raise

    def submit(self, table: dict, pos: np.ndarray, plan: tuple) -> "_Pending":
        """Start decoding the video frames of the windows at epoch positions ``pos``."""
        d = plan[0][pos]
        gr = table["row_offset"][d] + plan[1][pos]
        jobs, keys = [], []
        for p, ei, t in zip(pos.tolist(), table["episode"][gr].tolist(), table["anchor"][gr].tolist()):
            for name in self.cfg["cameras"]:
                if (ei, name) in self.streams:
                    jobs.append(((ei, name), nearest_frame(table["episodes"][ei].cameras[name][1], t)))
                    keys.append((name, p))
        tasks = [self.ex.submit(_decode, jobs[a:a + self.chunk]) for a in range(0, len(jobs), self.chunk)]
        return _Pending(keys, tasks)

    def close(self) -> None:
        self.ex.shutdown(wait=False, cancel_futures=True)


class _Pending:
    """Frames of one batch being decoded: :meth:`result` -> ``{(camera, position): frame}``."""

    def __init__(self, keys: list, tasks: list) -> None:
        self.keys, self.tasks = keys, tasks

    def result(self) -> dict:
        frames = []
        for k, t in enumerate(self.tasks):
            try:
                frames += _load(t.result())
            except BaseException:
                self.tasks = self.tasks[k + 1:]
                self.discard()
                raise
        self.tasks = []
        return dict(zip(self.keys, frames))

    def discard(self) -> None:
        """Frames nobody will collect (an iteration left early): cancel, or delete once decoded."""
        for t in self.tasks:
            if not t.cancel():
                t.add_done_callback(_drop)
        self.tasks = []
