"""The DALI side of :class:`robocache.RobotDataLoader`: the external source that feeds recorded
samples around each window, and the pipeline graph that turns them into a training batch.

Graph (``cuda``: everything after the external source runs on the GPU, timestamps stay CPU inputs):

    external_source ──► state/action samples [B, L, D] (dense: padded, see BatchSource) ──►
        fn.robocache.resample (target_timestamps [B, T]) ──► [(x - offset) * scale ──►
        fn.robocache.action_noise]  (without action_noise the loader normalises after the graph)
    external_source ──► camera frames (or JPEG bytes ──► fn.decoders.image, or encoded video file +
        frame index ──► fn.decoders.video) ──► fn.resize ──► [fn.color_twist with per-sample
        arguments] ──► [fn.crop_mirror_normalize to float]

Masks, indices, task ids and window times do not enter the graph: the source computes them on the
host (``BatchSource.host``) and the loader joins them to the DALI outputs. Video frames decoded by
PyAV come from worker processes (:mod:`robocache.loader.frames`).

The source is a pure function of ``(plan, positions)``: the batch at a given shard position is the
same whatever happened before, which makes ``load_state_dict`` resume exact.
"""

from __future__ import annotations

import collections
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .host import around, nearest_frame, valid_mask
from .video import CameraFiles, EncodedFiles

_FILES: EncodedFiles | None = None  # encoded video files, shared by the loaders of the process


def encoded_files() -> EncodedFiles:
    """The process-wide cache of encoded video files fed to ``fn.decoders.video``."""
    global _FILES
    if _FILES is None:
        _FILES = EncodedFiles()
    return _FILES

COLOR_JITTER_DEFAULTS = {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 10.0}


def augment_rng(seed: int, epoch: int, position: int, stream: int) -> np.random.Generator:
    """The generator of one sample's host-drawn augmentation parameters (counter-based: a pure
    function of seed, epoch and epoch position, so resume and CPU/GPU runs draw the same)."""
    return np.random.Generator(np.random.Philox(key=np.uint64(seed & (2**64 - 1)), counter=[epoch, position, stream, 0]))


_BITGEN = threading.local()  # per thread: {seed: Philox}, re-keyed by counter for each draw


def augment_uniform(seed: int, epoch: int, positions, stream: int, n: int) -> np.ndarray:
    """``[len(positions), n]`` float64 in [0, 1): row ``k`` holds the first ``n`` draws of
    ``augment_rng(seed, epoch, positions[k], stream).random()``, the same values, from one bit
    generator per thread whose counter is set per sample (building a Philox per sample costs ~10x
    more)."""
    gens = getattr(_BITGEN, "gens", None)
    if gens is None:
        gens = _BITGEN.gens = {}
    if seed not in gens:
        bg = np.random.Philox(key=np.uint64(seed & (2**64 - 1)))
        gens[seed] = (bg, np.random.Generator(bg))
    bg, gen = gens[seed]
    st = bg.state
    out = np.empty((len(positions), n), np.float64)
    for k, p in enumerate(np.asarray(positions).tolist()):
        st["state"]["counter"] = np.array([epoch, p, stream, 0], np.uint64)
        st["buffer_pos"], st["has_uint32"], st["uinteger"] = 4, 0, 0
        bg.state = st
        out[k] = gen.random(n)
    return out


HOST_OUTPUTS = ("state_mask", "state_dim_mask", "action_mask", "action_dim_mask", "dataset_index", "episode_index", "task",
                "index", "anchor_time")
"""Batch keys computed on the host alone (never through DALI): the external source hands them to the
loader next to the DALI batch. ``state_timestamps``/``action_timestamps`` join them without
``temporal_jitter`` (the targets are known on the host; with it the operator's output times are used)."""


def host_keys(cfg: dict) -> tuple:
    """Batch keys the host computes for these settings (the rest come out of the DALI pipeline)."""
    if "temporal_jitter" in cfg["aug"]:
        return HOST_OUTPUTS
    return HOST_OUTPUTS + ("state_timestamps", "action_timestamps")


class BatchSource:
    """Callable for ``fn.external_source(batch=True)``: one batch of host arrays per call.

    Everything of fixed shape goes to DALI as one dense ``[B, ...]`` array per input (a list of
    per-sample arrays costs DALI a copy and bookkeeping per sample). The recorded samples around
    each window (state, action and their timestamps) are padded to the batch's longest slice with
    further recorded samples of the same episode (or, for an episode shorter than that, its last
    sample repeated at times far beyond any target), which leaves every resampled value unchanged:
    resampling only reads the two recorded samples around each target, and targets past the last
    recorded sample read the last sample either way. Outputs that need no DALI work (masks, indices,
    window times) are computed here and kept in :attr:`host` (batch number -> dict) for the loader.

    Args:
        table: :func:`robocache.loader.host.window_table` of the loader.
        cfg: loader settings.
        plan: ``(dataset [N], row [N])`` of the epoch.
        batches: list of position arrays, one per batch still to produce.
        epoch: epoch number (for augmentation draws).
        pool: optional thread pool for camera frames.
        frames: optional :class:`robocache.loader.frames.FramePool` decoding video frames in worker
            processes.
        ahead: batches assembled ahead of DALI's request in a background thread (0: assembled in
            the calling thread, inside DALI's ``schedule_run``).
        cache: optional filled :class:`robocache.loader.cache.FrameCache`: its cameras' frames are
            gathered from it and fed by a second external source (:meth:`cached_call`).
    """

    def __init__(self, table: dict, cfg: dict, plan: tuple, batches: list, epoch: int, pool: ThreadPoolExecutor | None,
                 frames=None, ahead: int = 2, cache=None) -> None:
        self.table, self.cfg, self.plan, self.batches, self.epoch, self.pool = table, cfg, plan, batches, epoch, pool
        self.frames = frames
        self.k = self.kc = 0
        self.cache = cache
        self.cached = [c for c in cfg["cameras"] if cache is not None and c in cache.devices]
        self.names = source_names(cfg, self.cached)
        self._stream = None
        if self.cached and cache.device == "cuda":
            import torch  # noqa: PLC0415

            self._stream = torch.cuda.Stream(torch.device("cuda", cache.device_id))
        self.host: dict = {}
        w = {g: cfg["state_dim" if g == "state" else "action_dim"] for g in ("state", "action")}
        self.norm = {g: (np.stack([n[g][0] for n in cfg["norm"]]), np.stack([n[g][1] for n in cfg["norm"]]),
                         np.stack([n[g][2] for n in cfg["norm"]])) for g in w}
        self.pending: dict = {}  # batch number -> frame futures (video decoding ahead of time)
        self.video = {c: CameraFiles(table["episodes"], c, encoded_files()) for c in cfg.get("video_window", {})
                      if c not in self.cached}  # decoded per window in the graph
        self.ahead = int(ahead)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="robocache-batches") if self.ahead > 0 else None
        self._ready: dict = {}  # batch number -> (future of (DALI inputs, host outputs, cached frames), frames)
        self._done: dict = {}  # batch number -> assembled batch, until both external sources took it
        self._taken: dict = {}
        # the external source passes its arrays to DALI without a copy (no_copy): each batch's arrays
        # are kept until DALI is done with them (prefetch depth iterations later; build_pipeline sets it)
        self.keep = 8
        self._fed: collections.deque = collections.deque()

    def _result(self, k: int) -> tuple:
        """Batch ``k`` (assembled ahead in the background thread, or here)."""
        if k in self._done:
            return self._done[k]
        if self.frames is not None:  # keep the worker processes busy with the next batches' frames
            for j in range(k, min(k + self.frames.ahead, len(self.batches))):
                if j not in self.pending and j not in self._done and j not in self._ready:
                    self.pending[j] = self.frames.submit(self.table, self.batches[j], self.plan)
        if self._thread is None:
            self._done[k] = self.batch(self.batches[k], self.pending.pop(k, None))
        else:
            for j in range(k, min(k + 1 + self.ahead, len(self.batches))):
                if j not in self._ready and j not in self._done:
                    frames = self.pending.pop(j, None)
                    self._ready[j] = (self._thread.submit(self.batch, self.batches[j], frames), frames)
            self._done[k] = self._ready.pop(k)[0].result()
        return self._done[k]

    def _take(self, k: int) -> tuple:
        got = self._result(k)
        n = self._taken.get(k, 0) + 1
        if n >= (2 if self.cached else 1):  # both external sources have it
            self._done.pop(k, None)
            self._taken.pop(k, None)
        else:
            self._taken[k] = n
        return got

    def __call__(self):
        if self.k >= len(self.batches):
            raise StopIteration
        k = self.k
        self.k += 1
        dali, host, cached = self._take(k)
        self.host[k] = host
        self._fed.append((k, dali, host.get("_video_files", ()), cached))
        while len(self._fed) > self.keep:
            self._fed.popleft()
        return dali

    def cached_call(self):
        """The second external source: batch ``k``'s frames gathered from the frame cache (CUDA
        tensors, ordered after the gather on the current stream, or numpy arrays)."""
        if self.kc >= len(self.batches):
            raise StopIteration
        k = self.kc
        self.kc += 1
        _, _, cached = self._take(k)
        frames, event = cached
        if self._stream is None:
            return [f.numpy() for f in frames]
        import torch  # noqa: PLC0415

        cur = torch.cuda.current_stream(self._stream.device)
        cur.wait_event(event)
        for f in frames:
            f.record_stream(cur)  # DALI copies it on this stream: not reused before that
        return frames

    def checked(self, it):
        """``enumerate(it)`` over the DALI iterator; a pipeline failure is re-raised as a
        ``RuntimeError`` naming the epoch, the batches in flight and the video files they decode
        in the graph (DALI's own message, which names the operator, follows)."""
        k = 0
        while True:
            try:
                out = next(it)
            except StopIteration:
                return
            except RuntimeError as e:
                fed = [f for f in self._fed if f[0] >= k]
                files = sorted({p for f in fed for p in f[2]})
                what = (f"; video files decoded in those batches: {', '.join(files[:6])}" + (" ..." if len(files) > 6 else "")
                        if files else "")
                batches = f"{fed[0][0]}..{fed[-1][0]}" if fed else str(k)
                raise RuntimeError(f"RobotDataLoader: the DALI pipeline failed on batch {k} of epoch {self.epoch} (batches "
                                   f"{batches} in flight){what}:\n{e}") from None
            yield k, out
            k += 1

    def close(self) -> None:
        """Stop assembling ahead and drop what was decoded ahead (an iteration left early)."""
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None
        for fut, frames in self._ready.values():
            if fut.cancel() and frames is not None:  # never started: its frames are nobody's
                frames.discard()
        self._ready = {}
        for f in self.pending.values():
            f.discard()
        self.pending = {}
        self._done, self._taken = {}, {}

    def __del__(self) -> None:
        self.close()

    def batch(self, pos: np.ndarray, frames=None) -> tuple:
        """``(external-source outputs as a list, host outputs as a dict)`` for epoch positions ``pos``."""
        cfg, tb = self.cfg, self.table
        d = self.plan[0][pos]
        gr = tb["row_offset"][d] + self.plan[1][pos]
        anchor = tb["anchor"][gr]
        epi = tb["episode"][gr]
        eps = tb["episodes"]
        out: dict = {}
        host: dict = {}
        jitter = cfg["aug"].get("temporal_jitter")
        if jitter is not None:  # replay speed per window, drawn here so that resume and both backends agree
            lo_v, hi_v = jitter["speed"]
            speed = np.array([augment_rng(cfg["seed"], self.epoch, int(p), 2).uniform(lo_v, hi_v) for p in pos])
            out["tj.speed"] = np.repeat(speed.astype(np.float32)[:, None], 2, axis=1)
        rows = [eps[i] for i in epi.tolist()]
        for g, off in (("state", cfg["offsets"][0]), ("action", cfg["offsets"][1])):
            tt = anchor[:, None] + (off[None, :] if jitter is None else speed[:, None] * off[None, :])
            lo, hi = tb[g + "_span"][epi, 0], tb[g + "_span"][epi, 1]
            mask = (tt >= lo[:, None] - 1e-9) & (tt <= hi[:, None] + 1e-9)
            for k in (np.nonzero(tb[g + "_has_gap"][epi])[0] if tb[g + "_any_gap"] else ()):  # rare: episodes with holes
                e = eps[epi[k]]
                mask[k] = valid_mask(getattr(e, g + "_ts"), tt[k], e.max_gap[g])
            if jitter is None:
                out[g], out[g + "_ts"] = padded_slices(tb, g, epi, tb[g + "_slice"][gr])
            else:
                out[g], out[g + "_ts"], tj_off = [], [], np.empty(len(pos), np.float32)
                for k, (e, t) in enumerate(zip(rows, tt)):
                    ts, vals = getattr(e, g + "_ts"), getattr(e, g)
                    x, y = around(ts, t[0], t[-1])
                    d_, ts_ = vals[x:y], ts[x:y]
                    if t[0] < ts_[0]:  # window starts before the episode: a held first sample at t[0] (clamp)
                        d_, ts_ = np.concatenate([vals[:1], d_]), np.concatenate([t[:1], ts_])
                    out[g].append(d_)
                    out[g + "_ts"].append(ts_)
                    tj_off[k] = np.float32(t[0] - ts_[0])
                out[g + "_tj_offset"] = np.repeat(tj_off[:, None], 2, axis=1)
            out[g + "_tt"] = tt
            host[g + "_mask"] = mask
            if cfg["norm_in_dali"]:
                out[g + "_offset"], out[g + "_scale"] = self.norm[g][0][d], self.norm[g][1][d]
            host[g + "_dim_mask"] = self.norm[g][2][d]
            if g == "state":
                start = tt[:, 0] if cfg["timestamps"] == "relative" else np.zeros(len(pos))
            if jitter is None:  # the resampled times are the targets: window times on the host
                host[g + "_timestamps"] = (tt - start[:, None]).astype(np.float32) if cfg["timestamps"] == "relative" else tt - start[:, None]
        out["window_start"] = start.astype(np.float64)
        host["dataset_index"] = host["_d"] = d.astype(np.int64)
        host["episode_index"] = tb["episode_index"][epi].astype(np.int64)
        host["task"] = tb["task"][epi].astype(np.int64)
        host["index"] = np.asarray(pos, np.int64).copy()
        host["anchor_time"] = anchor.astype(np.float64)
        for cam, files in self.video.items():  # encoded file + frame index, decoded by fn.decoders.video
            out["cam." + cam], out["camf." + cam], paths = files.inputs(epi, anchor)
            host["_video_files"] = host.get("_video_files", ()) + tuple(paths)
        if "color_jitter" in cfg["aug"]:  # per-sample draws (see augment_uniform), one batch at a time
            kw = cfg["aug"]["color_jitter"]
            u = augment_uniform(cfg["seed"], self.epoch, pos, 1, 4)
            for j, (name, lo, hi) in enumerate((("brightness", 1 - kw["brightness"], 1 + kw["brightness"]),
                                                 ("contrast", 1 - kw["contrast"], 1 + kw["contrast"]),
                                                 ("saturation", 1 - kw["saturation"], 1 + kw["saturation"]),
                                                 ("hue", -kw["hue"], kw["hue"]))):
                out["cj." + name] = (lo + (hi - lo) * u[:, j]).astype(np.float32)
        cached = None
        if self.cached:  # frames gathered from the frame cache (on its device, on a side stream)
            rows = [self.cache.rows_of(c, epi, anchor) for c in self.cached]
            if self._stream is None:
                cached = ([self.cache.gather(c, r) for c, r in zip(self.cached, rows)], None)
            else:
                import torch  # noqa: PLC0415

                got = [self.cache.gather(c, r, self._stream) for c, r in zip(self.cached, rows)]
                ev = torch.cuda.Event()
                ev.record(self._stream)
                cached = (got, ev)
        host_cams = [c for c in cfg["cameras"] if c not in self.video and c not in self.cached]  # = extra_names' cameras
        if host_cams:
            args = list(zip(pos.tolist(), epi.tolist(), anchor.tolist()))
            got = frames.result() if frames is not None else {}
            fn = (lambda x: self.extras(x, got))
            extra = list(self.pool.map(fn, args)) if self.pool is not None else [fn(x) for x in args]
            for j, name in enumerate(host_cams):
                out["cam." + name] = [x[j] for x in extra]
        return [out[n] for n in self.names], host, cached

    def extras(self, arg: tuple, frames: dict | None = None) -> tuple:
        """Camera frames of one window assembled on the host (cameras not decoded in the graph):
        ``(position, episode row, anchor)``; ``frames``: ``{(camera, position): frame}`` already
        decoded in worker processes."""
        p, ei, t = arg
        cfg = self.cfg
        e = self.table["episodes"][ei]
        out = []
        for name in cfg["cameras"]:
            if name in self.video or name in self.cached:
                continue
            if frames and (name, p) in frames:
                out.append(frames[(name, p)])
                continue
            stream, cts = e.cameras[name]
            j = nearest_frame(cts, t)
            if cfg["encoded"][name]:
                out.append(np.frombuffer(bytes(stream.loader.encoded[j]), np.uint8))
            elif name in cfg.get("video", {}):  # a video DALI could decode, left to the host: PyAV
                from .frames import pyav_frame  # noqa: PLC0415

                out.append(pyav_frame(stream, j))
            else:
                out.append(np.ascontiguousarray(stream.read(j, j + 1)[0]))
        return tuple(out)


FAR = 1.0e6  # seconds past an episode's last sample where repeated padding samples sit


def padded_slices(tb: dict, g: str, epi: np.ndarray, sl: np.ndarray) -> tuple:
    """The recorded samples of each window (``sl [B, 2]`` index ranges into episode ``epi``'s
    samples) as two dense arrays ``values [B, L, D]`` and ``timestamps [B, L]``, ``L`` the longest
    range: each range is widened to ``L`` recorded samples (to the right, or to the left at the
    episode's end); an episode with fewer than ``L`` samples gets its last sample repeated at
    ``FAR``, ``2 FAR``, ... seconds past its end. Resampling at the window's targets gives the same
    values (see :class:`BatchSource`)."""
    a = sl[:, 0]
    n = int((sl[:, 1] - a).max())
    m = tb[g + "_len"][epi]
    x = np.where(m >= n, np.minimum(a, m - n), 0)
    raw = x[:, None] + np.arange(n)[None, :]
    idx = tb[g + "_base"][epi][:, None] + np.minimum(raw, m[:, None] - 1)
    vals = tb[g + "_flat"][idx]
    ts = tb[g + "_ts_flat"][idx]
    beyond = raw - (m[:, None] - 1)
    if (beyond > 0).any():  # episodes shorter than L: padding samples far past their end
        ts = np.where(beyond > 0, ts + FAR * np.maximum(beyond, 0), ts)
    return vals, ts


def extra_names(cfg: dict, cached=()) -> list:
    """Names of the per-sample outputs (host camera frames, colour-jitter draws), in order; cameras
    decoded per window in the graph (``cfg["video_window"]``) come before them (see
    :func:`source_names`), cameras served from the frame cache (``cached``) come from the second
    external source."""
    names = ["cam." + c for c in cfg["cameras"] if c not in cfg.get("video_window", {}) and c not in cached]
    if "color_jitter" in cfg["aug"]:
        names += ["cj.brightness", "cj.contrast", "cj.saturation", "cj.hue"]
    return names


def source_names(cfg: dict, cached=()) -> list:
    """Names of the external source's outputs, in order (``cached``: cameras served from the frame
    cache, which are not among them)."""
    names = []
    for g in ("state", "action"):
        names += [g, g + "_ts", g + "_tt"]
        if cfg["norm_in_dali"]:
            names += [g + "_offset", g + "_scale"]
    if "temporal_jitter" in cfg["aug"]:
        names += ["window_start", "tj.speed", "state_tj_offset", "action_tj_offset"]
    for c in cfg.get("video_window", {}):
        if c not in cached:
            names += ["cam." + c, "camf." + c]
    return names + extra_names(cfg, cached)


def robocache_aug(fn, name: str):
    """``fn.robocache.<name>`` or a ValueError saying the plugin lacks it."""
    op = getattr(fn.robocache, name, None)
    if op is None:
        raise ValueError(f"RobotDataLoader: augmentation {name!r} needs the operator fn.robocache.{name}, which this build of the "
                         f"RoboCache plugin does not have; remove {name!r} from augmentations or update robocache")
    return op


def build_pipeline(source: BatchSource, cfg: dict, output_map: list, batch_size: int, num_threads: int, prefetch: int):
    """The DALI pipeline of one epoch (or the rest of one).

    Args:
        source: the external source.
        cfg: loader settings.
        output_map: names of the pipeline outputs, in order (keys the DALI graph produces; the host
            outputs of :func:`host_keys` come from ``source.host``).
        batch_size: maximum batch size.
        num_threads: DALI CPU threads.
        prefetch: DALI prefetch queue depth.

    Returns:
        the (unbuilt) pipeline.
    """
    from nvidia.dali import fn, pipeline_def, types  # noqa: PLC0415

    gpu = cfg["device"] == "cuda"
    names = source.names
    source.keep = int(prefetch) + 3
    video = cfg.get("video_window", {})
    layouts = ["HWC" if n.startswith("cam.") and not cfg["encoded"][n[4:]] and n[4:] not in video else "" for n in names]

    @pipeline_def(batch_size=batch_size, num_threads=num_threads, device_id=cfg["device_id"] if gpu else None,
                  prefetch_queue_depth=prefetch, seed=cfg["seed"] & 0x7FFFFFFF, exec_dynamic=True)
    def pipe():
        # no_copy: the arrays go to DALI as they are (the encoded video files alone are tens of MB a batch);
        # the source keeps them until DALI is done with them
        ins = dict(zip(names, fn.external_source(source=source, num_outputs=len(names), batch=True, layout=layouts, no_copy=True)))
        if source.cached:  # frames gathered from the frame cache, already at the output size, on the loader's device
            got = fn.external_source(source=source.cached_call, num_outputs=len(source.cached), batch=True,
                                     device="gpu" if gpu else "cpu", layout=["HWC"] * len(source.cached))
            ins.update({"cache." + c: x for c, x in zip(source.cached, got)})
        dev = (lambda x: x.gpu()) if gpu else (lambda x: x)
        out = {}
        for g in ("state", "action"):
            jitter = cfg["aug"].get("temporal_jitter")
            if jitter is None:
                x, xt = fn.robocache.resample(dev(ins[g]), ins[g + "_ts"], ins[g + "_tt"], method=cfg["method"], extrapolate="clamp")
            else:  # the window replayed at the host-drawn speed, from the host-computed offset (same targets the masks use)
                kw = {k: v for k, v in jitter.items() if k != "speed"}
                x, xt = robocache_aug(fn, "temporal_jitter")(
                    dev(ins[g]), ins[g + "_ts"], speed=ins["tj.speed"], offset=ins[g + "_tj_offset"], target_rate=1.0 / cfg["period"],
                    num_samples=cfg["steps"][0 if g == "state" else 1], method=cfg["method"], seed=cfg["seed"] & 0x7FFFFFFF, **kw)
            if cfg["norm_in_dali"]:
                x = (x - dev(ins[g + "_offset"])) * dev(ins[g + "_scale"])
            if g == "action" and "action_noise" in cfg["aug"]:
                x = robocache_aug(fn, "action_noise")(x, **cfg["aug"]["action_noise"])
            out[g] = x
            if jitter is not None:  # the replayed times come from the operator
                rel = xt - ins["window_start"]
                out[g + "_timestamps"] = dev(fn.cast(rel, dtype=types.FLOAT) if cfg["timestamps"] == "relative" else rel)
        for cam, (h, w) in cfg["cameras"].items():
            img = ins.get("cam." + cam)
            if cam in source.cached:
                img = ins["cache." + cam]
            elif cam in video:  # the window's frame of the encoded file: [1, H, W, 3] -> HWC
                img = fn.decoders.video(img, device=video[cam], frames=ins["camf." + cam],
                                        **({"affine": False} if video[cam] == "mixed" else {}))  # threads unpinned: the OS places them
                img = fn.squeeze(img, axes=[0])
                if video[cam] == "cpu":
                    img = dev(img)
            elif cfg["encoded"][cam]:
                img = fn.decoders.image(img, device="mixed" if gpu else "cpu", output_type=types.RGB)
            else:
                img = dev(img)
            if cam not in source.cached:  # cached frames were resized once, when the cache was filled
                img = fn.resize(img, resize_x=w, resize_y=h)
            if "color_jitter" in cfg["aug"]:
                img = fn.color_twist(img, brightness=ins["cj.brightness"], contrast=ins["cj.contrast"],
                                     saturation=ins["cj.saturation"], hue=ins["cj.hue"])
            if cfg["image_dtype"] == "float32":
                mean = [255.0 * m for m in cfg["image_mean"]]
                std = [255.0 * s for s in cfg["image_std"]]
                img = fn.crop_mirror_normalize(img, dtype=types.FLOAT, output_layout="HWC", mean=mean, std=std)
            out["images." + cam] = img
        return tuple(out[k] for k in output_map)

    return pipe()


def norm_arrays(stats: dict, mode: str | None, width: int) -> tuple:
    """``(offset [1, width], scale [1, width], dim_mask [width])`` for one dataset and group.

    ``mean_std``: ``(x - mean) / std``; ``min_max``: ``2 (x - min) / (max - min) - 1``. Channels with a
    spread below 1e-8 get scale 1; padded channels get offset 0, scale 1 (they stay 0).
    """
    n = len(stats["mean"])
    off = np.zeros((1, width), np.float32)
    scale = np.ones((1, width), np.float32)
    if mode == "mean_std":
        off[0, :n] = stats["mean"]
        spread = np.asarray(stats["std"], np.float64)
        scale[0, :n] = np.where(spread > 1e-8, 1.0 / np.maximum(spread, 1e-8), 1.0)
    elif mode == "min_max":
        lo, hi = np.asarray(stats["min"], np.float64), np.asarray(stats["max"], np.float64)
        off[0, :n] = (lo + hi) / 2
        spread = hi - lo
        scale[0, :n] = np.where(spread > 1e-8, 2.0 / np.maximum(spread, 1e-8), 1.0)
    mask = np.zeros(width, bool)
    mask[:n] = True
    return off, scale, mask
