"""Soak test: every RoboCache operator in one DALI pipeline for many batches, watching host RSS and
GPU memory for growth, and checking that nothing errors.

Phases (each sampled separately; counts are options):
  * ``main``: one pipeline with all eight operators (resample, align, temporal_jitter, action_noise,
    points_augment, voxel_downsample, voxelize, normalize) for ``--batches`` batches, DALI with 8
    threads (``--threads``).
  * ``threads1``: the same pipeline with 1 DALI thread, ``--batches // 10`` batches.
  * ``two_pipes``: two such pipelines in one process (different seeds), run alternately,
    ``--batches // 10`` batches each.
  * ``rebuild``: a pipeline built, run twice and deleted ``--rebuilds`` times (plugin state and the
    per-process NVRTC kernel cache must not grow; the first build compiles the kernels, later ones
    must not: their build + run time stays flat).

Inputs: a fixed pool of random ragged batches (trajectories with T=1 and NaN runs, clouds with N=0
and N=1, NaN rows), cycled, so every shape is seen during warm-up. Memory is sampled every
``--sample-every`` batches: host RSS from /proc/self/statm; on the GPU, device memory in use from
``torch.cuda.mem_get_info`` (NVML or nvidia-smi as fallbacks). Tolerance ("flat"): after the first
20% of a phase (warm-up), the median of the last quarter of samples may exceed the first post-warm-up
sample by at most ``max(16 MiB, 2%)`` of host RSS and ``max(8 MiB, 1%)`` of GPU memory in use; the
rebuild phase allows ``max(32 MiB, 5%)`` host RSS (DALI's own per-pipeline pools). Any DALI error
fails the phase.

Prints a table last and writes JSON to ``--out``. Exit status 1 when a phase grew or failed.

    python benchmarks/soak.py --device gpu --out $OUT/soak.json             # 100,000 batches
    python benchmarks/soak.py --device cpu --batches 300 --rebuilds 20      # what CI runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import robocache  # noqa: E402,F401  (loads the plugin)
from nvidia.dali import fn, pipeline_def  # noqa: E402

MIB = 1 << 20


def host_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class GpuMem:
    """Device memory in use (bytes), or None without a GPU reader."""

    def __init__(self, device: str):
        self.read = None
        if device != "gpu":
            return
        try:
            import torch

            torch.cuda.init()
            self.read = lambda: (lambda f, t: t - f)(*torch.cuda.mem_get_info(0))
            self.how = "torch.cuda.mem_get_info"
            return
        except Exception:  # noqa: BLE001 - torch absent: try NVML, then nvidia-smi
            pass
        try:
            import pynvml

            pynvml.nvmlInit()
            h = pynvml.nvmlDeviceGetHandleByIndex(0)
            self.read = lambda: pynvml.nvmlDeviceGetMemoryInfo(h).used
            self.how = "NVML"
            return
        except Exception:  # noqa: BLE001
            pass

        def smi():
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"], capture_output=True, text=True, check=True)
            return int(out.stdout.split()[0]) * MIB

        self.read = smi
        self.how = "nvidia-smi"

    def __call__(self):
        return None if self.read is None else int(self.read())


def make_pool(seed: int, batch: int, pool: int):
    """``pool`` random batches: (traj, ts, traj2, ts2, points) lists of ``batch`` samples."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(pool):
        a, at, b, bt, pts = [], [], [], [], []
        for i in range(batch):
            t = 1 if i == 0 else int(rng.integers(2, 200))
            ts = np.cumsum(rng.uniform(0.005, 0.02, t))
            x = rng.standard_normal((t, 6)).astype(np.float32)
            if t > 10:
                x[3:6, 2] = np.nan
            a.append(x)
            at.append(ts)
            t2 = int(rng.integers(2, 100))
            b.append(rng.standard_normal((t2, 4)).astype(np.float32))
            bt.append(np.linspace(ts[0], ts[-1] + 0.05, t2))
            n = [0, 1, int(rng.integers(2, 5000))][min(i, 2)]
            p = (rng.standard_normal((n, 4)) * 3).astype(np.float32)
            if n > 10:
                p[:3, 0] = np.nan
            pts.append(p)
        out.append((a, at, b, bt, pts))
    return out


def build(device: str, threads: int, pool, seed: int):
    gpu = device == "gpu"
    it = [0]

    def source():
        x = pool[it[0] % len(pool)]
        it[0] += 1
        return x

    @pipeline_def(batch_size=len(pool[0][0]), num_threads=threads, device_id=0 if gpu else None, seed=seed)
    def pipe():
        a, at, b, bt, pts = fn.external_source(source=source, num_outputs=5, batch=True)
        if gpu:
            a, b, pts = a.gpu(), b.gpu(), pts.gpu()
        r, _ = fn.robocache.resample(a, at, num_samples=16)
        f, v, _ = fn.robocache.align(a, at, b, bt, num_samples=16, span="union", max_gap=[0.05, 0.1])
        j, _ = fn.robocache.temporal_jitter(a, at, num_samples=16, warp_strength=0.3)
        nz = fn.robocache.action_noise(a, sigma=[0.05], correlation_time=0.1, rate=50.0, low=[-2.0], high=[2.0])
        pa, tf, mask = fn.robocache.points_augment(pts, rotation="z", scale=[0.9, 1.1], jitter=0.01, dropout=0.1)
        ds, cnt = fn.robocache.voxel_downsample(pa, voxel_size=0.3, return_counts=True)
        co, fe, vc = fn.robocache.voxelize(pts, voxel_size=0.5, range=[-6, -6, -6, 6, 6, 6], mode="sparse", max_voxels=500)
        occ = fn.robocache.voxelize(pts, voxel_size=0.5, range=[-6, -6, -6, 6, 6, 6], mode="occupancy")
        nm, c, s = fn.robocache.normalize(pts, mode="unit_sphere")
        return r, f, v, j, nz, pa, tf, mask, ds, cnt, co, fe, vc, occ, nm, c, s

    p = pipe()
    p.build()
    return p


def flat(samples, key, floor, frac):
    """(grew, growth bytes, limit bytes) over the samples after warm-up."""
    xs = [s[key] for s in samples if s.get(key) is not None]
    if len(xs) < 5:
        return False, 0, 0
    post = xs[max(1, len(xs) // 5):]
    base = post[0]
    tail = statistics.median(post[-max(1, len(post) // 4):])
    limit = max(floor, frac * base)
    return (tail - base) > limit, int(tail - base), int(limit)


def run_phase(name, pipes, batches, every, gmem, log, budget=float("inf")):
    samples, err, t0 = [], None, time.perf_counter()
    k = -1
    try:
        for k in range(batches):
            for p in pipes:
                p.run()
            if time.perf_counter() - t0 > budget:  # out of time: stop here and judge what ran
                samples.append({"batch": k, "rss": host_rss(), "gpu": gmem(), "t": time.perf_counter() - t0})
                log(f"{name}: time budget {budget:.0f} s reached after {k + 1} of {batches} batches")
                break
            if k % every == 0 or k == batches - 1:
                samples.append({"batch": k, "rss": host_rss(), "gpu": gmem(), "t": time.perf_counter() - t0})
    except Exception as e:  # noqa: BLE001 - any DALI error fails the phase
        err = str(e)[-2000:]
    dt = time.perf_counter() - t0
    return judge(name, samples, err, dt, (k + 1) * len(pipes), 16 * MIB, 0.02, log)


def judge(name, samples, err, dt, runs, rss_floor, rss_frac, log):
    grew_h, dh, lh = flat(samples, "rss", rss_floor, rss_frac)
    grew_g, dg, lg = flat(samples, "gpu", 8 * MIB, 0.01)
    ok = err is None and not grew_h and not grew_g
    res = {"phase": name, "runs": runs, "seconds": dt, "ok": ok, "error": err, "rss_growth": dh, "rss_limit": lh, "gpu_growth": dg, "gpu_limit": lg,
           "rss_first": samples[0]["rss"] if samples else None, "rss_last": samples[-1]["rss"] if samples else None, "samples": samples}
    log(f"{name}: {runs} runs in {dt:.1f} s, host RSS growth {dh / MIB:+.1f} MiB (limit {lh / MIB:.1f}), GPU growth {dg / MIB:+.1f} MiB (limit {lg / MIB:.1f}), {'ok' if ok else 'FAIL'}{'' if err is None else ': ' + err[-300:]}")
    return res


def rebuild_phase(device, pool, rebuilds, gmem, log, budget=float("inf")):
    samples, err, times, t0 = [], None, [], time.perf_counter()
    try:
        for k in range(rebuilds):
            if time.perf_counter() - t0 > budget:
                samples.append({"batch": k, "rss": host_rss(), "gpu": gmem(), "t": time.perf_counter() - t0})
                log(f"rebuild: time budget {budget:.0f} s reached after {k} of {rebuilds} rebuilds")
                break
            a = time.perf_counter()
            p = build(device, 2, pool, seed=k)
            p.run()
            p.run()
            del p
            times.append(time.perf_counter() - a)
            if k % max(1, rebuilds // 50) == 0 or k == rebuilds - 1:
                samples.append({"batch": k, "rss": host_rss(), "gpu": gmem(), "t": time.perf_counter() - t0})
    except Exception as e:  # noqa: BLE001
        err = str(e)[-2000:]
    res = judge("rebuild", samples, err, time.perf_counter() - t0, len(times), 32 * MIB, 0.05, log)
    if len(times) > 10:
        first, later = times[0], statistics.median(times[1:])
        late = statistics.median(times[-max(1, len(times) // 4):])
        res.update(first_build_s=first, median_build_s=later, last_quarter_build_s=late)
        # No recompilation and no slow-down: the last quarter's builds are as fast as the early ones.
        if late > 3 * statistics.median(times[1:max(2, len(times) // 4)]) + 0.05:
            res["ok"] = False
            res["error"] = (res["error"] or "") + f" builds slowed down: {late:.3f} s vs {later:.3f} s"
        log(f"rebuild: build + 2 runs: first {first:.3f} s, median {later:.3f} s, last quarter {late:.3f} s (flat: no recompilation, no slow-down)")
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "gpu"], default="gpu")
    ap.add_argument("--batches", type=int, default=100_000, help="batches of the main phase (other phases: a tenth)")
    ap.add_argument("--rebuilds", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--pool", type=int, default=8, help="distinct input batches, cycled")
    ap.add_argument("--sample-every", type=int, default=0, help="default: batches // 200")
    ap.add_argument("--phases", default="main,threads1,two_pipes,rebuild")
    ap.add_argument("--time-budget", type=float, default=float("inf"), help="seconds for all phases (main 55%%, threads1 10%%, two_pipes 15%%, rebuild 20%%); a phase out of time stops and is judged on what ran")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    tb = a.time_budget
    every = a.sample_every or max(1, a.batches // 200)
    gmem = GpuMem(a.device)
    pool = make_pool(0, a.batch_size, a.pool)
    log = lambda m: print(m, flush=True)  # noqa: E731
    phases = a.phases.split(",")
    results = []
    if "main" in phases:
        results.append(run_phase(f"main ({a.threads} threads)", [build(a.device, a.threads, pool, 1)], a.batches, every, gmem, log, 0.55 * tb))
    small = max(10, a.batches // 10)
    if "threads1" in phases:
        results.append(run_phase("threads1", [build(a.device, 1, pool, 2)], small, max(1, small // 100), gmem, log, 0.10 * tb))
    if "two_pipes" in phases:
        pipes = [build(a.device, a.threads, pool, 3), build(a.device, a.threads, make_pool(1, a.batch_size, a.pool), 4)]
        results.append(run_phase("two_pipes", pipes, small, max(1, small // 100), gmem, log, 0.15 * tb))
        del pipes
    if "rebuild" in phases:
        results.append(rebuild_phase(a.device, pool, a.rebuilds, gmem, log, 0.20 * tb))
    report = {"device": a.device, "gpu_memory_reader": getattr(gmem, "how", None), "args": vars(a), "phases": results,
              "tolerance": {"host_rss": "max(16 MiB, 2%) after 20% warm-up (rebuild: max(32 MiB, 5%))", "gpu": "max(8 MiB, 1%)"}}
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(report, indent=1))
    print()
    print(f"{'phase':<20} {'runs':>8} {'s':>7} {'RSS MiB':>9} {'dRSS MiB':>9} {'GPU dMiB':>9}  result")
    for r in results:
        rss = (r["rss_last"] or 0) / MIB
        print(f"{r['phase']:<20} {r['runs']:>8} {r['seconds']:>7.1f} {rss:>9.1f} {r['rss_growth'] / MIB:>+9.1f} {r['gpu_growth'] / MIB:>+9.1f}  {'ok' if r['ok'] else 'FAIL'}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
