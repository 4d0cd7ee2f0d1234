"""Video and image decoding for the dataset adapters: only the frames a window needs.

Two decoders, chosen per file from its codec and the machine, and reported:

* ``dali-gpu``: DALI's ``fn.decoders.video`` with ``device="mixed"`` (NVDEC). DALI 2.4 decodes
  H.264, HEVC and VP9 there, not AV1, LeRobot's default codec (checked on an H100; see
  ``shared/BUILD-NOTES.md``).
* ``pyav``: PyAV (FFmpeg) on the CPU. Its wheels bundle dav1d, so it decodes AV1.
* ``dali-cpu``: DALI's CPU video decoder, which handles only VP8, VP9 and MJPEG; never chosen
  automatically, available by name (tests use it to exercise the DALI decode path without a GPU).

``auto`` picks ``dali-gpu`` when a CUDA device is visible and the codec is in
:data:`GPU_CODECS`, and ``pyav`` otherwise. ``ROBOCACHE_VIDEO_BACKEND`` overrides the choice.

Frames are addressed by presentation time in seconds (LeRobot's model: frame ``i`` of an episode
sits at ``from_timestamp + timestamp[i]`` in its file). Frames come back as ``uint8 [N, H, W, 3]``
RGB. Encoded still images (RLDS JPEGs, LeRobot ``image`` features) are decoded by DALI's
``fn.decoders.image``, on the GPU (``device="mixed"``) when one is present.

Writing (for ``robocache convert``) goes through PyAV: :class:`VideoWriter`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from . import CorruptDatasetError, DatasetNotFoundError

GPU_CODECS = frozenset({"h264", "hevc", "vp9"})
DALI_CPU_CODECS = frozenset({"vp8", "vp9", "mjpeg"})
BACKENDS = ("auto", "pyav", "dali-gpu", "dali-cpu")
# codec name -> (PyAV encoder, encoder options)
ENCODERS = {
    "h264": ("libx264", {"crf": "18", "preset": "veryfast"}),
    "hevc": ("libx265", {"crf": "20", "preset": "veryfast", "x265-params": "log-level=error"}),
    "vp9": ("libvpx-vp9", {"crf": "31", "b": "0", "deadline": "realtime", "cpu-used": "8"}),
    "av1": ("libsvtav1", {"crf": "30", "preset": "10"}),
}
_CODEC_ALIASES = {
    "libdav1d": "av1",
    "libaom-av1": "av1",
    "av1": "av1",
    "h265": "hevc",
    "libx264": "h264",
    "avc": "h264",
    "libvpx-vp9": "vp9",
    "libvpx": "vp8",
}


def _av():
    try:
        import av  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - exercised only without PyAV
        raise ImportError(
            "robocache video decoding on the CPU needs PyAV: pip install av "
            "(see requirements-datasets.txt)"
        ) from e
    return av


def canonical_codec(name: str) -> str:
    """FFmpeg codec or decoder name to the codec it implements (``libdav1d`` -> ``av1``).

    Args:
        name: codec or decoder name.

    Returns:
        str: canonical codec name, lower case.
    """
    n = (name or "").lower()
    return _CODEC_ALIASES.get(n, n)


@functools.lru_cache(maxsize=1)
def gpu_count() -> int:
    """Number of CUDA devices DALI sees (0 without a GPU or driver).

    Returns:
        int: device count.
    """
    try:
        from nvidia.dali import backend  # noqa: PLC0415

        return int(backend.GetCUDADeviceCount())
    except Exception:  # noqa: BLE001 - no driver, no DALI: no GPU
        return 0


def local_gpu() -> int:
    """The CUDA device for DALI decoding in this process (``dali-gpu`` video, ``mixed`` images): a
    data-parallel rank decodes on its own GPU, not on GPU 0. ``torch.cuda.current_device()`` when torch
    has initialised CUDA (a training script that called ``torch.cuda.set_device``), else ``LOCAL_RANK``
    (``torchrun``) when this process sees more than that many devices, else 0.

    Returns:
        int: device index.
    """
    import sys  # noqa: PLC0415

    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_initialized():
            return int(torch.cuda.current_device())
    except Exception:  # noqa: BLE001 - a torch without CUDA
        pass
    try:
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        return 0
    return local if 0 <= local < gpu_count() else 0


@dataclasses.dataclass(frozen=True)
class BackendChoice:
    """The decoder picked for a video file and why.

    Attributes:
        name: ``"pyav"``, ``"dali-gpu"`` or ``"dali-cpu"``.
        reason: one line for logs and ``robocache inspect``.
    """

    name: str
    reason: str


def choose_backend(codec: str, backend: str = "auto", gpus: int | None = None) -> BackendChoice:
    """Pick the decoder for a codec.

    Args:
        codec: canonical codec name (see :func:`canonical_codec`).
        backend: ``"auto"`` or a backend name; ``ROBOCACHE_VIDEO_BACKEND`` overrides ``"auto"``.
        gpus: number of GPUs (default: :func:`gpu_count`).

    Returns:
        BackendChoice: the decoder and the reason.

    Raises:
        ValueError: for an unknown backend, or one that cannot decode ``codec`` here.
    """
    if backend == "auto":
        backend = os.environ.get("ROBOCACHE_VIDEO_BACKEND", "auto") or "auto"
    if backend not in BACKENDS:
        raise ValueError(f"video backend {backend!r} is not one of {', '.join(BACKENDS)}")
    gpus = gpu_count() if gpus is None else gpus
    codec = canonical_codec(codec)
    if backend == "auto":
        if gpus > 0 and codec in GPU_CODECS:
            return BackendChoice("dali-gpu", f"{codec} decodes on the GPU (DALI, NVDEC)")
        why = "no GPU" if gpus == 0 else f"DALI's GPU decoder does not take {codec}"
        return BackendChoice("pyav", f"{why}: PyAV on the CPU")
    if backend == "dali-gpu":
        if gpus == 0:
            raise ValueError("video backend 'dali-gpu' needs a CUDA GPU; none is visible")
        if codec not in GPU_CODECS:
            raise ValueError(
                f"video backend 'dali-gpu' cannot decode {codec}; it takes "
                f"{', '.join(sorted(GPU_CODECS))}"
            )
    if backend == "dali-cpu" and codec not in DALI_CPU_CODECS:
        raise ValueError(
            f"video backend 'dali-cpu' cannot decode {codec}; DALI's CPU decoder "
            f"takes {', '.join(sorted(DALI_CPU_CODECS))}"
        )
    return BackendChoice(backend, "requested")


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """Container facts about a video file.

    Attributes:
        codec: canonical codec name.
        width: frame width.
        height: frame height.
        fps: average frame rate.
        num_frames: frame count (container header, or counted packets when it has none).
        start_time_s: presentation time of the first frame.
        pix_fmt: pixel format.
    """

    codec: str
    width: int
    height: int
    fps: float
    num_frames: int
    start_time_s: float
    pix_fmt: str


def probe(path: str | Path, context: str = "") -> VideoInfo:
    """Read a video file's header (and count packets where the header has no frame count).

    Args:
        path: video file.
        context: text naming the episode and key, for error messages.

    Returns:
        VideoInfo: the file's facts.

    Raises:
        DatasetNotFoundError: when the file is missing.
        CorruptDatasetError: when it is not a readable video.
    """
    av = _av()
    p = Path(path)
    where = f"{context}: " if context else ""
    if not p.is_file():
        raise DatasetNotFoundError(f"{where}video file {p} is missing")
    try:
        with av.open(str(p)) as c:
            if not c.streams.video:
                raise CorruptDatasetError(f"{where}{p} has no video stream")
            s = c.streams.video[0]
            n = int(s.frames or 0)
            if n == 0:
                n = sum(1 for pk in c.demux(s) if pk.size > 0)
            tb = s.time_base or Fraction(1, 1)
            start = float((s.start_time or 0) * tb)
            rate = s.average_rate or s.guessed_rate or 0
            return VideoInfo(
                codec=canonical_codec(s.codec_context.codec.name),
                width=s.width,
                height=s.height,
                fps=float(rate),
                num_frames=n,
                start_time_s=start,
                pix_fmt=str(s.codec_context.pix_fmt),
            )
    except av.error.FFmpegError as e:
        raise CorruptDatasetError(f"{where}{p} is not a readable video: {e}") from None


class VideoSource:
    """Frames of one camera of one episode, decoded on demand.

    Args:
        path: video file.
        frame_times: ``[T]`` presentation time in the file of each of the episode's frames, s.
        fps: declared frame rate.
        context: ``"dataset X episode N key K"``, for error messages.
        backend: ``"auto"``, ``"pyav"``, ``"dali-gpu"`` or ``"dali-cpu"``.
    """

    def __init__(
        self,
        path: str | Path,
        frame_times: np.ndarray,
        fps: float,
        context: str = "",
        backend: str = "auto",
    ) -> None:
        self.path = Path(path)
        self.frame_times = np.asarray(frame_times, dtype=np.float64)
        self.fps = float(fps)
        self.context = context
        self.requested_backend = backend
        self._info: VideoInfo | None = None
        self._choice: BackendChoice | None = None

    @property
    def info(self) -> VideoInfo:
        """The file's :class:`VideoInfo` (read on first use)."""
        if self._info is None:
            self._info = probe(self.path, self.context)
        return self._info

    @property
    def backend(self) -> BackendChoice:
        """The decoder used for this file and why."""
        if self._choice is None:
            self._choice = choose_backend(self.info.codec, self.requested_backend)
        return self._choice

    def check(self) -> None:
        """Check that the file holds a frame for every timestamp of the episode.

        Raises:
            DatasetNotFoundError: when the file is missing.
            CorruptDatasetError: when the file has fewer frames than the table has rows.
        """
        info = self.info
        if len(self.frame_times) == 0:
            return
        last = int(round((self.frame_times[-1] - info.start_time_s) * info.fps))
        first = int(round((self.frame_times[0] - info.start_time_s) * info.fps))
        if first < 0 or last >= info.num_frames:
            raise CorruptDatasetError(
                f"{self.context}: video {self.path} has {info.num_frames} frames but the table "
                f"needs frames {first}..{last} ({len(self.frame_times)} rows)"
            )

    def decode(self, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Decode the episode's frames ``indices`` (all when ``None``).

        Args:
            indices: frame indices within the episode, any order, repeats allowed.

        Returns:
            np.ndarray: ``uint8 [len(indices), H, W, 3]`` RGB.

        Raises:
            DatasetNotFoundError: when the file is missing.
            CorruptDatasetError: when frames are missing or undecodable.
        """
        idx = np.arange(len(self.frame_times)) if indices is None else np.asarray(indices, int)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self.frame_times)):
            raise CorruptDatasetError(
                f"{self.context}: frame indices {idx.min()}..{idx.max()} outside the episode's "
                f"{len(self.frame_times)} frames"
            )
        self.check()
        info = self.info
        if idx.size == 0:
            return np.zeros((0, info.height, info.width, 3), np.uint8)
        times = self.frame_times[idx]
        if self.backend.name == "pyav":
            return decode_pyav(self.path, times, info.fps, self.context)
        file_idx = np.rint((times - info.start_time_s) * info.fps).astype(np.int32)
        device = "mixed" if self.backend.name == "dali-gpu" else "cpu"
        return decode_dali(self.path, file_idx, device, self.context)


def decode_pyav(path: str | Path, times: np.ndarray, fps: float, context: str = "") -> np.ndarray:
    """Decode the frames shown at ``times`` with PyAV, seeking to the keyframe before each run.

    Args:
        path: video file.
        times: presentation times in seconds, any order.
        fps: frame rate (the matching tolerance is half a frame period).
        context: text for error messages.

    Returns:
        np.ndarray: ``uint8 [len(times), H, W, 3]`` RGB, in the order of ``times``.

    Raises:
        CorruptDatasetError: when no frame is within half a period of a requested time.
    """
    av = _av()
    times = np.asarray(times, dtype=np.float64)
    uniq, inverse = np.unique(times, return_inverse=True)
    inverse = inverse.reshape(-1)
    slots = np.split(
        np.argsort(inverse, kind="stable"),
        np.cumsum(np.bincount(inverse, minlength=len(uniq)))[:-1],
    )
    tol = 0.5 / fps if fps > 0 else 1e-3
    found = np.zeros(len(uniq), bool)
    out = None
    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            tb = float(s.time_base)
            k = 0
            while k < len(uniq):
                # one run: seek to the keyframe before uniq[k], decode forward through the run
                c.seek(max(int((uniq[k] - tol) / tb), 0), stream=s, backward=True, any_frame=False)
                for frame in c.decode(s):
                    if frame.pts is None:
                        continue
                    t = frame.pts * tb
                    while k < len(uniq) and t > uniq[k] + tol:
                        k += 1  # passed a wanted time without a frame near it: reported below
                    if k < len(uniq) and abs(t - uniq[k]) <= tol:
                        rgb = frame.to_ndarray(format="rgb24")
                        if out is None:
                            out = np.empty((len(times),) + rgb.shape, np.uint8)
                        while k < len(uniq) and abs(t - uniq[k]) <= tol:
                            out[slots[k]] = rgb
                            found[k] = True
                            k += 1
                    if k >= len(uniq) or uniq[k] - t > 2.0:
                        break  # done, or far ahead: seek again rather than decode all between
                else:
                    break  # end of stream
    except av.error.FFmpegError as e:
        raise CorruptDatasetError(f"{context}: cannot decode {path}: {e}") from None
    missing = uniq[~found]
    if len(missing):
        raise CorruptDatasetError(
            f"{context}: video {path} has no frame within {tol * 1e3:.1f} ms of "
            f"t={missing[0]:.4f} s ({len(missing)} of {len(uniq)} requested frames missing)"
        )
    return out


_PIPES: dict = {}
_PIPES_LOCK = threading.Lock()


def _video_pipe(device: str, gpu: int | None):
    from nvidia.dali import fn, pipeline_def, types  # noqa: PLC0415

    key = ("video", device, gpu)
    with _PIPES_LOCK:
        if key not in _PIPES:
            dec = getattr(fn.decoders, "video", None) or fn.experimental.decoders.video

            @pipeline_def(
                batch_size=1,
                num_threads=2,
                device_id=gpu,
                prefetch_queue_depth=1,
                exec_dynamic=True,
            )
            def pipe():
                enc = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1, no_copy=False)
                frames = fn.external_source(name="frames", dtype=types.INT32, ndim=1)
                return dec(enc, device=device, frames=frames)

            p = pipe()
            p.build()
            _PIPES[key] = (p, threading.Lock())
        return _PIPES[key]


@functools.lru_cache(maxsize=4)
def _file_bytes(path: str, mtime: float) -> np.ndarray:
    return np.fromfile(path, dtype=np.uint8)


def decode_dali(
    path: str | Path, file_indices: np.ndarray, device: str = "mixed", context: str = ""
) -> np.ndarray:
    """Decode frames by index with DALI's video decoder.

    Args:
        path: video file.
        file_indices: frame indices within the file, any order.
        device: ``"mixed"`` (GPU, NVDEC) or ``"cpu"``.
        context: text for error messages.

    Returns:
        np.ndarray: ``uint8 [N, H, W, 3]`` RGB on the host.

    Raises:
        CorruptDatasetError: when DALI cannot decode the file.
    """
    p = str(path)
    data = _file_bytes(p, os.path.getmtime(p))
    gpu = local_gpu() if device == "mixed" else None
    pipe, lock = _video_pipe(device, gpu)
    with lock:
        try:
            pipe.feed_input("encoded", [data])
            pipe.feed_input("frames", [np.asarray(file_indices, np.int32)])
            (out,) = pipe.run()
        except RuntimeError as e:
            _PIPES.pop(("video", device, gpu), None)  # a failed DALI pipeline is not reusable
            raise CorruptDatasetError(
                f"{context}: DALI ({device}) cannot decode {p}: " f"{str(e).splitlines()[0]}"
            ) from None
    if hasattr(out, "as_cpu"):
        out = out.as_cpu()
    return np.array(out[0])


def _image_pipe(device: str, batch: int, gpu: int | None):
    from nvidia.dali import fn, pipeline_def, types  # noqa: PLC0415

    key = ("image", device, batch, gpu)
    with _PIPES_LOCK:
        if key not in _PIPES:

            @pipeline_def(
                batch_size=batch,
                num_threads=2,
                device_id=gpu,
                prefetch_queue_depth=1,
                exec_dynamic=True,
            )
            def pipe():
                enc = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)
                return fn.decoders.image(enc, device=device, output_type=types.RGB)

            p = pipe()
            p.build()
            _PIPES[key] = (p, threading.Lock())
        return _PIPES[key]


def image_device(device: str = "auto") -> str:
    """DALI device for image decoding: ``"mixed"`` with a GPU, ``"cpu"`` without.

    Args:
        device: ``"auto"``, ``"mixed"``/``"gpu"`` or ``"cpu"``.

    Returns:
        str: ``"mixed"`` or ``"cpu"``.
    """
    if device == "auto":
        return "mixed" if gpu_count() > 0 else "cpu"
    return "mixed" if device in ("mixed", "gpu") else "cpu"


def decode_images(
    encoded: Sequence[bytes], device: str = "auto", context: str = "", batch: int = 32
) -> np.ndarray:
    """Decode JPEG/PNG stills with DALI's ``fn.decoders.image`` into one stacked array.

    Args:
        encoded: encoded images, all of one size.
        device: ``"auto"`` (GPU when present), ``"mixed"`` or ``"cpu"``.
        context: text for error messages.
        batch: DALI batch size.

    Returns:
        np.ndarray: ``uint8 [N, H, W, 3]``.

    Raises:
        CorruptDatasetError: when an image does not decode or sizes differ.
    """
    dev = image_device(device)
    gpu = local_gpu() if dev == "mixed" else None
    pipe, lock = _image_pipe(dev, batch, gpu)
    frames = []
    with lock:
        for k in range(0, len(encoded), batch):
            chunk = [np.frombuffer(bytes(b), np.uint8) for b in encoded[k : k + batch]]
            empty = [j for j, b in enumerate(chunk) if b.size == 0]
            if empty:
                raise CorruptDatasetError(f"{context}: image {k + empty[0]} is empty")
            try:
                pipe.feed_input("encoded", chunk)
                (out,) = pipe.run()
            except RuntimeError as e:
                _PIPES.pop(("image", dev, batch, gpu), None)
                raise CorruptDatasetError(
                    f"{context}: images {k}..{k + len(chunk) - 1} do not "
                    f"decode: {str(e).splitlines()[0]}"
                ) from None
            if hasattr(out, "as_cpu"):
                out = out.as_cpu()
            frames.extend(np.array(out[j]) for j in range(len(chunk)))
    if not frames:
        return np.zeros((0, 0, 0, 3), np.uint8)
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise CorruptDatasetError(f"{context}: images have different sizes {sorted(shapes)}")
    return np.stack(frames)


class VideoWriter:
    """Encode RGB frames to a video file with PyAV (used by ``robocache convert``).

    Args:
        path: output file (``.mp4``).
        codec: ``"h264"``, ``"hevc"``, ``"vp9"`` or ``"av1"``.
        fps: frame rate; frame ``k`` is shown at ``k / fps``.
        width: frame width (even).
        height: frame height (even).
        gop: keyframe interval; small values make window decoding cheap (LeRobot uses 2).
        crf: quality override for the encoder.

    Raises:
        ValueError: for an unknown codec, an encoder this PyAV lacks, or odd frame sizes.
    """

    def __init__(
        self,
        path: str | Path,
        codec: str,
        fps: float,
        width: int,
        height: int,
        gop: int = 2,
        crf: int | None = None,
    ) -> None:
        av = _av()
        codec = canonical_codec(codec)
        if codec not in ENCODERS:
            raise ValueError(f"cannot encode {codec!r}; choose one of {', '.join(ENCODERS)}")
        if width % 2 or height % 2:
            raise ValueError(f"{path}: yuv420p video needs even sizes, got {width}x{height}")
        encoder, opts = ENCODERS[codec]
        opts = dict(opts)
        if crf is not None:
            opts["crf"] = str(crf)
        self.codec, self.fps, self.frames = codec, float(fps), 0
        self._c = av.open(str(path), "w")
        rate = Fraction(fps).limit_denominator(1001)
        try:
            self._s = self._c.add_stream(encoder, rate=rate, options=opts)
        except (av.error.FFmpegError, ValueError) as e:
            self._c.close()
            raise ValueError(f"this PyAV build has no working {encoder} encoder: {e}") from None
        self._s.width, self._s.height, self._s.pix_fmt = width, height, "yuv420p"
        self._s.gop_size = max(int(gop), 1)
        self._s.codec_context.time_base = Fraction(1, 1) / rate
        self._av = av

    def write(self, frames: Iterable[np.ndarray]) -> None:
        """Append frames.

        Args:
            frames: ``uint8 [H, W, 3]`` RGB frames (or one ``[N, H, W, 3]`` array).
        """
        for f in frames:
            vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts = self.frames
            self.frames += 1
            for pkt in self._s.encode(vf):
                self._c.mux(pkt)

    def close(self) -> None:
        """Flush the encoder and close the file."""
        for pkt in self._s.encode():
            self._c.mux(pkt)
        self._c.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
