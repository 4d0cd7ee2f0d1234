"""GR00T-style training benchmark: does the GPU wait for data? RobotDataLoader on the GPU against a
LeRobot-style PyTorch DataLoader (CPU worker processes) at 4, 8 and 16 workers, feeding the same
GR00T-N1-style policy (benchmarks/groot_model.py) on the same data, GPU and CPU count, in one run.

    python benchmarks/groot_bench.py [--data <copy of shared/data>] [--configs dl4,dl8,dl16,robocache,synthetic]
                                     [--models small,large] [--out benchmarks/results/groot_bench_<device>.json]

Data (benchmarks/groot_data.py, built once under ``--cache-dir``): LeRobot v2.1, GR00T flavour
(``meta/modality.json``), 240 episodes of 2.5-3.3 s at 30 Hz, 26-DoF Unitree G1 state/action, 2
cameras of 224x224 H.264 (GOP 2), tiled from the real sample ``datasets/lerobot_v21_unitree_g1`` under
``--data`` when present, generated otherwise. Each sample: the state at the anchor, a 16-step action
chunk, one frame per camera, colour jitter.

Per configuration (loader x model): training steps/s and samples/s, the fraction of the step time
spent waiting for the next batch, GPU utilisation (NVML, sampled in a background thread), host CPU
utilisation, peak host RSS (this process and its worker processes), peak GPU memory, and the loader
alone (no model) in samples/s. ``synthetic`` trains on one fixed batch already on the GPU: the
model's own speed, the ceiling a loader can reach. ``robocache`` uses RobotDataLoader's frame cache
(each video file decoded once by NVDEC into GPU memory on the first ``iter()``; the fill is timed
and reported apart), ``robocache_window`` decodes per window. Rates are steady-state: the warm-up
first uses up the batches a loader decoded ahead (a DataLoader's ``workers x prefetch_factor``). The
host keeps at most one step queued ahead of the GPU (as a loop that logs its loss). A decode check
compares RobotDataLoader's frames (NVDEC per window and from the cache) with PyAV's on the CPU for
the same windows. Prints a table last; writes the JSON to ``--out`` and a PNG next to it.

Without a GPU the benchmark runs at toy size (few episodes, tiny models, CPU everywhere) and says so.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))
sys.path.insert(0, str(HERE))
import groot_data  # noqa: E402
import groot_model  # noqa: E402
import robocache  # noqa: E402
import torch  # noqa: E402
from robocache import DatasetSpec, RobotDataLoader  # noqa: E402
from robocache.loader.host import nearest_frame, step_times, valid_mask  # noqa: E402
from robocache.loader.pipeline import COLOR_JITTER_DEFAULTS, augment_rng  # noqa: E402

GPU = torch.cuda.is_available()
DEV = "cuda" if GPU else "cpu"
FREQ, TO, TA = 30.0, 1, 16


def sync():
    if GPU:
        torch.cuda.synchronize()


def log(*a):
    print(*a, flush=True)


# ----------------------------------------------------------------------------------- monitor
class Monitor:
    """Background sampler: GPU utilisation and memory (NVML, optional), host CPU utilisation (psutil,
    else /proc/stat) and the RSS of this process plus its children (worker processes)."""

    def __init__(self, period: float = 0.05) -> None:
        self.period, self.nvml, self.handle = period, None, None
        if GPU:
            try:
                import pynvml  # noqa: PLC0415 (nvidia-ml-py)

                pynvml.nvmlInit()
                idx = torch.cuda.current_device()
                visible = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
                if idx < len(visible) and visible[idx].strip().isdigit():
                    idx = int(visible[idx])  # NVML ignores CUDA_VISIBLE_DEVICES
                self.handle = pynvml.nvmlDeviceGetHandleByIndex(idx)
                self.nvml = pynvml
            except Exception as e:  # noqa: BLE001 - NVML is optional
                log(f"NVML unavailable ({type(e).__name__}: {e}): no GPU utilisation")
        try:
            import psutil  # noqa: PLC0415

            self.ps = psutil
            self.proc = psutil.Process()
        except ImportError:
            self.ps = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.reset()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def reset(self) -> None:
        with self._lock:
            self.util, self.peak_rss, self.peak_gpu_used, self.recording = [], 0, 0, False

    def _rss(self) -> int:
        if self.ps is None:
            import resource  # noqa: PLC0415

            return 1024 * (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        total = 0
        try:
            procs = [self.proc] + self.proc.children(recursive=True)
        except Exception:  # noqa: BLE001 - a child that exited while listing
            procs = [self.proc]
        for p in procs:
            try:
                total += p.memory_info().rss
            except Exception:  # noqa: BLE001 - a worker that just exited
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            rss = self._rss()
            u = used = None
            if self.nvml is not None:
                try:
                    u = self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu
                    used = self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used
                except Exception:  # noqa: BLE001
                    pass
            with self._lock:
                self.peak_rss = max(self.peak_rss, rss)
                if used is not None:
                    self.peak_gpu_used = max(self.peak_gpu_used, used)
                if self.recording and u is not None:
                    self.util.append(u)

    @staticmethod
    def _cpu_times() -> tuple:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v), idle

    def start_window(self) -> None:
        with self._lock:
            self.util, self.recording = [], True
        self._cpu0 = self._cpu_times()

    def stop_window(self) -> dict:
        total, idle = self._cpu_times()
        dt, di = total - self._cpu0[0], idle - self._cpu0[1]
        with self._lock:
            self.recording = False
            util = list(self.util)
        ncpu = os.cpu_count() or 1
        cpu = 100.0 * (dt - di) / dt if dt > 0 else float("nan")
        return {"gpu_util_pct": float(np.mean(util)) if util else None, "gpu_util_samples": len(util),
                "cpu_util_pct": cpu, "cpu_cores_busy": cpu / 100 * ncpu}

    def close(self) -> None:
        self._stop.set()
        self._t.join(timeout=1)


# ----------------------------------------------------------------------------------- baseline
def _one_thread(_):
    torch.set_num_threads(1)  # one process per CPU: no intra-op oversubscription


def color_twist(img: torch.Tensor, b: float, c: float, s: float, h: float) -> torch.Tensor:
    """DALI-``color_twist``-like colour jitter on the CPU: brightness and contrast (around mid-grey),
    saturation and hue as one 3x3 matrix in YIQ space. ``img`` uint8 ``[H, W, 3]``."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.321], [0.211, -0.523, 0.311]])
    a = math.radians(h)
    rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, s * math.cos(a), -s * math.sin(a)], [0.0, s * math.sin(a), s * math.cos(a)]])
    m = torch.linalg.inv(to_yiq) @ rot @ to_yiq * (b * c)
    off = 128.0 * (1 - c) * b
    x = img.reshape(-1, 3).float() @ m.T + off
    return x.round_().clamp_(0, 255).to(torch.uint8).reshape(img.shape)


class LeRobotStyleDataset(torch.utils.data.Dataset):
    """What a LeRobot / GR00T-style PyTorch pipeline does per item in a worker process: look up the
    window (the same epoch plan as the RoboCache loader), concatenate the GR00T state/action slices,
    resample them to the target clock (numpy.interp), normalise with the dataset statistics, decode
    each camera's frame with PyAV (the same decoder the RoboCache loader's host threads use) and
    resize it when its size differs, colour-jitter it (same parameter draws as the RoboCache loader)."""

    def __init__(self, loader: RobotDataLoader, size: tuple) -> None:
        self.hosts, self.cfg, self.size = loader.hosts, loader.cfg, size
        self.plan = loader.plan(0)
        self.cams = list(loader.cfg["cameras"])
        for h in self.hosts:  # pick video decoders before the worker processes fork
            for e in h.episodes:
                for stream, _ in e.cameras.values():
                    if stream.video is not None:
                        stream.video.backend  # noqa: B018

    def __len__(self):
        return len(self.plan[0])

    def __getitem__(self, p):
        d, r = int(self.plan[0][p]), int(self.plan[1][p])
        h = self.hosts[d]
        e = h.episodes[int(h.win_episode[r])]
        t = float(h.win_anchor[r])
        item = {}
        for g, tt in zip(("state", "action"), step_times(t, self.cfg["steps"], self.cfg["period"])):
            ts, v = getattr(e, g + "_ts"), getattr(e, g)[:, : getattr(h, g + "_dim")]
            x = np.stack([np.interp(tt, ts, v[:, c]) for c in range(v.shape[1])], 1)
            st = h.stats[g]
            x = (x - st["mean"]) / np.where(st["std"] > 1e-8, st["std"], 1.0)
            out = np.zeros((len(tt), self.cfg[g + "_dim"]), np.float32)
            out[:, : x.shape[1]] = x
            item[g] = torch.from_numpy(out)
            if g == "action":  # the state is one step at the anchor, always valid: no mask (as the RoboCache output_map)
                item[g + "_mask"] = torch.from_numpy(valid_mask(ts, tt, e.max_gap[g]))
        rng = augment_rng(self.cfg["seed"], 0, p, 1)
        kw = COLOR_JITTER_DEFAULTS
        jit = [rng.uniform(1 - kw["brightness"], 1 + kw["brightness"]), rng.uniform(1 - kw["contrast"], 1 + kw["contrast"]),
               rng.uniform(1 - kw["saturation"], 1 + kw["saturation"]), rng.uniform(-kw["hue"], kw["hue"])]
        for cam in self.cams:
            stream, cts = e.cameras[cam]
            j = nearest_frame(cts, t)
            x = torch.from_numpy(np.ascontiguousarray(stream.read(j, j + 1)[0]))
            if tuple(x.shape[:2]) != self.size:
                y = torch.nn.functional.interpolate(x.permute(2, 0, 1)[None].float(), size=self.size, mode="bilinear",
                                                    antialias=True, align_corners=False)
                x = y[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8)
            item[f"images.{cam}"] = color_twist(x, *jit)
        return item


def baseline_batches(loader: RobotDataLoader, size: tuple, workers: int, batch_size: int):
    """Endless batches of a LeRobot-style DataLoader, copied to the training device."""
    # fd sharing of worker tensors broke in the GPU machine's container; shared files work everywhere
    torch.multiprocessing.set_sharing_strategy("file_system")
    ds = LeRobotStyleDataset(loader, size)
    dl = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=GPU,
                                     persistent_workers=True, prefetch_factor=4, drop_last=True, worker_init_fn=_one_thread)
    while True:
        for b in dl:
            yield {k: v.to(DEV, non_blocking=True) for k, v in b.items()}


def fixed_batches(b: dict):
    """The same batch, already on the device, forever: the model's speed with no loader at all."""
    while True:
        yield b


def robocache_batches(loader: RobotDataLoader):
    while True:
        yield from loader


# ----------------------------------------------------------------------------------- measuring
def loader_rate(it, batches: int, batch_size: int, buffered: int = 0) -> float:
    """Loader alone, at steady state: the batches it holds decoded ahead (``buffered``) are drawn
    first, then ``batches`` are timed."""
    for _ in range(2 + buffered):
        next(it)
    sync()
    t0 = time.perf_counter()
    for _ in range(batches):
        b = next(it)
    sync()
    del b
    return batches * batch_size / (time.perf_counter() - t0)


class GraphedStep:
    """One training step (forward under autocast, backward, AdamW) captured as a CUDA graph and
    replayed per batch: the batch is copied into static input tensors, then the whole step is one
    launch, so a small model is not bound by the host's kernel launches (PyTorch's whole-network
    capture recipe: warm-up on a side stream, grads set to None before capture, a capturable
    optimizer, autocast without its weight cache). Every loader configuration trains through the
    same step, so the comparison between loaders stays like for like."""

    def __init__(self, model, opt, ctx, example: dict, warmup: int = 3) -> None:
        self.static = {k: v.clone() for k, v in example.items()}
        self.opt = opt  # its state tensors are the graph's: they must outlive it
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(warmup):
                groot_model.train_step(model, opt, self.static, ctx)
        torch.cuda.current_stream().wait_stream(s)
        self.graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            with ctx():
                self.loss = model(self.static)
            self.loss.backward()
            opt.step()

    def __call__(self, b: dict) -> torch.Tensor:
        for k, v in self.static.items():
            v.copy_(b[k], non_blocking=True)
        self.graph.replay()
        return self.loss


def make_step(model_size: str, cams: list, dims: tuple, args, example: dict):
    """``(model, step, how)``: the policy and its training step, CUDA-graphed on a GPU unless
    ``--eager`` (falls back to eager, saying why, when capture fails)."""

    def build():
        torch.manual_seed(0)
        with torch.device(DEV):
            model = groot_model.GrootStylePolicy(model_size, cams, dims[0], dims[1], TA)
        graph = GPU and not args.eager
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=GPU, capturable=graph)
        return model, opt

    ctx = groot_model.autocast(DEV)
    model, opt = build()
    if GPU and not args.eager:
        try:
            return model, GraphedStep(model, opt, ctx, example), "cuda graph"
        except Exception as e:  # noqa: BLE001 - reported; the run goes on eagerly
            log(f"  CUDA graph capture failed ({type(e).__name__}: {e}); training eagerly")
            del model, opt
            torch.cuda.synchronize()
            model, opt = build()
            how = f"eager (graph capture failed: {type(e).__name__})"
    else:
        how = "eager"

    return model, lambda b: groot_model.train_step(model, opt, b, ctx), how


def train(it, model_size: str, cams: list, dims: tuple, args, mon: Monitor, buffered: int = 0) -> dict:
    """Warm-up, then timed steps (at least ``args.steps`` and ``args.min_seconds``, at most 50x steps).

    The host keeps at most one step queued ahead of the GPU (it waits for the previous step's end
    event after launching the current one), as a training loop that logs the loss does; the time in
    ``next(it)`` (batch fetch plus host-to-device copy) is the wait for data.
    """
    if GPU:
        torch.cuda.reset_peak_memory_stats()
    model, step, how = make_step(model_size, cams, dims, args, next(it))
    for _ in range(args.warmup + buffered):  # steady state: what the loader decoded ahead is used up first
        loss = step(next(it))
    sync()
    mon.start_window()
    waits, starts, ends = [], [], []
    n, t0 = 0, time.perf_counter()
    while n < args.steps or (time.perf_counter() - t0 < args.min_seconds and n < 50 * args.steps):
        tw = time.perf_counter()
        b = next(it)
        waits.append(time.perf_counter() - tw)
        if GPU:
            starts.append(torch.cuda.Event(enable_timing=True))
            starts[-1].record()
        loss = step(b)
        if GPU:
            ends.append(torch.cuda.Event(enable_timing=True))
            ends[-1].record()
            if n > 0:
                ends[-2].synchronize()  # at most one step queued ahead of the GPU
        n += 1
    sync()
    dt = time.perf_counter() - t0
    win = mon.stop_window()
    wait = float(sum(waits))
    # GPU stream idle between steps (waiting for the host: the batch, its copy, the next launches), from CUDA events
    busy = None
    if GPU and n > 1:
        span = starts[0].elapsed_time(ends[-1])
        gaps = sum(max(ends[k].elapsed_time(starts[k + 1]), 0.0) for k in range(n - 1))
        busy = 100.0 * (1.0 - gaps / span) if span > 0 else None
    bs = len(b["action"])
    out = {"model": model_size, "vision": model.vit_name, "training_step": how, "params_total": sum(p.numel() for p in model.parameters()),
           "params_transformer": model.transformer_params(), "steps": n, "seconds": dt, "steps_per_s": n / dt,
           "samples_per_s": n * bs / dt, "wait_fraction": wait / dt,
           "wait_ms_p50": 1e3 * float(np.percentile(waits, 50)), "wait_ms_p95": 1e3 * float(np.percentile(waits, 95)),
           "gpu_stream_busy_pct": busy, "final_loss": float(loss.detach().float()),
           "gpu_max_memory_allocated_bytes": torch.cuda.max_memory_allocated() if GPU else None, **win}
    del model, step, loss
    gc.collect()
    if GPU:
        torch.cuda.empty_cache()
    return out


def check_decode(spec, backend: str, common: dict, batches: int) -> dict:
    """RobotDataLoader on the training device with ``backend`` (on a GPU: frames decoded by NVDEC
    inside its DALI pipeline), per window and from its frame cache, against the same windows from a
    CPU RobotDataLoader decoding with PyAV (no colour jitter, 8 episodes): images within YUV-to-RGB
    rounding, state/action within float32 rounding, masks and indices equal."""
    kw = {**common, "augmentations": [], "batch_size": 16, "epoch_size": 16 * batches, "output_map": None, "seed": 7}
    eps = list(range(8))
    want = [{k: v.numpy() for k, v in b.items()} for b in RobotDataLoader(spec("pyav", eps), device="cpu", num_workers=1, **kw)]
    out = {}
    # per window: NVDEC inside the pipeline needs video_backend="dali-gpu" by name ('auto' without a cache: PyAV workers)
    window_backend = "dali-gpu" if GPU and backend == "auto" else backend
    for mode, cache, vb in (("per_window", None, window_backend), ("frame_cache", 4.0, backend)):
        test = RobotDataLoader(spec(vb, eps), device=DEV, num_workers=1, num_threads=2, frame_cache=cache, **kw)
        got = [{k: v.cpu().numpy() for k, v in b.items()} for b in test]
        img, low, exact = [], 0.0, True
        for g, w in zip(got, want):
            for k in w:
                if k.startswith("images."):
                    img.append(np.abs(g[k].astype(np.int16) - w[k].astype(np.int16)).ravel())
                elif w[k].dtype.kind == "f":
                    low = max(low, float(np.max(np.abs(g[k].astype(np.float64) - w[k]))) if w[k].size else 0.0)
                else:
                    exact &= bool(np.array_equal(g[k], w[k]))
        d = np.concatenate(img) if img else np.zeros(1, np.int16)
        r = {"video_decode": dict(test.cfg["video_window"] if cache is None else test.cfg["video"]), "backend": vb,
             "frame_cache": test.frame_cache_stats, "batches": len(got),
             "image_abs_diff_mean": float(d.mean()), "image_abs_diff_p99": float(np.percentile(d, 99)),
             "image_abs_diff_max": int(d.max()), "lowdim_max_abs_diff": low, "exact_outputs_equal": exact}
        r["ok"] = bool(len(got) == len(want) == batches and exact and low < 1e-4 and r["image_abs_diff_mean"] < 2.0
                       and r["image_abs_diff_p99"] <= 16)
        out[mode] = r
    out.update({"backend": backend, "samples": 16 * batches, "ok": all(out[m]["ok"] for m in ("per_window", "frame_cache"))})
    return out


def shapes(b: dict) -> dict:
    return {k: [list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in sorted(b.items())}


# ----------------------------------------------------------------------------------- output
def table(res: dict) -> str:
    hdr = (f"{'loader':<36}{'model':<11}{'steps/s':>9}{'samples/s':>11}{'wait %':>8}{'GPU util %':>11}{'GPU busy %':>11}{'CPU %':>7}"
           f"{'RSS GiB':>9}{'GPU mem GiB':>12}{'loader alone/s':>16}")
    lines = [hdr, "-" * len(hdr)]
    for r in res["runs"]:
        gu = "n/a" if r["gpu_util_pct"] is None else f"{r['gpu_util_pct']:.1f}"
        gm = "n/a" if r["gpu_max_memory_allocated_bytes"] is None else f"{r['gpu_max_memory_allocated_bytes'] / 2**30:.2f}"
        la = "n/a" if r["loader_alone_samples_per_s"] is None else f"{r['loader_alone_samples_per_s']:.1f}"
        gb = "n/a" if r["gpu_stream_busy_pct"] is None else f"{r['gpu_stream_busy_pct']:.1f}"
        lines.append(f"{r['loader']:<36}{r['model']:<11}{r['steps_per_s']:>9.2f}{r['samples_per_s']:>11.1f}"
                     f"{100 * r['wait_fraction']:>8.1f}{gu:>11}{gb:>11}{r['cpu_util_pct']:>7.1f}{r['peak_host_rss_bytes'] / 2**30:>9.2f}"
                     f"{gm:>12}{la:>16}")
    steps = sorted({r.get("training_step", "eager") for r in res["runs"]})
    lines.append(f"training step: {', '.join(steps)} (the same for every loader configuration)")
    lines.append("no loader: one fixed batch on the device (the model's own speed, the ceiling); GPU util: NVML, sampled every 50 ms;")
    lines.append("GPU busy: CUDA stream time not spent waiting between steps (events); wait: time in next(batch) incl. the "
                 "host-to-device copy; CPU: all cores; RSS: process + workers")
    for m, s in res.get("speedup_vs_best_dataloader", {}).items():
        lines.append(f"{m}: RobotDataLoader training samples/s / best PyTorch DataLoader configuration's = {s:.2f}x")
    c = res.get("decode_check")
    if c and "error" in c:
        lines.append(f"RobotDataLoader decode check FAILED: {c['error']}")
    for mode in ("per_window", "frame_cache"):
        r = (c or {}).get(mode)
        if r:
            lines.append(f"RobotDataLoader {mode.replace('_', ' ')} (video {r['video_decode']}) vs PyAV on the CPU, same windows: "
                         f"images |diff| mean {r['image_abs_diff_mean']:.2f} p99 {r['image_abs_diff_p99']:.0f} max "
                         f"{r['image_abs_diff_max']}, state/action max |diff| {r['lowdim_max_abs_diff']:.1e}, masks/indices "
                         f"equal {r['exact_outputs_equal']}: {'OK' if r['ok'] else 'MISMATCH'}")
    fc = res.get("frame_cache")
    if fc:
        lines.append(f"RobotDataLoader frame cache: {fc['frames']} frames, {fc['bytes'] / 2**30:.2f} GiB on {fc['device']}, filled "
                     f"in {fc['fill_seconds']:.1f} s on the first iter() (first batch after {fc['first_batch_seconds']:.1f} s), "
                     f"not in the rates above")
    return "\n".join(lines)


def plot(res: dict, path: Path) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    models = list(dict.fromkeys(r["model"] for r in res["runs"]))
    loaders = list(dict.fromkeys(r["loader"] for r in res["runs"]))
    fig, axes = plt.subplots(1, 5, figsize=(25, 4.8))
    width = 0.8 / max(len(loaders), 1)
    greys = ["#c8c8c8", "#a0a0a0", "#787878", "#505050", "#303030"]

    def color(ld: str) -> str:
        if "RobotDataLoader" in ld:
            return "#76b900"
        if ld.startswith("no loader"):
            return "#1f77b4"
        dls = [x for x in loaders if x.startswith("DataLoader")]
        return greys[min(dls.index(ld), len(greys) - 1)]

    panels = (("samples_per_s", "training samples/s", 1.0),
              ("gpu_stream_busy_pct", "GPU busy % (CUDA events: stream not idle between steps)", 1.0),
              ("wait_fraction", "% of step waiting for data", 100.0), ("gpu_util_pct", "GPU utilisation % (NVML)", 1.0))
    for ax, (key, title, scale) in zip(axes, panels):
        for j, ld in enumerate(loaders):
            xs, ys = [], []
            for i, m in enumerate(models):
                r = next((r for r in res["runs"] if r["loader"] == ld and r["model"] == m), None)
                if r is not None and r[key] is not None:
                    xs.append(i + (j - (len(loaders) - 1) / 2) * width)
                    ys.append(r[key] * scale)
            bars = ax.bar(xs, ys, width, label=ld, color=color(ld))
            ax.bar_label(bars, fmt="%.0f" if key == "samples_per_s" else "%.1f", fontsize=7)
        if key in ("gpu_util_pct", "gpu_stream_busy_pct"):
            ax.axhline(95, color="red", lw=0.8, ls="--")
            ax.set_ylim(0, 105)
            if all(r[key] is None for r in res["runs"]):
                ax.text(0.5, 0.5, "no GPU (CPU toy run)", transform=ax.transAxes, ha="center")
        if key == "wait_fraction":
            ax.axhline(5, color="red", lw=0.8, ls="--")
        ax.set_xticks(range(len(models)), [f"{m} model" for m in models])
        ax.set_title(title, fontsize=9 if len(title) > 40 else None)
        ax.set_xlim(-0.5, len(models) - 0.5)
    ax = axes[4]
    alone = {r["loader"]: r["loader_alone_samples_per_s"] for r in res["runs"] if r["loader_alone_samples_per_s"] is not None}
    bars = ax.bar(range(len(alone)), list(alone.values()),
                  color=[color(k) for k in alone])
    ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks(range(len(alone)), [k.replace(" workers", "w").replace("DataLoader", "DL") for k in alone], fontsize=7)
    ax.set_title("loader alone (no model), samples/s")
    axes[0].legend(fontsize=8)
    e = res["env"]
    steps = ", ".join(sorted({r.get("training_step", "eager") for r in res["runs"]}))
    fig.suptitle(f"GR00T-style training, batch {res['settings']['batch_size']}, training step: {steps}, {e['gpu']}, {e['cpus']} CPUs"
                 + (" (TOY SIZE: CPU only)" if res["settings"]["toy"] else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------- main
def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data",
                    help="folder laid out like shared/data (the real sample is tiled when present)")
    ap.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "robocache" / "groot_bench")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/groot_bench_<device>.json)")
    ap.add_argument("--configs", default="dl4,dl8,dl16,robocache,synthetic",
                    help="comma list: dl<N> (PyTorch DataLoader, N workers), robocache (RobotDataLoader), synthetic (no loader: "
                         "one fixed batch already on the device, the model's ceiling)")
    ap.add_argument("--models", default="small,large")
    ap.add_argument("--toy", action="store_true", help="toy size (the default without a GPU)")
    ap.add_argument("--episodes", type=int, default=None)
    ap.add_argument("--frames", type=int, default=None, help="frames per episode (30 Hz)")
    ap.add_argument("--cameras", type=int, default=None, choices=(1, 2, 3))
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None, help="timed training steps per configuration (at least)")
    ap.add_argument("--min-seconds", type=float, default=None, help="timed training lasts at least this long (max 50x steps)")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--loader-batches", type=int, default=None, help="batches timed for the loader alone")
    ap.add_argument("--cpus", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    ap.add_argument("--video-backend", default="auto",
                    help="RobotDataLoader's video decoder: auto (H.264 on a GPU: NVDEC inside its DALI pipeline; PyAV "
                         "without a GPU), dali-gpu, dali-cpu or pyav (the DataLoader always uses PyAV)")
    ap.add_argument("--robocache-threads", type=int, default=None, help="RobotDataLoader's DALI threads (default min(8, cpus))")
    ap.add_argument("--frame-cache-gib", type=float, default=48.0,
                    help="RobotDataLoader's frame_cache budget for the robocache configuration (0: off; robocache_window is "
                         "always per-window decoding)")
    ap.add_argument("--eager", action="store_true", help="train eagerly (default on a GPU: the training step is one CUDA "
                    "graph, the same for every loader configuration)")
    ap.add_argument("--alone", default="", help="comma list of configurations timed as the loader alone only (no training)")
    ap.add_argument("--check-batches", type=int, default=None, help="batches compared between RobotDataLoader on the GPU and "
                    "the same windows decoded by PyAV on the CPU")
    a = ap.parse_args(argv)
    a.toy = a.toy or not GPU
    dflt = ({"episodes": 8, "frames": 40, "cameras": 1, "batch_size": 4, "steps": 3, "min_seconds": 0.0, "warmup": 1,
             "loader_batches": 3, "check_batches": 1} if a.toy else
            {"episodes": 240, "frames": 100, "cameras": 2, "batch_size": 64, "steps": 40, "min_seconds": 8.0, "warmup": 5,
             "loader_batches": 30, "check_batches": 2})
    for k, v in dflt.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.robocache_threads is None:
        a.robocache_threads = max(1, min(8, a.cpus))
    if a.out is None:
        name = torch.cuda.get_device_name(0) if GPU else ""
        tag = next((g.lower() for g in ("H100", "H200", "B200", "A100") if g in name), DEV)
        a.out = HERE / "results" / f"groot_bench_{tag}.json"
    return a


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), platform.processor())
    except OSError:
        return platform.processor()


def main(argv=None) -> int:
    a = parse(argv)
    import nvidia.dali as dali  # noqa: PLC0415

    try:
        import timm  # noqa: PLC0415

        timm_v = timm.__version__
    except ImportError:
        timm_v = None
    env = {"python": platform.python_version(), "torch": torch.__version__, "dali": dali.__version__, "robocache": robocache.__version__,
           "timm": timm_v, "gpu": torch.cuda.get_device_name(0) if GPU else "none", "cpus": a.cpus, "cpu_model": _cpu_model()}
    if a.toy:
        log("TOY SIZE: " + ("no GPU, " if not GPU else "") + "CPU-only toy run (few episodes, tiny models); numbers are not the benchmark")
    log(f"GPU {env['gpu']}, {a.cpus} CPUs, torch {env['torch']}, DALI {env['dali']}, timm {timm_v}")
    src = a.data / "datasets" / groot_data.SOURCE
    path = groot_data.build(a.cache_dir, a.episodes, a.cameras, a.frames, 224, src if src.is_dir() else None, log=log)
    cams = list(groot_data.CAMERA_NAMES[: a.cameras])
    size = (224, 224)
    models = [("toy_" + m if a.toy else m) for m in a.models.split(",") if m]
    configs = [c for c in a.configs.split(",") if c]
    for c in configs:
        if not (c in ("robocache", "robocache_window", "synthetic") or (c.startswith("dl") and c[2:].isdigit())):
            raise SystemExit(f"unknown config {c!r}: use dl<N>, robocache, robocache_window or synthetic")
    # workers capped at the CPU count (dl16 on 8 CPUs runs 8 workers); duplicates after capping dropped
    seen, plan = set(), []
    for c in configs:
        key = c if c in ("robocache", "robocache_window", "synthetic") else min(int(c[2:]), a.cpus)
        if key not in seen:
            seen.add(key)
            plan.append(key)
    # DataLoaders first (their workers fork before any DALI thread exists), then RobotDataLoader, then no loader
    plan.sort(key=lambda k: (isinstance(k, str), k == "synthetic", k if isinstance(k, int) else 0))
    epoch = 100_000 if not a.toy else 2000
    common = dict(target_frequency=FREQ, observation_horizon=TO, action_horizon=TA, cameras={c: size for c in cams},
                  augmentations=["color_jitter"], batch_size=a.batch_size, seed=0, epoch_size=epoch,
                  output_map=["state", "action", "action_mask"] + [f"images.{c}" for c in cams])
    spec = lambda vb, eps=None: [DatasetSpec(str(path), cameras={c: f"video.{c}" for c in cams}, episodes=eps,  # noqa: E731
                                             open_kwargs={"video_backend": vb})]
    t = time.perf_counter()
    base = RobotDataLoader(spec("pyav"), device="cpu", num_workers=1, **common)
    log(f"dataset {path.name}: {sum(base.num_windows)} windows, state {base.state_dim}-D, action {base.action_dim}-D, "
        f"opened in {time.perf_counter() - t:.1f} s")
    dims = (base.state_dim, base.action_dim)
    mon = Monitor()
    res = {"env": env, "settings": {"toy": a.toy, "batch_size": a.batch_size, "steps_min": a.steps, "min_seconds": a.min_seconds,
                                    "warmup": a.warmup, "loader_batches": a.loader_batches, "cameras": cams, "image_size": list(size),
                                    "target_frequency": FREQ, "observation_steps": TO, "action_steps": TA,
                                    "augmentations": ["color_jitter"], "video_backend_robocache": a.video_backend, "robocache_threads": a.robocache_threads,
                                    "video_backend_dataloader": "pyav", "dataset": str(path), "episodes": a.episodes,
                                    "windows": int(sum(base.num_windows)), "models": models, "configs": [str(p) for p in plan]},
           "runs": [], "batch_shapes": {}}
    for key in plan:
        t = time.perf_counter()
        mon.reset()
        if key == "synthetic":
            name = "no loader (fixed batch)"
            if not res["batch_shapes"]:
                raise SystemExit("--configs synthetic needs a loader configuration too (it reuses that loader's batch)")
            it = fixed_batches({k: v.clone() for k, v in keep.items()})
        elif key in ("robocache", "robocache_window"):
            cache = a.frame_cache_gib if key == "robocache" and a.frame_cache_gib > 0 else None
            name = f"RobotDataLoader ({DEV})" + ("" if key == "robocache" else " per window")
            ld = RobotDataLoader(spec(a.video_backend), device=DEV, num_workers=a.cpus, num_threads=a.robocache_threads,
                                 prefetch_queue_depth=3, frame_cache=cache, **common)
            it = robocache_batches(ld)
            buffered = 3 + 2  # DALI prefetch queue + batches assembled ahead
        else:
            name = f"DataLoader {key} workers"
            it = baseline_batches(base, size, key, a.batch_size)
            buffered = key * 4  # workers x prefetch_factor batches decoded ahead
        first = next(it)
        if str(key).startswith("robocache"):
            placed = {c: ("frame cache (decoded once, " + ld.cfg["video"][c] + ")" if ld.frame_cache_stats
                          and c in ld.frame_cache_stats["cameras"] else "DALI per window (" + ld.cfg["video_window"][c] + ")"
                          if c in ld.cfg["video_window"] else "host (PyAV workers)") for c in cams}
            res["settings"].setdefault("robocache_video_decode", {})[str(key)] = placed
            log(f"{name}: video decoded {placed} (mixed: NVDEC; cpu: DALI's CPU decoder), {a.robocache_threads} DALI threads")
        if key == "robocache" and ld.frame_cache_stats:
            name = f"RobotDataLoader ({DEV}, frame cache)"
            fc = ld.frame_cache_stats
            res["frame_cache"] = {**fc, "first_batch_seconds": time.perf_counter() - t}
            log(f"{name}: frame cache filled on the first iter(): {fc['frames']} frames of {cams}, {fc['bytes'] / 2**30:.2f} GiB "
                f"on {fc['device']}, in {fc['fill_seconds']:.1f} s (NVDEC, each file decoded once)")
        res["batch_shapes"][name] = shapes(first)
        keep = {k: v.clone() for k, v in first.items()}
        del first
        buffered = 0 if key == "synthetic" else buffered
        alone = None if key == "synthetic" else loader_rate(it, a.loader_batches, a.batch_size, buffered)
        log(f"{name}: started in {time.perf_counter() - t:.1f} s; loader alone "
            + ("n/a" if alone is None else f"{alone:.1f} samples/s"))
        for m in (models if str(key) not in a.alone.split(",") else []):
            r = train(it, m, cams, dims, a, mon, buffered)
            r.update({"loader": name, "config": str(key), "workers": key if isinstance(key, int) else (0 if key == "synthetic" else a.cpus),
                      "loader_alone_samples_per_s": alone, "peak_host_rss_bytes": mon.peak_rss,
                      "peak_gpu_used_bytes_nvml": mon.peak_gpu_used or None})
            res["runs"].append(r)
            a.out.parent.mkdir(parents=True, exist_ok=True)
            a.out.write_text(json.dumps(res, indent=1))  # so far: a run cut short keeps what it measured
            gu = "n/a" if r["gpu_util_pct"] is None else f"{r['gpu_util_pct']:.1f}%"
            log(f"  {m:<10} {r['steps_per_s']:7.2f} steps/s {r['samples_per_s']:8.1f} samples/s wait {100 * r['wait_fraction']:5.1f}% "
                f"GPU {gu} CPU {r['cpu_util_pct']:.0f}% ({r['steps']} steps, loss {r['final_loss']:.3f})")
        it.close()  # ends the DataLoader's worker processes / the DALI pipeline before the next configuration
        del it
        if str(key).startswith("robocache"):
            res.setdefault("loader_alone", {})[name] = alone
            del ld
        gc.collect()
    mon.close()
    if any(str(k).startswith("robocache") for k in plan):
        t = time.perf_counter()
        try:
            res["decode_check"] = check_decode(spec, a.video_backend, common, a.check_batches)
        except Exception as e:  # noqa: BLE001 - reported in the JSON and the table, the run's figures stay
            res["decode_check"] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        log(f"decode check ({time.perf_counter() - t:.1f} s): {res['decode_check']}")
    speed = {}
    for m in models:
        rc = [r["samples_per_s"] for r in res["runs"] if r["model"] == m and r["config"] == "robocache"]
        dl = [r["samples_per_s"] for r in res["runs"] if r["model"] == m and r["config"].isdigit()]
        if rc and dl:
            speed[m] = rc[0] / max(dl)
    res["speedup_vs_best_dataloader"] = speed
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    png = a.out.with_suffix(".png")
    plot(res, png)
    log(f"JSON: {a.out}\nPNG: {png}")
    log("\n" + ("TOY SIZE (CPU only): not the benchmark\n" if a.toy else "") + table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
