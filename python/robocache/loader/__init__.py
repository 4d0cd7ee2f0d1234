"""``RobotDataLoader``: heterogeneous robot datasets to PyTorch training batches through one DALI
pipeline (resampling by ``fn.robocache.resample``, image work by DALI), on the GPU or the CPU.

See :class:`RobotDataLoader` for the batch contents, the sampling and epoch definitions, sharding,
resume and the bad-input policy.
"""

from __future__ import annotations

import math
import numbers
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .distributed import Placement, gpu_for, placement
from .host import DatasetSpec, HostDataset, as_spec, step_times, window_table
from .pipeline import COLOR_JITTER_DEFAULTS, BatchSource, build_pipeline, host_keys, norm_arrays
from .sampling import epoch_plan, quotas, shard_positions
from .transfer import ahead_thread, host_to_device
from .video import camera_devices, window_devices

__all__ = ["DatasetSpec", "RobotDataLoader"]

AUGMENTATIONS = ("color_jitter", "temporal_jitter", "action_noise")
_POLICIES = {"FILL": "fill", "DROP": "drop", "PARTIAL": "partial"}


def _policy_name(p: Any) -> str:
    from nvidia.dali.plugin.base_iterator import LastBatchPolicy  # noqa: PLC0415

    if isinstance(p, LastBatchPolicy):
        return _POLICIES[p.name]
    if isinstance(p, str) and p.upper() in _POLICIES:
        return _POLICIES[p.upper()]
    raise ValueError(f"RobotDataLoader: last_batch_policy must be a nvidia.dali.plugin.base_iterator.LastBatchPolicy "
                     f"(FILL, DROP, PARTIAL), got {p!r}")


def _steps(h: Any, f: float, what: str) -> int:
    """Horizon -> steps: an int is a number of steps, a float is seconds (``max(1, round(h * f))``)."""
    if isinstance(h, bool) or not isinstance(h, numbers.Real) or not math.isfinite(h) or h < 0:
        raise ValueError(f"RobotDataLoader: {what} must be a number of steps (int >= 1) or seconds (float >= 0), got {h!r}")
    if isinstance(h, numbers.Integral):
        if h < 1:
            raise ValueError(f"RobotDataLoader: {what} as steps must be >= 1, got {h}")
        return int(h)
    return max(1, int(round(float(h) * f)))


class RobotDataLoader:
    """Shuffled, windowed, resampled, normalised, augmented batches from several robot datasets.

    Args:
        datasets: paths (LeRobot v2/v3, RLDS, robomimic/robosuite HDF5, CALVIN), opened
            :class:`~robocache.datasets.Dataset` objects, :class:`DatasetSpec` (key mapping, camera
            mapping, episode selection, weight, statistics) or dicts of its fields.
        weights: mixture weights, one per dataset (normalised to sum 1). Default: each dataset's
            ``DatasetSpec.weight``, else proportional to its number of windows.
        target_frequency: Hz; every stream is resampled onto this clock.
        observation_horizon: observation steps ``To``: an int is steps, a float is seconds
            (``To = max(1, round(seconds * target_frequency))``). Observation steps end at the anchor.
        action_horizon: action steps ``Ta`` (same rule); action steps start at the anchor.
        cameras: ``{name: (height, width)}``; each frame is the camera frame nearest the anchor,
            resized by DALI. Each dataset must have the camera (see :class:`DatasetSpec`).
        augmentations: names or ``{"name": ..., **kwargs}``: ``"color_jitter"`` (DALI
            ``fn.color_twist``; kwargs ``brightness``, ``contrast``, ``saturation`` (relative) and
            ``hue`` (degrees), drawn per sample from a counter-based generator keyed by
            ``(seed, epoch, position)``), ``"temporal_jitter"`` (``fn.robocache.temporal_jitter`` replays
            each window at a speed drawn per window in ``speed`` (default ``[0.8, 1.2]``) around its
            anchor, state and action alike, instead of ``fn.robocache.resample``; masks follow the
            replayed times; other kwargs such as ``warp_strength`` go to the operator) and
            ``"action_noise"`` (``fn.robocache.action_noise`` on the normalised actions; kwargs such as
            ``sigma`` go to the operator). A name whose operator the plugin lacks
            raises ``ValueError``.
        batch_size: samples per batch.
        device: ``"cuda"`` (resampling, normalisation and images on the GPU, every output a CUDA
            tensor), ``"cpu"`` (the whole pipeline on the CPU, CPU tensors) or ``"auto"``.
        device_id: CUDA device of this process's pipeline (default: ``LOCAL_RANK`` when set, e.g. by
            ``torchrun``, else ``torch.cuda.current_device()``).
        seed: seeds the epoch plans and augmentations (the same on every rank).
        shard_id: this data-parallel rank's shard (default: the global rank from ``torch.distributed``
            when a process group is initialised, else ``RANK``, else 0).
        num_shards: number of shards (default: the world size, likewise; else ``WORLD_SIZE``, else 1).
        shuffle: shuffle datasets and windows within each epoch.
        epoch_size: windows per epoch (default: the total number of windows of all datasets).
        last_batch_policy: DALI's ``LastBatchPolicy`` (``FILL`` default, ``DROP``, ``PARTIAL``); every
            shard gets the same number of batches under each (see Data parallel below).
        normalization: ``"mean_std"`` (default), ``"min_max"`` (to [-1, 1]) or ``None``; per dataset,
            from the dataset's statistics (LeRobot ``stats.json``/episode stats, GR00T-sliced) or
            computed once from the loaded episodes.
        pad: anchors at every recorded state sample, window steps beyond the episode clamped and masked
            (True, LeRobot's ``*_is_pad`` convention); False: only anchors whose window fits.
        short_episodes: an episode whose recorded span is shorter than a window: ``"error"`` (default,
            ``ValueError`` before the first batch naming the dataset and episodes) or ``"skip"`` (warn).
        max_gap: a step inside an interval between recorded samples wider than this (seconds) is
            masked; default: 3 median sampling intervals of the stream.
        timestamps: ``"relative"`` (float32 seconds from the window's first step) or ``"episode"``
            (float64 seconds since the episode's first state sample).
        image_dtype: ``"uint8"`` or ``"float32"`` (``(x / 255 - image_mean) / image_std``).
        image_mean: per-channel mean for float images (default 0).
        image_std: per-channel std for float images (default 1).
        method: resampling method for state and action (``"linear"``, ``"nearest"``, ``"previous"``).
        output_map: batch keys to produce (default: all of :attr:`output_map`).
        num_threads: DALI CPU threads.
        num_workers: host workers: video frames decoded by PyAV go to this many worker processes
            (forked on the first ``iter(loader)``, kept across epochs, decoding a few batches ahead;
            ``<= 1``: decoded in this process); JPEG stills read on the host use as many threads.
        prefetch_queue_depth: DALI prefetch depth.
        frame_cache: decode every video file of the cameras DALI decodes (see Video below) once, on
            the first ``iter(loader)``, into a frame store on the loader's device (the GPU on
            ``cuda``), resized to the camera size; batches then gather their frames from it
            (:mod:`robocache.loader.cache`). A number: the GiB it may take (over it: a warning, and
            per-window decoding); ``"auto"`` (default): on ``cuda`` when the frames fit in 10% of
            the GPU's memory (silently per-window otherwise), never on the CPU; ``None``: off.
            :attr:`frame_cache_stats` reports its size and fill time (None without a cache).

    Video: a camera whose files DALI can decode here (``video_backend`` ``dali-gpu``, which ``auto``
    picks for H.264/HEVC/VP9 with a GPU, or ``dali-cpu``: VP8/VP9/MJPEG on the CPU) is decoded by
    DALI: once into the frame cache, or else per window inside the pipeline (``fn.decoders.video`` on
    the window's group of pictures, :mod:`robocache.loader.video`) where ``dali-cpu`` or ``dali-gpu``
    was asked for by name. Other video (AV1, CPU-only machines, and ``auto`` GPU video without a
    cache: NVDEC per window is slower than PyAV workers) is decoded by PyAV in ``num_workers``
    worker processes.

    Batches are dicts of torch tensors (``B`` samples, ``Ds``/``Da`` the widest state/action):
    ``state [B, To, Ds]``, ``action [B, Ta, Da]`` (float32, normalised), ``state_mask [B, To]``,
    ``action_mask [B, Ta]`` (bool, valid steps), ``state_dim_mask [B, Ds]``, ``action_dim_mask
    [B, Da]`` (bool, the dataset's real channels; the rest are zero), ``state_timestamps``,
    ``action_timestamps``, ``images.<camera> [B, H, W, 3]``, ``dataset_index``, ``episode_index``,
    ``task`` (index into :attr:`tasks`), ``index`` (epoch position) and ``anchor_time`` (seconds).

    Sampling: a window is an anchor time in an episode; anchors are the recorded state samples. An
    epoch is ``epoch_size`` windows; dataset ``d`` gets ``round(weight_d * epoch_size)`` of them
    (largest remainder), drawn without replacement from a seeded permutation of its windows (repeating
    when it has fewer). The plan is a pure function of ``(seed, epoch)``. Shard ``s`` takes positions
    ``p % num_shards == s``. ``len(loader)`` is this shard's batches per epoch; each ``iter(loader)``
    is the next epoch (or :meth:`set_epoch`); :meth:`state_dict` / :meth:`load_state_dict` resume
    mid-epoch with the same remaining batches.

    Data parallel (``torchrun``; :mod:`robocache.loader.distributed` says how rank, world size and GPU
    are found): each rank builds its own DALI pipeline on its own GPU and computes the same plan from
    ``(seed, epoch)`` alone, with no communication, so no rank waits on another's data; all ranks must
    run the same epochs (``iter`` or :meth:`set_epoch`). With ``S`` ranks of ``B`` samples (global
    batch ``G = S*B``), ``N = epoch_size``, guaranteed for a given seed and epoch whatever ``S``:

    * the epoch plan, and everything drawn per position (the window, ``color_jitter`` and
      ``temporal_jitter``'s speed, keyed by ``(seed, epoch, position)``), is the same, so the sample at
      a position (every output) is the same bits;
    * rank ``r``'s batch ``k`` is the positions ``k*G + r + S*j`` (``j < B``); step ``k`` (the
      ``k``-th batches of all ranks) is the positions ``[k*G, (k+1)*G)`` for every ``k < floor(N / G)``,
      the same data as one process with batch ``G``;
    * every rank yields ``len(loader)`` batches: ``DROP`` ``floor(N / G)``, ``PARTIAL`` and ``FILL``
      ``ceil(N / G)``; the last step covers ``[k*G, N)`` plus repeats of the rank's own first positions
      (``PARTIAL``: each rank ``ceil(N / S)`` samples, at most ``S - 1`` repeats per epoch, like
      ``DistributedSampler``; ``FILL``: full batches). Only those repeats depend on ``S``;
    * :meth:`state_dict` holds the same position on every rank (ranks step together), so rank 0's
      copy resumes every rank, and resumes at another world size with the same ``G`` (same remaining
      steps).

    Not invariant: ``action_noise`` (and ``temporal_jitter`` with ``warp_strength > 0``) draw inside
    their DALI operators from ``(seed, the pipeline's batch counter, sample in batch)``; the loader
    seeds ``action_noise`` from ``(seed, epoch, shard)`` (unless given ``seed``), so ranks and epochs
    draw independent noise, deterministic per rank for a given ``S``, but a mid-epoch resume
    restarts the counter (other draws than an uninterrupted run).

    Outputs that need no DALI work (masks, ``*_dim_mask``, indices, ``anchor_time``, and the
    timestamps unless ``temporal_jitter`` replays the window) are computed on the host per batch and
    joined to the DALI outputs (on ``cuda``: one host-to-device copy per batch).

    Underneath is DALI's ``DALIGenericIterator`` over one pipeline fed by an external source (there is
    no DALI reader, so ``reader_name`` does not apply: an epoch ends when the source's windows are
    exhausted); ``output_map`` and ``last_batch_policy`` keep DALI's meaning.

    Raises:
        FileNotFoundError, ValueError, KeyError: (the dataset error types) for a missing or corrupt
            dataset, an unknown camera key, a short episode, weights that do not match the datasets,
            or any bad argument, before the first batch, naming the dataset and the problem.
    """

    def __init__(self, datasets, weights=None, target_frequency: float = 50.0, observation_horizon: Any = 1,
                 action_horizon: Any = 16, cameras: dict | None = None, augmentations=(), batch_size: int = 32,
                 device: str = "auto", device_id: int | None = None, seed: int = 0, shard_id: int | None = None,
                 num_shards: int | None = None,
                 shuffle: bool = True, epoch_size: int | None = None, last_batch_policy: Any = "FILL",
                 normalization: str | None = "mean_std", pad: bool = True, short_episodes: str = "error",
                 max_gap: float | None = None, timestamps: str = "relative", image_dtype: str = "uint8",
                 image_mean=None, image_std=None, method: str = "linear", output_map: list | None = None,
                 num_threads: int = 2, num_workers: int = 2, prefetch_queue_depth: int = 2,
                 frame_cache: Any = "auto") -> None:
        import robocache  # noqa: F401, PLC0415  (loads the plugin: fn.robocache.*)

        if isinstance(datasets, (str, bytes)) or not hasattr(datasets, "__len__") or len(datasets) == 0:
            raise ValueError("RobotDataLoader: datasets must be a non-empty list of datasets")
        specs = [as_spec(d) for d in datasets]
        f = float(target_frequency)
        if not (math.isfinite(f) and f > 0):
            raise ValueError(f"RobotDataLoader: target_frequency must be a positive number of Hz, got {target_frequency!r}")
        where = placement(shard_id, num_shards)
        shard_id, num_shards = where.shard_id, where.num_shards
        for name, v, lo in (("batch_size", batch_size, 1), ("num_shards", num_shards, 1), ("num_threads", num_threads, 1),
                            ("num_workers", num_workers, 0), ("prefetch_queue_depth", prefetch_queue_depth, 1)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
                raise ValueError(f"RobotDataLoader: {name} must be an int >= {lo}, got {v!r}")
        if isinstance(shard_id, bool) or not isinstance(shard_id, numbers.Integral) or not 0 <= shard_id < num_shards:
            raise ValueError(f"RobotDataLoader: shard_id must be in [0, num_shards={num_shards}), got {shard_id!r}"
                             + ("" if where.source == "explicit" else f" (shard_id, num_shards from {where.source})"))
        if device_id is not None and (isinstance(device_id, bool) or not isinstance(device_id, numbers.Integral) or device_id < 0):
            raise ValueError(f"RobotDataLoader: device_id must be an int >= 0 or None, got {device_id!r}")
        choices = {"normalization": (normalization, ("mean_std", "min_max", None)),
                   "short_episodes": (short_episodes, ("error", "skip")), "timestamps": (timestamps, ("relative", "episode")),
                   "image_dtype": (image_dtype, ("uint8", "float32")), "method": (method, ("linear", "nearest", "previous")),
                   "device": (device, ("auto", "cuda", "gpu", "cpu"))}
        for name, (v, ok) in choices.items():
            if v not in ok:
                raise ValueError(f"RobotDataLoader: {name} must be one of {ok}, got {v!r}")
        if max_gap is not None and not (isinstance(max_gap, numbers.Real) and max_gap > 0):
            raise ValueError(f"RobotDataLoader: max_gap must be a positive number of seconds or None, got {max_gap!r}")
        self.device = self._device(device)
        self._placement = where
        self.batch_size, self.seed, self.shard_id, self.num_shards = int(batch_size), int(seed), int(shard_id), int(num_shards)
        self.shuffle, self.last_batch_policy = bool(shuffle), _policy_name(last_batch_policy)
        self.target_frequency = f
        steps = (_steps(observation_horizon, f, "observation_horizon"), _steps(action_horizon, f, "action_horizon"))
        cams = self._cameras(cameras)
        aug = self._augmentations(augmentations, bool(cams))
        self._noise_seeded = "action_noise" in aug and "seed" not in aug["action_noise"]  # seeded per (epoch, shard) in __iter__
        cfg = {"steps": steps, "period": 1.0 / f, "cameras": cams, "pad": bool(pad), "short_episodes": short_episodes,
               "max_gap": max_gap}
        self.tasks: list = []
        self.hosts = [HostDataset(i, s, cfg, self.tasks) for i, s in enumerate(specs)]
        self.weights = self._weights(weights, specs)
        self.num_windows = [h.num_windows for h in self.hosts]
        self.epoch_size = int(epoch_size) if epoch_size is not None else int(sum(self.num_windows))
        if isinstance(epoch_size, bool) or self.epoch_size < 1:
            raise ValueError(f"RobotDataLoader: epoch_size must be an int >= 1, got {epoch_size!r}")
        if self.epoch_size < self.num_shards:
            raise ValueError(f"RobotDataLoader: epoch_size {self.epoch_size} is smaller than num_shards {self.num_shards}")
        if self.last_batch_policy == "drop" and self.epoch_size < self.global_batch_size:
            raise ValueError(f"RobotDataLoader: last_batch_policy DROP with epoch_size {self.epoch_size} smaller than the global batch "
                             f"{self.global_batch_size} (batch_size {self.batch_size} x {self.num_shards} shards) yields no batches")
        ds_dim = max(h.state_dim for h in self.hosts)
        da_dim = max(h.action_dim for h in self.hosts)
        mean = [0.0] * 3 if image_mean is None else [float(x) for x in image_mean]
        std = [1.0] * 3 if image_std is None else [float(x) for x in image_std]
        self.cfg = {**cfg, "state_dim": ds_dim, "action_dim": da_dim, "aug": aug, "normalization": normalization,
                    "timestamps": timestamps, "image_dtype": image_dtype, "image_mean": mean, "image_std": std,
                    "method": method, "seed": self.seed, "device": self.device, "device_id": self._device_id(device_id),
                    "encoded": {c: all(self._encoded(h, c) for h in self.hosts) for c in cams},
                    "video": camera_devices([e for h in self.hosts for e in h.episodes], cams, self.device),
                    "norm": [{g: norm_arrays(h.stats[g], normalization, ds_dim if g == "state" else da_dim)
                              for g in ("state", "action")} for h in self.hosts]}
        self.cfg["video_window"] = window_devices([e for h in self.hosts for e in h.episodes], self.cfg["video"])
        # normalisation in the DALI graph only where a DALI operator (action_noise) needs normalised
        # actions; otherwise after it (see _outside_norm)
        self.cfg["norm_in_dali"] = normalization is not None and "action_noise" in aug
        self.state_dim, self.action_dim, self.observation_steps, self.action_steps = ds_dim, da_dim, steps[0], steps[1]
        self.cfg["offsets"] = step_times(0.0, steps, 1.0 / f)
        for h in self.hosts:  # pad every episode to the common widths once (zeros), so windows are plain slices
            for e in h.episodes:
                for g, width in (("state", ds_dim), ("action", da_dim)):
                    v = getattr(e, g)
                    if v.shape[1] != width:
                        setattr(e, g, np.ascontiguousarray(np.pad(v, ((0, 0), (0, width - v.shape[1])))))
        self._table = window_table(self.hosts, self.cfg["offsets"])
        self._all_outputs = (["state", "state_mask", "state_dim_mask", "state_timestamps", "action", "action_mask",
                              "action_dim_mask", "action_timestamps"] + [f"images.{c}" for c in cams]
                             + ["dataset_index", "episode_index", "task", "index", "anchor_time"])
        if output_map is not None:
            bad = [k for k in output_map if k not in self._all_outputs]
            if bad or not output_map:
                raise ValueError(f"RobotDataLoader: output_map has unknown keys {bad}; available: {self._all_outputs}")
        self.output_map = list(output_map) if output_map is not None else list(self._all_outputs)
        self.num_threads, self.num_workers, self.prefetch_queue_depth = int(num_threads), int(num_workers), int(prefetch_queue_depth)
        self._pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="robocache-loader") if self.num_workers > 1 else None
        self._epoch, self._batches_done = 0, 0
        self._frame_pool = None
        if frame_cache is not None and frame_cache != "auto" and not (
                isinstance(frame_cache, numbers.Real) and not isinstance(frame_cache, bool) and frame_cache > 0):
            raise ValueError(f"RobotDataLoader: frame_cache must be 'auto', a positive number of GiB or None, got {frame_cache!r}")
        self._cache_budget, self._cache, self.frame_cache_stats = frame_cache, None, None

    # ------------------------------------------------------------------------------------ checks
    @staticmethod
    def _device(device: str) -> str:
        from .. import datasets  # noqa: F401, PLC0415
        from ..datasets.video import gpu_count  # noqa: PLC0415

        if device == "auto":
            return "cuda" if gpu_count() > 0 else "cpu"
        if device in ("cuda", "gpu"):
            if gpu_count() == 0:
                raise ValueError("RobotDataLoader: device='cuda' but DALI sees no CUDA device; use device='cpu'")
            return "cuda"
        return "cpu"

    def _device_id(self, device_id: int | None) -> int | None:
        if self.device != "cuda":
            return None
        from ..datasets.video import gpu_count  # noqa: PLC0415

        return gpu_for(device_id, self._placement.local_rank, gpu_count())

    @staticmethod
    def _cameras(cameras: dict | None) -> dict:
        out = {}
        for name, size in (cameras or {}).items():
            ok = isinstance(size, (tuple, list)) and len(size) == 2 and all(
                isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in size)
            if not isinstance(name, str) or not ok:
                raise ValueError(f"RobotDataLoader: cameras must map a name to (height, width) positive ints, got {name!r}: {size!r}")
            out[name] = (int(size[0]), int(size[1]))
        return out

    @staticmethod
    def _augmentations(augmentations, have_cameras: bool) -> dict:
        from nvidia.dali import fn  # noqa: PLC0415

        out = {}
        for a in augmentations or ():
            name, kw = (a, {}) if isinstance(a, str) else (dict(a).get("name"), {k: v for k, v in dict(a).items() if k != "name"})
            if name not in AUGMENTATIONS:
                raise ValueError(f"RobotDataLoader: unknown augmentation {a!r}; known: {', '.join(AUGMENTATIONS)}")
            if name == "color_jitter":
                bad = set(kw) - set(COLOR_JITTER_DEFAULTS)
                if bad:
                    raise ValueError(f"RobotDataLoader: color_jitter has no arguments {sorted(bad)}; it takes {sorted(COLOR_JITTER_DEFAULTS)}")
                if not have_cameras:
                    raise ValueError("RobotDataLoader: color_jitter needs cameras=")
                kw = {**COLOR_JITTER_DEFAULTS, **{k: float(v) for k, v in kw.items()}}
            elif not hasattr(fn.robocache, name):
                raise ValueError(f"RobotDataLoader: augmentation {name!r} needs the operator fn.robocache.{name}, which this "
                                 f"build of the RoboCache plugin does not have; remove {name!r} from augmentations or update robocache")
            elif name == "temporal_jitter":
                if "offset" in kw or "num_samples" in kw or "target_rate" in kw:
                    raise ValueError("RobotDataLoader: temporal_jitter's offset, num_samples and target_rate are set by the loader")
                speed = kw.get("speed", (0.8, 1.2))
                if len(speed) != 2 or not 0 < float(speed[0]) <= float(speed[1]):
                    raise ValueError(f"RobotDataLoader: temporal_jitter speed must be a range [lo, hi] with 0 < lo <= hi, got {speed!r}")
                kw = {**kw, "speed": (float(speed[0]), float(speed[1]))}
            out[name] = kw
        return out

    def _weights(self, weights, specs) -> np.ndarray:
        given = [s.weight for s in specs]
        if weights is not None and any(g is not None for g in given):
            raise ValueError("RobotDataLoader: give weights= or DatasetSpec.weight, not both")
        if weights is None and any(g is not None for g in given):
            if any(g is None for g in given):
                raise ValueError(f"RobotDataLoader: DatasetSpec.weight is set for some datasets only: {given}")
            weights = given
        if weights is None:
            w = np.array([h.num_windows for h in self.hosts], np.float64)
        else:
            w = np.asarray(list(weights), np.float64) if not isinstance(weights, (str, bytes)) else np.array([np.nan])
            if w.ndim != 1 or len(w) != len(self.hosts):
                raise ValueError(f"RobotDataLoader: weights has {w.size} entries but there are {len(self.hosts)} datasets "
                                 f"({', '.join(h.name for h in self.hosts)})")
            if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise ValueError(f"RobotDataLoader: weights must be finite, >= 0 and not all 0, got {list(weights)}")
        return w / w.sum()

    @staticmethod
    def _encoded(h: HostDataset, cam: str) -> bool:
        for e in h.episodes:
            s = e.cameras[cam][0]
            if s.kind != "image" or getattr(s.loader, "encoded", None) is None:
                return False
        return True

    # ------------------------------------------------------------------------------------ facts
    @property
    def dataset_names(self) -> list:
        """Display names of the datasets, in order."""
        return [h.name for h in self.hosts]

    def stats(self, dataset: int) -> dict:
        """Normalisation statistics of one dataset: ``{"state"|"action": {"mean", "std", "min", "max", "source"}}``."""
        return self.hosts[dataset].stats

    def layout(self, dataset: int) -> dict:
        """Which streams make up ``state``/``action`` and which stream each camera reads, for one dataset."""
        h = self.hosts[dataset]
        return {"state": h.state_keys, "action": h.action_keys, "cameras": dict(h.camera_keys),
                "state_dim": h.state_dim, "action_dim": h.action_dim}

    def plan(self, epoch: int | None = None) -> tuple:
        """The epoch's windows: ``(dataset [N], row [N])`` (see the class doc)."""
        return epoch_plan(self.num_windows, self.weights, self.epoch_size, self.seed, self._epoch if epoch is None else epoch, self.shuffle)

    def window(self, dataset: int, row: int) -> tuple:
        """``(episode index, anchor seconds)`` of window ``row`` of a dataset."""
        h = self.hosts[dataset]
        return h.episodes[int(h.win_episode[row])].index, float(h.win_anchor[row])

    def positions(self) -> np.ndarray:
        """Epoch positions this shard yields, in order (after the last-batch policy)."""
        return shard_positions(self.epoch_size, self.batch_size, self.shard_id, self.num_shards, self.last_batch_policy)

    @property
    def placement(self) -> Placement:
        """This loader's shard, shard count, ``LOCAL_RANK`` and where they came from
        (:class:`~robocache.loader.distributed.Placement`)."""
        return self._placement

    @property
    def device_id(self) -> int | None:
        """CUDA device of this loader's DALI pipeline (None on the CPU)."""
        return self.cfg["device_id"]

    @property
    def global_batch_size(self) -> int:
        """Samples per data-parallel step over all shards: ``batch_size * num_shards``."""
        return self.batch_size * self.num_shards

    def quotas(self) -> np.ndarray:
        """Windows per dataset in an epoch."""
        return quotas(self.weights, self.epoch_size)

    def __len__(self) -> int:
        return -(-len(self.positions()) // self.batch_size)

    # ------------------------------------------------------------------------------------ iteration
    def set_epoch(self, epoch: int) -> None:
        """Start the next iteration at ``epoch`` (like ``DistributedSampler.set_epoch``)."""
        self._epoch, self._batches_done = int(epoch), 0

    def __iter__(self):
        from nvidia.dali.plugin.base_iterator import LastBatchPolicy  # noqa: PLC0415
        from nvidia.dali.plugin.pytorch import DALIGenericIterator  # noqa: PLC0415

        epoch, start = self._epoch, self._batches_done
        pos = self.positions()
        b = self.batch_size
        batches = [pos[i:i + b] for i in range(start * b, len(pos), b)]
        if batches:
            if self._noise_seeded:  # independent action noise per rank and epoch (see the class doc)
                key = [self.seed & (2**64 - 1), epoch & (2**64 - 1), self.shard_id, 0x6E6F697365]
                self.cfg["aug"]["action_noise"]["seed"] = int(np.random.SeedSequence(key).generate_state(1)[0]) & 0x7FFFFFFF
            cache = self._frame_cache()  # before the PyAV workers: cached cameras need none
            source = BatchSource(self._table, self.cfg, self.plan(epoch), batches, epoch, self._pool,
                                 self._frames(cache.devices if cache is not None else ()), cache=cache)
            host = set(host_keys(self.cfg))
            dali_keys = [k for k in self.output_map if k not in host] or ["state"]  # a pipeline needs an output
            pipe = build_pipeline(source, self.cfg, dali_keys, b, self.num_threads, self.prefetch_queue_depth)
            with warnings.catch_warnings():  # outputs left out by output_map: expected, not a problem
                warnings.filterwarnings("ignore", message=r"The external source node .* are not used")
                it = DALIGenericIterator([pipe], dali_keys, size=-1, auto_reset=False,
                                         last_batch_policy=LastBatchPolicy.PARTIAL, prepare_first_batch=False)
            to_device = self._host_to_device()
            norm = self._outside_norm()
            wanted = [n for n in self.output_map if n in host]

            def produce():
                for k, out in source.checked(it):  # enumerate(it); a DALI failure names the batches' video files
                    h = source.host.pop(k)
                    got = to_device({n: h[n] for n in wanted + (["_d"] if norm and self.device == "cuda" else [])})
                    res = {n: got[n] if n in got else out[0][n] for n in self.output_map}
                    if norm:
                        norm(res, got["_d"] if self.device == "cuda" else h["_d"])
                    yield res

            # the DALI iterator and the hand-off run a few batches ahead in a thread (robocache.loader.transfer)
            for res in ahead_thread(produce(), self.cfg["device_id"] if self.device == "cuda" else None):
                self._batches_done += 1
                yield res
            del it, pipe
        self._epoch, self._batches_done = epoch + 1, 0

    def _outside_norm(self):
        """Normalisation after the DALI graph, ``(x - offset) * scale`` with the dataset's float32
        tables (the same two float32 operations the graph would do, so the same values), into the
        batch (new tensors); None when the graph normalises (``action_noise`` needs normalised actions) or
        there is no normalisation. On ``cuda``: torch kernels; on the CPU: numpy (a DALI arithmetic
        op with per-sample broadcasting costs more than the resampling)."""
        if self.cfg["norm_in_dali"] or self.cfg["normalization"] is None:
            return None
        import torch  # noqa: PLC0415

        tables = {g: tuple(np.stack([n[g][j] for n in self.cfg["norm"]]) for j in (0, 1)) for g in ("state", "action")}
        if self.device == "cuda":
            dev = torch.device("cuda", self.cfg["device_id"])
            tables = {g: tuple(torch.from_numpy(t).to(dev) for t in v) for g, v in tables.items()}

            def norm(res: dict, d) -> None:
                for g, (off, scale) in tables.items():
                    if g in res:
                        res[g] = (res[g] - off[d]) * scale[d]  # not in place: DALI may own the output
        else:
            def norm(res: dict, d) -> None:
                for g, (off, scale) in tables.items():
                    if g in res:
                        x = np.subtract(res[g].numpy(), off[d])  # a new array: DALI may own the output
                        np.multiply(x, scale[d], out=x)
                        res[g] = torch.from_numpy(x)
        return norm

    def _host_to_device(self):
        """Host outputs (numpy) -> torch tensors on the loader's device (on ``cuda``: one pinned,
        non-blocking copy per batch; see :mod:`robocache.loader.transfer`)."""
        return host_to_device(self.device, self.cfg["device_id"])

    def _frames(self, cached=()):
        """The worker processes decoding video frames (started on first use, kept across epochs);
        None: decode in this process (``num_workers <= 1`` or no PyAV-decoded video camera)."""
        if self._frame_pool is None and self.num_workers > 1 and self.cfg["cameras"]:
            from .frames import FramePool, video_streams  # noqa: PLC0415

            streams = video_streams(self._table, self.cfg, cached)
            if streams:
                try:
                    self._frame_pool = FramePool(streams, self.cfg, self.num_workers, ahead=self.prefetch_queue_depth + 2)
                except Exception as e:  # noqa: BLE001 - workers would not start: decode in this process
                    warnings.warn(f"RobotDataLoader: video decoding worker processes did not start ({e!r}); decoding in this "
                                  f"process", stacklevel=3)
                    self.num_workers = 1
        return self._frame_pool

    def _frame_cache(self):
        """The filled :class:`~robocache.loader.cache.FrameCache` (built and filled on first use), or
        None (no ``frame_cache``, no camera DALI decodes, or over the budget: per-window decoding)."""
        if self._cache is None and self._cache_budget is not None and self.cfg["video"]:
            from .cache import CacheTooLarge, FrameCache, auto_budget  # noqa: PLC0415

            auto = self._cache_budget == "auto"
            budget = auto_budget(self.device, self.cfg["device_id"]) if auto else float(self._cache_budget)
            try:
                if budget <= 0:
                    raise CacheTooLarge("no frame cache on the CPU unless asked for")
                cache = FrameCache(self._table["episodes"], self.cfg["cameras"], self.cfg["video"], self.device,
                                   self.cfg["device_id"], budget, num_threads=max(self.num_threads, 4))
            except CacheTooLarge as e:
                if not auto:
                    warnings.warn(f"{e}; decoding per window instead", stacklevel=3)
                self._cache_budget = None
                return None
            cache.fill()
            self._cache, self.frame_cache_stats = cache, cache.stats
        return self._cache

    def _fingerprint(self) -> dict:
        return {"seed": self.seed, "epoch_size": self.epoch_size, "global_batch_size": self.global_batch_size,
                "shuffle": self.shuffle, "last_batch_policy": self.last_batch_policy,
                "datasets": [[h.name, h.num_windows] for h in self.hosts], "weights": [round(float(w), 12) for w in self.weights]}

    def state_dict(self) -> dict:
        """Where iteration stands: epoch and batches (data-parallel steps) already delivered in it, what
        must match to resume, and this loader's ``batch_size``/``num_shards``/``shard_id`` (for information).
        The same on every rank of a job that steps together."""
        return {"version": 2, "epoch": self._epoch, "batches_done": self._batches_done, **self._fingerprint(),
                "batch_size": self.batch_size, "num_shards": self.num_shards, "shard_id": self.shard_id}

    def load_state_dict(self, state: dict) -> None:
        """Resume: the next ``iter(loader)`` yields the remaining batches of the saved epoch.

        A state saved by any rank resumes every rank (ranks step together), also at another world
        size with the same global batch ``batch_size * num_shards`` (the remaining steps are the same
        data; see the class doc for the last step).

        Raises:
            ValueError: when the state was saved by a loader with other datasets, seed, epoch size, global
                batch, shuffling or last-batch policy.
        """
        if state.get("version") == 1 and "global_batch_size" not in state:  # saved before data-parallel resume
            state = {**state, "global_batch_size": int(state.get("batch_size", 0)) * int(state.get("num_shards", 0))}
        mine = self._fingerprint()
        for k, v in mine.items():
            if state.get(k) != v:
                raise ValueError(f"RobotDataLoader.load_state_dict: {k} differs: saved {state.get(k)!r}, this loader {v!r}")
        done = state.get("batches_done")
        if isinstance(done, bool) or not isinstance(done, numbers.Integral) or not 0 <= done <= len(self):
            raise ValueError(f"RobotDataLoader.load_state_dict: batches_done must be in [0, {len(self)}], got {done!r}")
        self._epoch, self._batches_done = int(state["epoch"]), int(done)

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)
        frames = getattr(self, "_frame_pool", None)
        if frames is not None:
            frames.close()
