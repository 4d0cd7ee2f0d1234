"""Multi-GPU GR00T-style training benchmark: DistributedDataParallel training of the GR00T-style
policy (benchmarks/groot_model.py) fed by RobotDataLoader, one rank per GPU, at 1, 2, 4 and 8 GPUs
(as many as the machine has); training samples/s, scaling efficiency against linear, per-GPU
utilisation (NVML), in one run.

    python benchmarks/ddp_bench.py [--data <copy of shared/data>] [--gpus 1,2,4,8] [--models small,large]
                                   [--out benchmarks/results/ddp_bench_<device>.json]

The parent process builds the benchmark's dataset once (benchmarks/groot_data.py: the GR00T-flavoured
LeRobot v2.1 dataset of groot_bench.py, 240 episodes, 2 cameras of 224x224 H.264, tiled from the real
sample) and launches ``torchrun --standalone --nproc_per_node N`` of this script per GPU count (NCCL,
``NCCL_NVLS_ENABLE=0``: NVLink multicast stays off). Each rank: ``RobotDataLoader`` with no shard
arguments (rank and world size from torch.distributed, GPU from LOCAL_RANK; its own DALI pipeline on
its own GPU, its own shard), the policy wrapped in DDP, bf16 autocast, fused AdamW, per-GPU batch
``--batch-size`` (weak scaling: the global batch grows with N). Every rank gets the same CPU share at
every N (``--cpus-per-rank``, default the machine's CPUs / the largest N, pinned with
``sched_setaffinity``; video decoding worker processes inherit it), so the 1-GPU run is not given the
CPUs the 8-GPU run has to share.

Per GPU count and model: the loader alone (batches/s per rank, no model), then training from
RobotDataLoader and from one fixed batch on the GPU (``fixed batch``: the model plus the gradient
all-reduce, no data loading: the scaling ceiling). Timed steps: ``--warmup`` untimed, then
``--steps`` (the same on every rank, as DDP needs); the host keeps at most one step queued ahead of the
GPU; a step's wait is the time in ``next(batch)``. samples/s = N x batch x steps / the slowest rank's
time; scaling efficiency = samples/s at N / (N x samples/s at the smallest N measured, normally 1).
Prints a table last; writes the JSON to ``--out``.

Without a GPU: toy size on the CPU (gloo, tiny models, 1 and 2 ranks), and it says so.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("NCCL_NVLS_ENABLE", "0")  # NVLink multicast off, here and in every rank
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))
sys.path.insert(0, str(HERE))
import groot_data  # noqa: E402
import groot_model  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

FREQ, TA = 30.0, 16
DIST_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")


def log(*a):
    print(*a, flush=True)


def cpu_set() -> list:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


# ----------------------------------------------------------------------------------- rank side
class GpuSampler:
    """This rank's GPU utilisation and memory from NVML, sampled every ``period`` s in a thread while
    a window is open (NVML counts physical devices: CUDA_VISIBLE_DEVICES is mapped)."""

    def __init__(self, device: int | None, period: float = 0.05) -> None:
        self.nvml = self.handle = None
        self.samples, self.peak, self.on = [], 0, False
        if device is not None:
            try:
                import pynvml  # noqa: PLC0415 (nvidia-ml-py)

                pynvml.nvmlInit()
                vis = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
                idx = int(vis[device]) if device < len(vis) and vis[device].isdigit() else device
                self.handle, self.nvml, self.index = pynvml.nvmlDeviceGetHandleByIndex(idx), pynvml, idx
            except Exception as e:  # noqa: BLE001 - NVML is optional
                log(f"NVML unavailable ({type(e).__name__}: {e}): no GPU utilisation")
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            if self.nvml is None or not self.on:
                continue
            try:
                u = self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu
                m = self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used
            except Exception:  # noqa: BLE001
                continue
            self.samples.append(u)
            self.peak = max(self.peak, m)

    def start(self) -> None:
        self.samples, self.on = [], True

    def stop(self) -> dict:
        self.on = False
        s = list(self.samples)
        return {"gpu_util_pct": float(np.mean(s)) if s else None, "gpu_util_samples": len(s), "gpu_used_bytes_nvml": self.peak or None,
                "nvml_index": getattr(self, "index", None)}

    def close(self) -> None:
        self._stop.set()
        self._t.join(timeout=1)


def timed_training(ddp, opt, it, a, gpu: bool, sampler: GpuSampler) -> dict:
    """``--warmup`` then ``--steps`` DDP steps (the same count on every rank), at most one queued ahead."""
    import torch.distributed as dist  # noqa: PLC0415

    amp = groot_model.autocast("cuda" if gpu else "cpu", enabled=gpu)

    def step(b):
        return groot_model.train_step(ddp, opt, b, amp)

    for _ in range(a.warmup):
        loss = step(next(it))
    if gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    dist.barrier()
    sampler.start()
    waits, ends = [], []
    t0 = time.perf_counter()
    for n in range(a.steps):
        tw = time.perf_counter()
        b = next(it)
        waits.append(time.perf_counter() - tw)
        loss = step(b)
        if gpu:
            ends.append(torch.cuda.Event())
            ends[-1].record()
            if n > 0:
                ends[-2].synchronize()
    if gpu:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    out = sampler.stop()
    out.update({"seconds": dt, "wait_fraction": float(sum(waits)) / dt, "wait_ms_p50": 1e3 * float(np.percentile(waits, 50)),
                "final_loss": float(loss.detach().float()), "gpu_max_memory_allocated_bytes": torch.cuda.max_memory_allocated() if gpu else None})
    return out


def worker(a) -> int:
    import torch.distributed as dist  # noqa: PLC0415
    from robocache import DatasetSpec, RobotDataLoader  # noqa: PLC0415
    from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: PLC0415

    local = int(os.environ["LOCAL_RANK"])
    gpu = a.device == "cuda"
    cpus = cpu_set()
    mine = cpus[local * a.cpus_per_rank:(local + 1) * a.cpus_per_rank]
    pinned = a.pin and len(mine) == a.cpus_per_rank and hasattr(os, "sched_setaffinity")
    if pinned:
        os.sched_setaffinity(0, mine)
    else:  # not asked, or fewer CPUs than ranks x cpus_per_rank (a toy run): share them all
        mine = cpus
    torch.set_num_threads(max(1, min(len(mine), 4)))
    if gpu:
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local), timeout=datetime.timedelta(seconds=300))
    else:
        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=300))
    rank, world = dist.get_rank(), dist.get_world_size()
    cams = list(groot_data.CAMERA_NAMES[: a.cameras])
    spec = [DatasetSpec(str(a.dataset), cameras={c: f"video.{c}" for c in cams}, open_kwargs={"video_backend": a.video_backend})]
    workers = max(1, len(mine))
    loader = RobotDataLoader(spec, target_frequency=FREQ, observation_horizon=1, action_horizon=TA, cameras={c: (224, 224) for c in cams},
                             augmentations=["color_jitter"], batch_size=a.batch_size, device=a.device, seed=0, epoch_size=a.epoch_size,
                             last_batch_policy="DROP", num_workers=workers, num_threads=min(4, workers), prefetch_queue_depth=3,
                             output_map=["state", "action", "action_mask"] + [f"images.{c}" for c in cams])
    assert (loader.shard_id, loader.num_shards) == (rank, world)

    def batches():
        while True:
            yield from loader

    it = batches()
    first = next(it)
    if gpu:
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(a.loader_batches):
        b = next(it)
    if gpu:
        torch.cuda.synchronize()
    alone = a.loader_batches * a.batch_size / (time.perf_counter() - t)
    fixed = {k: v.clone() for k, v in first.items()}
    del first, b
    sampler = GpuSampler(loader.device_id)
    runs = []
    for m in a.models:
        torch.manual_seed(0)
        dev = torch.device("cuda", local) if gpu else torch.device("cpu")
        with torch.device(dev):
            model = groot_model.GrootStylePolicy(m, cams, loader.state_dim, loader.action_dim, TA)
        ddp = DDP(model, device_ids=[local] if gpu else None)
        opt = torch.optim.AdamW(ddp.parameters(), lr=1e-4, weight_decay=0.01, fused=gpu)
        for config, src in (("RobotDataLoader", it), ("fixed batch", None)):
            if src is None:
                def src_fixed():
                    while True:
                        yield fixed
                src = src_fixed()
            torch.manual_seed(1 + rank)
            r = timed_training(ddp, opt, src, a, gpu, sampler)
            r.update({"model": m, "config": config, "vision": model.vit_name, "params_total": sum(p.numel() for p in model.parameters())})
            runs.append(r)
        del ddp, model, opt
        if gpu:
            torch.cuda.empty_cache()
    sampler.close()
    mine_info = {"rank": rank, "local_rank": local, "device_id": loader.device_id, "placement_source": loader.placement.source,
                 "cpus": mine, "pinned": pinned, "decode_workers": workers, "loader_alone_samples_per_s": alone, "runs": runs,
                 "batches_per_epoch": len(loader), "host": platform.node()}
    every = [None] * world
    dist.all_gather_object(every, mine_info)
    if rank == 0:
        Path(a.part).write_text(json.dumps({"world_size": world, "backend": dist.get_backend(), "ranks": every}))
    dist.barrier()
    dist.destroy_process_group()
    return 0


# ----------------------------------------------------------------------------------- parent side
def summarise(parts: dict, a) -> list:
    """One row per (model, config, N): global samples/s, efficiency against the smallest N, per-GPU facts."""
    rows = []
    for m in a.models:
        for config in ("RobotDataLoader", "fixed batch"):
            base = None
            for n in sorted(parts):
                p = parts[n]
                if "error" in p:
                    rows.append({"model": m, "config": config, "gpus": n, "error": p["error"]})
                    continue
                rr = [next(r for r in x["runs"] if r["model"] == m and r["config"] == config) for x in p["ranks"]]
                slowest = max(r["seconds"] for r in rr)
                sps = n * a.batch_size * a.steps / slowest
                if base is None:
                    base = (n, sps)
                util = [r["gpu_util_pct"] for r in rr]
                rows.append({"model": m, "config": config, "gpus": n, "samples_per_s": sps, "samples_per_s_per_gpu": sps / n,
                             "scaling_efficiency": sps * base[0] / (n * base[1]), "efficiency_baseline_gpus": base[0],
                             "seconds_slowest_rank": slowest, "wait_fraction_per_rank": [r["wait_fraction"] for r in rr],
                             "gpu_util_pct_per_gpu": util, "gpu_max_memory_allocated_bytes_per_gpu": [r["gpu_max_memory_allocated_bytes"] for r in rr],
                             "loader_alone_samples_per_s_per_rank": [x["loader_alone_samples_per_s"] for x in p["ranks"]],
                             "final_loss_per_rank": [r["final_loss"] for r in rr], "vision": rr[0]["vision"],
                             "params_total": rr[0]["params_total"]})
    return rows


def table(res: dict) -> str:
    hdr = (f"{'model':<11}{'config':<17}{'GPUs':>5}{'samples/s':>11}{'per GPU':>9}{'scaling':>9}{'wait %':>8}"
           f"{'loader alone/s per rank':>25}  GPU util % per GPU (NVML)")
    lines = [hdr, "-" * (len(hdr) + 6)]
    for r in res["rows"]:
        if "error" in r:
            lines.append(f"{r['model']:<11}{r['config']:<17}{r['gpus']:>5}  FAILED: {r['error'][:80]}")
            continue
        util = " ".join("n/a" if u is None else f"{u:.0f}" for u in r["gpu_util_pct_per_gpu"])
        alone = f"{np.mean(r['loader_alone_samples_per_s_per_rank']):.1f}" if r["config"] == "RobotDataLoader" else "-"
        lines.append(f"{r['model']:<11}{r['config']:<17}{r['gpus']:>5}{r['samples_per_s']:>11.1f}{r['samples_per_s_per_gpu']:>9.1f}"
                     f"{100 * r['scaling_efficiency']:>8.1f}%{100 * np.mean(r['wait_fraction_per_rank']):>8.1f}{alone:>25}  {util}")
    s = res["settings"]
    lines.append(f"per rank: batch {s['batch_size']}, {s['cpus_per_rank']} CPUs{' (pinned)' if s['pin'] else ''}, "
                 f"{s['steps']} timed steps after {s['warmup']}; scaling = samples/s at N / (N x samples/s at {s['gpu_counts'][0]})")
    lines.append("fixed batch: one batch already on the GPU (model + gradient all-reduce, no loading): the ceiling; wait: time in next(batch)")
    if len(s["gpu_counts"]) == 1:
        lines.append(f"only {s['gpu_counts'][0]} {'GPU' if s['device'] == 'cuda' else 'rank'} measured: no scaling measured")
    return "\n".join(lines)


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    ap.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "robocache" / "groot_bench")
    ap.add_argument("--out", type=Path, default=None, help="JSON (default benchmarks/results/ddp_bench_<device>.json)")
    ap.add_argument("--gpus", default="1,2,4,8", help="GPU counts (ranks on the CPU); those above what is present are skipped")
    ap.add_argument("--models", default=None, help="comma list of groot_model sizes (default small,large; toy: toy_small)")
    ap.add_argument("--toy", action="store_true", help="toy size on the CPU (the default without a GPU)")
    ap.add_argument("--batch-size", type=int, default=None, help="per GPU")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--loader-batches", type=int, default=None, help="batches timed for the loader alone (>= 1)")
    ap.add_argument("--episodes", type=int, default=None)
    ap.add_argument("--cameras", type=int, default=None, choices=(1, 2, 3))
    ap.add_argument("--cpus-per-rank", type=int, default=None, help="default: CPUs / the largest GPU count run")
    ap.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin each rank to its own CPUs")
    ap.add_argument("--video-backend", default="pyav")
    ap.add_argument("--run-timeout", type=int, default=None, help="seconds per GPU count (default 420; toy 180)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--part", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--dataset", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--device", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--epoch-size", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        a.models = a.models.split(",")
        return a
    gpus = torch.cuda.device_count()
    a.toy = a.toy or gpus == 0
    a.device = "cpu" if a.toy else "cuda"
    d = ({"batch_size": 4, "steps": 3, "warmup": 1, "loader_batches": 2, "episodes": 8, "cameras": 1, "run_timeout": 180} if a.toy else
         {"batch_size": 64, "steps": 30, "warmup": 5, "loader_batches": 10, "episodes": 240, "cameras": 2, "run_timeout": 420})
    for k, v in d.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.models = (a.models or ("toy_small" if a.toy else "small,large")).split(",")
    a.loader_batches = max(1, a.loader_batches)
    have = gpus if not a.toy else max(2, len(cpu_set()))  # toy: 2 ranks even on one CPU
    counts = sorted({int(x) for x in a.gpus.split(",") if x.strip()})
    a.counts = [n for n in counts if 1 <= n <= have] or [1]
    a.skipped = [n for n in counts if n not in a.counts]
    if a.cpus_per_rank is None:
        a.cpus_per_rank = max(1, len(cpu_set()) // max(a.counts))
    a.epoch_size = 2000 if a.toy else 100_000
    if a.out is None:
        name = torch.cuda.get_device_name(0).split()[-1].lower() if gpus and not a.toy else "cpu"
        a.out = HERE / "results" / f"ddp_bench_{name}.json"
    return a


def nccl_version() -> str | None:
    try:
        v = torch.cuda.nccl.version()
        return ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
    except Exception:  # noqa: BLE001
        return None


def main(argv=None) -> int:
    a = parse(argv)
    if a.worker:
        return worker(a)
    import nvidia.dali as dali  # noqa: PLC0415

    env = {"python": platform.python_version(), "torch": torch.__version__, "dali": dali.__version__,
           "gpu": torch.cuda.get_device_name(0) if a.device == "cuda" else "none", "gpus_present": torch.cuda.device_count(),
           "cpus": len(cpu_set()), "nccl": nccl_version() if a.device == "cuda" else None,
           "NCCL_NVLS_ENABLE": os.environ.get("NCCL_NVLS_ENABLE")}
    if a.toy:
        log("TOY SIZE: CPU-only (gloo, tiny models, few episodes); numbers are not the benchmark")
    log(f"{env['gpus_present']} GPU(s) {env['gpu']}, {env['cpus']} CPUs; counts {a.counts}" + (f", skipped {a.skipped} (not present)" if a.skipped else ""))
    src = a.data / "datasets" / groot_data.SOURCE
    path = groot_data.build(a.cache_dir, a.episodes, a.cameras, 40 if a.toy else 100, 224, src if src.is_dir() else None, log=log)
    parts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.counts:
            part = Path(tmp) / f"part{n}.json"
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n), str(Path(__file__).resolve()),
                   "--worker", "--part", str(part), "--dataset", str(path), "--device", a.device, "--models", ",".join(a.models),
                   "--batch-size", str(a.batch_size), "--steps", str(a.steps), "--warmup", str(a.warmup), "--loader-batches", str(a.loader_batches),
                   "--cameras", str(a.cameras), "--cpus-per-rank", str(a.cpus_per_rank), "--video-backend", a.video_backend,
                   "--epoch-size", str(a.epoch_size)] + ([] if a.pin else ["--no-pin"])
            envr = {k: v for k, v in os.environ.items() if k not in DIST_VARS}
            envr.update({"NCCL_NVLS_ENABLE": "0", "OMP_NUM_THREADS": str(min(4, a.cpus_per_rank))})
            t = time.perf_counter()
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, env=envr, timeout=a.run_timeout, check=False)
                ok = p.returncode == 0 and part.is_file()
                err = None if ok else f"rc {p.returncode}: " + (p.stderr.strip().splitlines() or ["no output"])[-1]
            except subprocess.TimeoutExpired as e:
                ok, err, p = False, f"timed out after {a.run_timeout} s", e
            if ok:
                parts[n] = json.loads(part.read_text())
                log(f"{n} rank(s): done in {time.perf_counter() - t:.0f} s")
            else:
                parts[n] = {"error": err}
                tail = (getattr(p, "stderr", "") or "")
                tail = tail.decode() if isinstance(tail, bytes) else tail
                log(f"{n} rank(s): FAILED ({err})\n{tail[-3000:]}")
    res = {"env": env, "settings": {"toy": a.toy, "device": a.device, "gpu_counts": a.counts, "skipped_counts": a.skipped, "models": a.models,
                                    "batch_size": a.batch_size, "steps": a.steps, "warmup": a.warmup, "cpus_per_rank": a.cpus_per_rank,
                                    "pin": a.pin, "cameras": a.cameras, "episodes": a.episodes, "dataset": str(path),
                                    "video_backend": a.video_backend, "augmentations": ["color_jitter"], "last_batch_policy": "DROP"},
           "parts": {str(n): p for n, p in parts.items()}}
    res["rows"] = summarise(parts, a)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    log(f"JSON: {a.out}")
    log("\n" + ("TOY SIZE (CPU only): not the benchmark\n" if a.toy else "") + table(res))
    return 0 if all("error" not in p for p in parts.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
