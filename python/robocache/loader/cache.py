"""Decoded camera frames kept on the loader's device for :class:`robocache.RobotDataLoader`
(``frame_cache=<GiB>``).

Every video file of a camera that DALI decodes (:mod:`robocache.loader.video`) is decoded once, on
the first ``iter(loader)``: whole files, all frames in order (the cheapest way to decode them:
no seeking), ``fn.decoders.video`` (NVDEC on ``cuda``, DALI's CPU decoder otherwise) then
``fn.resize`` to the camera's output size, a batch of files per DALI run, into one ``uint8
[frames, H, W, 3]`` tensor per camera on the device. A batch's frames are then a gather from that
tensor (one index copy, one ``index_select``), fed to the pipeline by a second external source
(on the GPU), and colour jitter / float conversion follow in the graph as on the per-window path.
Resizing once per frame before the gather gives the frames ``fn.resize`` gives per window (the
same operator on the same frame).

The decoded frames must fit the budget (``frame_cache`` GiB; the size is known from the files'
headers before anything is decoded); otherwise the loader warns and decodes per window. Fill time
and size are reported in :attr:`FrameCache.stats`.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

from .host import nearest_frame


class CacheTooLarge(ValueError):
    """The decoded frames would exceed the ``frame_cache`` budget."""


AUTO_FRACTION = 0.1
"""``frame_cache="auto"``: at most this fraction of the GPU's memory (no cache on the CPU)."""


def auto_budget(device: str, device_id) -> float:
    """GiB ``frame_cache="auto"`` allows: :data:`AUTO_FRACTION` of the GPU's memory, 0 on the CPU."""
    if device != "cuda":
        return 0.0
    import torch  # noqa: PLC0415

    return AUTO_FRACTION * torch.cuda.get_device_properties(device_id or 0).total_memory / 2**30


class FrameCache:
    """Decoded frames of the cameras decoded in the pipeline, on the loader's device.

    Args:
        episodes: the loader's :class:`~robocache.loader.host.EpisodeData` rows.
        cameras: ``{camera: (height, width)}`` of the cameras to cache.
        devices: ``{camera: "mixed" | "cpu"}`` (:func:`robocache.loader.video.camera_devices`).
        device: the loader's device, ``"cuda"`` or ``"cpu"``.
        device_id: CUDA device.
        budget_gib: most GiB the decoded frames may take.
        num_threads: DALI threads of the fill pipeline.

    Raises:
        CacheTooLarge: when the decoded frames would not fit ``budget_gib``.
    """

    def __init__(self, episodes: list, cameras: dict, devices: dict, device: str, device_id, budget_gib: float,
                 num_threads: int = 4) -> None:
        self.device, self.device_id, self.num_threads = device, device_id, int(num_threads)
        self.devices, self.sizes = dict(devices), {c: cameras[c] for c in devices}
        self.files: dict = {}  # camera -> {path: (first row, frames in the header)}
        self.used: dict = {}  # camera -> {path: last frame of the file an episode uses}
        self.rows: dict = {}  # camera -> rows in the cache
        self.frame_rows: dict = {}  # camera -> per episode row: cache row of each episode frame
        self.times: dict = {}  # camera -> per episode row: the episode's frame times (nearest-frame lookup)
        nbytes = 0
        for cam in devices:
            files, used, n = {}, {}, 0
            rows, times = [], []
            for e in episodes:
                stream, cts = e.cameras[cam]
                v = stream.video
                info = v.info
                p = str(v.path)
                if p not in files:
                    files[p] = (n, int(info.num_frames))
                    n += int(info.num_frames)
                idx = np.rint((v.frame_times - info.start_time_s) * info.fps).astype(np.int64)
                used[p] = max(used.get(p, -1), int(idx.max()) if len(idx) else -1)
                rows.append(files[p][0] + idx)
                times.append(np.asarray(cts, np.float64))
            h, w = cameras[cam]
            self.files[cam], self.used[cam], self.rows[cam], self.frame_rows[cam], self.times[cam] = files, used, n, rows, times
            nbytes += n * h * w * 3
        self.nbytes = nbytes
        if nbytes > budget_gib * 2**30:
            raise CacheTooLarge(f"RobotDataLoader: frame_cache: the decoded frames of cameras {sorted(devices)} take "
                                f"{nbytes / 2**30:.2f} GiB, more than frame_cache={budget_gib:g} GiB")
        self.frames: dict = {}
        self.stats: dict = {"cameras": sorted(devices), "frames": int(sum(self.rows.values())), "bytes": int(nbytes),
                            "device": device, "fill_seconds": None}

    # ------------------------------------------------------------------------------------ fill
    def fill(self, batch_files: int = 8) -> None:
        """Decode every file once into the cache (idempotent)."""
        if self.frames:
            return
        import torch  # noqa: PLC0415

        t0 = time.perf_counter()
        dev = torch.device("cuda", self.device_id) if self.device == "cuda" else torch.device("cpu")
        for cam, (h, w) in self.sizes.items():
            store = torch.empty((self.rows[cam], h, w, 3), dtype=torch.uint8, device=dev)
            items = list(self.files[cam].items())
            data = out = None
            pipe = _fill_pipeline(self.devices[cam], h, w, batch_files, self.num_threads, self.device_id)
            for a in range(0, len(items), batch_files):
                chunk = items[a:a + batch_files]
                try:
                    data = [np.fromfile(p, np.uint8) for p, _ in chunk]  # kept until the run is done (no_copy)
                    pipe.feed_input("encoded", data)
                    (out,) = pipe.run()
                except (RuntimeError, OSError) as e:
                    from ..datasets import CorruptDatasetError  # noqa: PLC0415

                    raise CorruptDatasetError(f"RobotDataLoader: frame_cache: DALI cannot decode one of "
                                              f"{', '.join(p for p, _ in chunk)}: {str(e).splitlines()[0]}") from None
                for s_, (p, (row, n)) in enumerate(chunk):
                    got = out[s_]
                    f = int(got.shape()[0])
                    if self.used[cam][p] >= f:  # fewer frames than the episodes use
                        from ..datasets import CorruptDatasetError  # noqa: PLC0415

                        raise CorruptDatasetError(f"RobotDataLoader: frame_cache: {p} decodes to {f} frames but its "
                                                  f"episodes use frame {self.used[cam][p]}")
                    f = min(f, n)
                    if self.devices[cam] == "mixed":  # decoded on the GPU: a synchronous device copy (DALI reuses its buffer)
                        from nvidia.dali.plugin.pytorch import feed_ndarray  # noqa: PLC0415

                        full = store[row:row + f] if f == int(got.shape()[0]) else torch.empty(
                            tuple(got.shape()), dtype=torch.uint8, device=dev)
                        feed_ndarray(got, full)
                        if full.data_ptr() != store[row:row + f].data_ptr():
                            store[row:row + f].copy_(full[:f])
                    else:
                        store[row:row + f].copy_(torch.from_numpy(np.asarray(got)[:f]))
            del pipe, data, out
            self.frames[cam] = store
        if self.device == "cuda":
            torch.cuda.synchronize(dev)
        self.stats["fill_seconds"] = time.perf_counter() - t0

    # ------------------------------------------------------------------------------------ batches
    def rows_of(self, cam: str, episode_rows: np.ndarray, anchors: np.ndarray) -> np.ndarray:
        """Cache rows of the frames nearest each anchor (int64 ``[B]``)."""
        rows, times = self.frame_rows[cam], self.times[cam]
        return np.array([rows[ei][nearest_frame(times[ei], t)] for ei, t in zip(episode_rows.tolist(), anchors.tolist())],
                        np.int64)

    def gather(self, cam: str, rows: np.ndarray, stream=None):
        """The frames at ``rows``: a ``uint8 [B, H, W, 3]`` tensor on the cache's device (on
        ``stream`` on ``cuda``)."""
        import torch  # noqa: PLC0415

        store = self.frames[cam]
        idx = torch.from_numpy(rows)
        if self.device != "cuda":
            return store.index_select(0, idx)
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            return store.index_select(0, idx.pin_memory().to(store.device, non_blocking=True))


def _fill_pipeline(device: str, h: int, w: int, batch: int, num_threads: int, device_id):
    from nvidia.dali import fn, pipeline_def, types  # noqa: PLC0415

    @pipeline_def(batch_size=batch, num_threads=num_threads, device_id=device_id if device == "mixed" else None,
                  prefetch_queue_depth=1, exec_dynamic=True)
    def pipe():
        enc = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1, no_copy=True)
        v = fn.decoders.video(enc, device=device, **({"affine": False} if device == "mixed" else {}))
        return fn.resize(v, resize_x=w, resize_y=h)

    p = pipe()
    p.build()
    return p
