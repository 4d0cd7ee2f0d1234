"""GPU evidence for fn.robocache.resample: correctness against the CPU backend, then performance
against PyTorch (same GPU) and the CPU backend, in one run. Prints tables last; writes JSON.

    python benchmarks/gpu_resample.py --data <a copy of shared/data> --out results.json

Checks: (1) DALI GPU pipelines vs DALI CPU pipelines on random ragged batches, every method, dtype,
target form, extrapolate mode, float64 s and int64 ns timestamps; (2) the same on real data;
(3) the GPU path on PyTorch tensors with poisoned (0xFF) output buffers, against the CPU backend.
Benchmarks: the kernel launch alone (CUDA events, median), the whole GPU path (stage + launch),
PyTorch searchsorted + gather + lerp, the DALI CPU backend, a device-to-device copy (roofline), and
DALI GPU pipeline batches/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import robocache  # noqa: E402
import robocache._raw as raw  # noqa: E402
from robocache.dtypes import bf16_bits_to_float, float_to_bf16_bits  # noqa: E402
from robocache.testing import random_ragged, read_euroc_imu, read_lerobot_states, reference_resample  # noqa: E402

import torch  # noqa: E402
from nvidia.dali import fn, pipeline_def  # noqa: E402

RESULTS: dict = {"checks": [], "bench": [], "pipeline": []}


def run_pipe(device, data, ts, targets=None, num_threads=4, **kw):
    """One batch through fn.robocache.resample on `device` ("cpu" or "gpu"); returns numpy lists."""
    b = len(data)
    srcs = [data, ts] + ([targets] if targets is not None else [])

    @pipeline_def(batch_size=b, num_threads=num_threads, device_id=0 if device == "gpu" else None, prefetch_queue_depth=1)
    def p():
        ins = fn.external_source(source=lambda: srcs, num_outputs=len(srcs), batch=True)
        d = ins[0].gpu() if device == "gpu" else ins[0]
        o, ot = fn.robocache.resample(d, *ins[1:], **kw)
        return o, ot

    pipe = p()
    pipe.build()
    o, ot = pipe.run()
    if device == "gpu":
        o, ot = o.as_cpu(), ot.as_cpu()
    return [np.array(o[i]) for i in range(b)], [np.array(ot[i]) for i in range(b)]


def as_float(x, dtype_arg):
    return bf16_bits_to_float(x).astype(np.float64) if dtype_arg == "bfloat16" else x.astype(np.float64)


def tol(dtype_arg, dt):
    if dtype_arg == "bfloat16":
        return 8e-3
    return {np.float16: 1e-3, np.float32: 1e-6, np.float64: 1e-12}[dt]


def compare(name, gpu, cpu, dtype_arg, dt, ref=None):
    """GPU vs CPU (and optional independent reference); records the worst relative error."""
    (go, gt), (co, ct) = gpu, cpu
    worst, ts_equal, nan_ok, ref_err = 0.0, True, True, 0.0
    for i in range(len(go)):
        g, c = as_float(go[i], dtype_arg), as_float(co[i], dtype_arg)
        ts_equal &= gt[i].shape == ct[i].shape and bool(np.array_equal(gt[i], ct[i]))
        nan_ok &= bool(np.array_equal(np.isnan(g), np.isnan(c)))
        scale = max(1.0, float(np.nanmax(np.abs(c))) if c.size and not np.all(np.isnan(c)) else 1.0)
        if g.size:
            worst = max(worst, float(np.nanmax(np.abs(g - c)) / scale) if not np.all(np.isnan(c)) else 0.0)
        if ref is not None:
            r = ref[i]
            if r.size and not np.all(np.isnan(r)):
                ref_err = max(ref_err, float(np.nanmax(np.abs(g - r)) / max(1.0, float(np.nanmax(np.abs(r))))))
    t = tol(dtype_arg, dt)
    ok = ts_equal and nan_ok and worst <= t and (ref is None or ref_err <= max(t, 1e-5))
    RESULTS["checks"].append({"case": name, "gpu_vs_cpu_max_rel": worst, "vs_numpy_max_rel": ref_err if ref is not None else None, "timestamps_equal": ts_equal, "nan_pattern_equal": nan_ok, "tolerance": t, "ok": ok})
    return ok


def random_checks(rng):
    for dt, dtype_arg in [(np.float32, ""), (np.float16, ""), (np.float64, ""), (np.float32, "bfloat16")]:
        for ns in (False, True):
            for method in ("linear", "nearest", "previous"):
                for form in ("rate", "count", "targets"):
                    for extrap in ("clamp", "nan"):
                        c = int(rng.choice([1, 3, 7, 14, 32, 64]))
                        data, ts = random_ragged(rng, int(rng.integers(1, 24)), c, (1, 300), ns=ns, dtype=dt)
                        if dtype_arg == "bfloat16":
                            data = [float_to_bf16_bits(d) for d in data]
                        kw = dict(method=method, extrapolate=extrap, dtype=dtype_arg)
                        targets = None
                        if form == "rate":
                            kw["target_rate"] = float(rng.choice([7.0, 50.0, 333.0]))
                            kw["start"], kw["end"] = -0.05, float(rng.uniform(0.1, 2.0))
                        elif form == "count":
                            kw["num_samples"] = int(rng.integers(1, 200))
                        else:
                            targets = []
                            for t in ts:
                                lo, hi = (t[0] - (t[-1] - t[0]) * 0.1), (t[-1] + (t[-1] - t[0]) * 0.1 + (1 if ns else 1e-3))
                                x = np.sort(rng.uniform(float(lo), float(hi), int(rng.integers(0, 100))))
                                targets.append(np.round(x).astype(np.int64) if ns else x)
                        g = run_pipe("gpu", data, ts, targets, **kw)
                        cpu = run_pipe("cpu", data, ts, targets, **kw)
                        ref = None
                        if dt == np.float32 and dtype_arg == "":
                            ref = [reference_resample(d, t, cpu[1][i], method, extrap) for i, (d, t) in enumerate(zip(data, ts))]
                        name = f"random {np.dtype(dt).name if not dtype_arg else dtype_arg} {'ns' if ns else 's'} {method} {form} {extrap} C={c}"
                        compare(name, g, cpu, dtype_arg, dt, ref)


def real_checks(data_dir: Path):
    ts, imu = read_euroc_imu(data_dir / "trajectories" / "euroc_v101_micro" / "mav0")
    for rate in (50.0, 400.0):
        for dtype_arg, d in (("", imu), ("bfloat16", float_to_bf16_bits(imu))):
            g = run_pipe("gpu", [d], [ts], target_rate=rate, dtype=dtype_arg)
            c = run_pipe("cpu", [d], [ts], target_rate=rate, dtype=dtype_arg)
            ref = [reference_resample(imu, ts, c[1][0])] if not dtype_arg else None
            compare(f"EuRoC V1_01 IMU 200 Hz int64 ns -> {rate:g} Hz {dtype_arg or 'float32'}", g, c, dtype_arg, np.float32, ref)
    eps = sorted((data_dir / "datasets" / "lerobot_v21_unitree_g1" / "data" / "chunk-000").glob("*.parquet"))
    pairs = [read_lerobot_states(p) for p in eps]
    tsl, st = [p[0] for p in pairs], [p[1] for p in pairs]
    g = run_pipe("gpu", st, tsl, target_rate=50.0)
    c = run_pipe("cpu", st, tsl, target_rate=50.0)
    ref = [reference_resample(s, t, c[1][i]) for i, (s, t) in enumerate(zip(st, tsl))]
    compare("LeRobot G1 26-DoF 30 Hz (2 episodes) -> 50 Hz float32", g, c, "", np.float32, ref)


def poisoned_checks(rng):
    for dt, dtype_arg in [(np.float32, ""), (np.float16, ""), (np.float32, "bfloat16")]:
        for c in (1, 6, 14, 64):
            data, ts = random_ragged(rng, 37, c, (1, 500), dtype=dt)
            if dtype_arg:
                data = [float_to_bf16_bits(d) for d in data]
            tdata = [torch.from_numpy(d).cuda() for d in data]
            rb = raw.ResampleBatch(tdata, ts, num_samples=97, dtype=dtype_arg, stream=torch.cuda.current_stream().cuda_stream)
            rb.fill_poison()
            rb.run()
            torch.cuda.synchronize()
            go = [t.cpu().numpy() for t in rb.out]
            gt = [t.cpu().numpy() for t in rb.out_ts]
            cpu = run_pipe("cpu", data, ts, num_samples=97, dtype=dtype_arg)
            compare(f"poisoned outputs {dtype_arg or np.dtype(dt).name} C={c} B=37", (go, gt), cpu, dtype_arg, dt)


def median_ms(fn_, reps=30, warmup=3, inner=1):
    """Median over `reps` of CUDA-event time for `inner` back-to-back calls, per call (back-to-back
    calls keep host launch overhead off the GPU timeline, as in a running pipeline)."""
    for _ in range(warmup):
        fn_()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(inner):
            fn_()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e) / inner)
    return float(np.median(times))


def cupti_us(fn_, names=None, reps=10):
    """Mean GPU time per call of the kernels `fn_` launches, from CUPTI (torch.profiler): kernel
    execution only, without launch gaps or host overhead. `names`: kernel-name prefix to keep."""
    from torch.profiler import ProfilerActivity, profile

    fn_()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            fn_()
        torch.cuda.synchronize()
    total = 0.0
    for e in prof.key_averages():
        t = getattr(e, "self_device_time_total", None)
        if t is None:
            t = getattr(e, "self_cuda_time_total", 0.0)
        if names is None or e.key.startswith(names):
            if "Memcpy" in e.key or "Memset" in e.key:
                continue
            total += t
    return total / reps


def torch_resample(data, ts, n):
    """PyTorch reference implementation: searchsorted + gather + lerp on dense [B, T, C]."""
    b, t, c = data.shape
    a, z = ts[:, :1], ts[:, -1:]
    q = a + (z - a) * torch.linspace(0, 1, n, device=ts.device, dtype=ts.dtype)[None, :]
    i = (torch.searchsorted(ts, q, right=True) - 1).clamp_(0, t - 2)
    t0, t1 = torch.gather(ts, 1, i), torch.gather(ts, 1, i + 1)
    w = ((q - t0) / (t1 - t0)).clamp_(0, 1).to(data.dtype)
    ie = i.unsqueeze(-1).expand(b, n, c)
    d0, d1 = torch.gather(data, 1, ie), torch.gather(data, 1, ie + 1)
    return torch.lerp(d0, d1, w.unsqueeze(-1)), q


def copy_bandwidth():
    n = 1 << 30
    src = torch.empty(n, dtype=torch.uint8, device="cuda").random_(0, 255)
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), reps=30)
    return 2 * n / (ms * 1e-3) / 1e9


def cpu_backend_ms(data_np, ts_np, n, dtype_arg, threads):
    """DALI CPU pipeline, whole batch, median over a few runs."""
    srcs = [data_np, ts_np]

    @pipeline_def(batch_size=len(data_np), num_threads=threads, device_id=None, prefetch_queue_depth=1)
    def p():
        d, t = fn.external_source(source=lambda: srcs, num_outputs=2, batch=True)
        return tuple(fn.robocache.resample(d, t, num_samples=n, dtype=dtype_arg))

    pipe = p()
    pipe.build()
    pipe.run()
    ts_ = []
    for _ in range(5):
        t0 = time.perf_counter()
        pipe.run()
        ts_.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(ts_))


def gpu_pipeline_bps(tdata, ts_np, n, dtype_arg, iters=30):
    """DALI GPU pipeline batches/s: the batch already on the GPU as one dense tensor
    (external_source device="gpu"), timestamps as one [B, T] host array."""

    @pipeline_def(batch_size=len(tdata), num_threads=4, device_id=0, prefetch_queue_depth=2)
    def p():
        d = fn.external_source(source=lambda: tdata, device="gpu", batch=True)
        t = fn.external_source(source=lambda: ts_np, batch=True)
        return tuple(fn.robocache.resample(d, t, num_samples=n, dtype=dtype_arg))

    pipe = p()
    pipe.build()
    for _ in range(3):
        pipe.run()
    t0 = time.perf_counter()
    for _ in range(iters):
        pipe.run()
    return iters / (time.perf_counter() - t0)


def bench(b, t, c, n, dtype_name, copy_gbs, cpu_threads, rng):
    tdt = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype_name]
    es = 4 if dtype_name == "float32" else 2
    dense = torch.randn(b, t, c, device="cuda").to(tdt)
    base = torch.rand(b, 1, device="cuda", dtype=torch.float64) * 100
    dts = (1.0 / 200) * (1 + 0.2 * (torch.rand(b, t, device="cuda", dtype=torch.float64) - 0.5))
    ts = base + torch.cumsum(dts, 1)
    ts_np = [x for x in ts.cpu().numpy()]
    dtype_arg = "bfloat16" if dtype_name == "bfloat16" else ""
    samples = [dense[i].view(torch.uint16) if dtype_arg else dense[i] for i in range(b)]
    rb = raw.ResampleBatch(samples, ts_np, num_samples=n, dtype=dtype_arg, stream=torch.cuda.current_stream().cuda_stream)
    ref, q = torch_resample(dense.float(), ts, n)

    def err():
        got = torch.stack([o.view(tdt) if dtype_arg else o for o in rb.out]).float()
        return float((got - ref).abs().max() / ref.abs().max())

    sweep = {}
    for tb in (2048, 4096, 8192, 16384, 32768):  # tile size: staged and launched with the same value
        os.environ["ROBOCACHE_RESAMPLE_TILE_BYTES"] = str(tb)
        rb.fill_poison()
        rb.stage()
        rb.launch()
        torch.cuda.synchronize()
        sweep[tb] = {"cupti_us": cupti_us(rb.launch, "resample_v"), "max_rel_err_vs_torch": err()}
    os.environ.pop("ROBOCACHE_RESAMPLE_TILE_BYTES")
    rb.fill_poison()
    rb.stage()
    k_ms = cupti_us(rb.launch, "resample_v") * 1e-3
    launch_ms = median_ms(rb.launch, inner=20)
    full_ms = median_ms(rb.run)
    rel = err()
    t_ms = cupti_us(lambda: torch_resample(dense, ts, n)) * 1e-3
    t_evt_ms = median_ms(lambda: torch_resample(dense, ts, n), inner=5)
    bytes_ = b * t * (c * es + 8) + b * n * (c * es + 8)
    cpu_ms = None
    if cpu_threads:
        data_np = [x.view(torch.uint16).cpu().numpy() if dtype_arg else x.cpu().numpy() for x in dense]
        cpu_ms = cpu_backend_ms(data_np, ts_np, n, dtype_arg, cpu_threads)
    bps = gpu_pipeline_bps(dense.view(torch.uint16) if dtype_arg else dense, ts.cpu().numpy(), n, dtype_arg)
    row = {
        "shape": f"B={b} T={t} C={c} -> {n}", "dtype": dtype_name, "bytes": bytes_,
        "robocache_kernel_us": k_ms * 1e3, "robocache_launch_event_us": launch_ms * 1e3, "robocache_stage_plus_kernel_us": full_ms * 1e3,
        "torch_us": t_ms * 1e3, "torch_event_us": t_evt_ms * 1e3, "speedup_vs_torch": t_ms / k_ms,
        "kernel_GBps": bytes_ / (k_ms * 1e-3) / 1e9, "torch_GBps": bytes_ / (t_ms * 1e-3) / 1e9,
        "fraction_of_copy_bw": bytes_ / (k_ms * 1e-3) / 1e9 / copy_gbs,
        "cpu_backend_ms": cpu_ms, "cpu_threads": cpu_threads, "speedup_vs_cpu_backend": (cpu_ms / k_ms) if cpu_ms else None,
        "dali_gpu_pipeline_batches_per_s": bps, "max_rel_err_vs_torch": rel, "kernel_us_by_tile_bytes": sweep,
    }
    RESULTS["bench"].append(row)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data", help="a copy of shared/data")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "gpu_resample.json")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--skip-bench", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    RESULTS["env"] = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "python": platform.python_version(), "nvrtc": robocache.nvrtc_path(), "seed": args.seed, "cpu_count": os.cpu_count()}
    t0 = time.time()
    random_checks(rng)
    real_checks(args.data)
    poisoned_checks(rng)
    RESULTS["check_seconds"] = time.time() - t0
    if not args.skip_bench:
        copy = copy_bandwidth()
        RESULTS["copy_GBps"] = copy
        cores = os.cpu_count() or 4
        for (b, t, c, n) in [(256, 2000, 64, 1000), (1024, 1000, 32, 500)]:
            for dt in ("float32", "bfloat16"):
                bench(b, t, c, n, dt, copy, cores, rng)
        bench(32, 100, 14, 150, "float32", copy, cores, rng)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(RESULTS, indent=1))
    bad = [c for c in RESULTS["checks"] if not c["ok"]]
    print(f"\n== correctness on {RESULTS['env']['gpu']}: {len(RESULTS['checks']) - len(bad)}/{len(RESULTS['checks'])} cases pass (seed {args.seed}) ==")
    for c in bad[:20]:
        print("FAIL", c)
    worst = {}
    for c in RESULTS["checks"]:
        k = c["case"].split(" ")[0] + " " + c["case"].split(" ")[1]
        worst[k] = max(worst.get(k, 0), c["gpu_vs_cpu_max_rel"])
    for c in RESULTS["checks"]:
        if not c["case"].startswith("random"):
            print(f"  {c['case']:<60} gpu-vs-cpu {c['gpu_vs_cpu_max_rel']:.2e}  vs-numpy {c['vs_numpy_max_rel'] if c['vs_numpy_max_rel'] is None else format(c['vs_numpy_max_rel'], '.2e')}  {'ok' if c['ok'] else 'FAIL'}")
    print("  random ragged, worst GPU-vs-CPU relative error per group:", {k: f"{v:.1e}" for k, v in worst.items() if k.startswith("random")})
    if RESULTS["bench"]:
        print(f"\n== resample benchmark on {RESULTS['env']['gpu']}; device-to-device copy {RESULTS['copy_GBps']:.0f} GB/s ==")
        hdr = f"{'shape':<26}{'dtype':<9}{'kernel us':>10}{'+stage us':>10}{'torch us':>10}{'x torch':>8}{'GB/s':>7}{'%copy':>7}{'CPU ms':>8}{'x CPU':>8}{'DALI b/s':>9}"
        print(hdr)
        for r in RESULTS["bench"]:
            print(f"{r['shape']:<26}{r['dtype']:<9}{r['robocache_kernel_us']:>10.1f}{r['robocache_stage_plus_kernel_us']:>10.1f}{r['torch_us']:>10.1f}{r['speedup_vs_torch']:>8.2f}{r['kernel_GBps']:>7.0f}{100 * r['fraction_of_copy_bw']:>6.0f}%{(r['cpu_backend_ms'] or 0):>8.2f}{(r['speedup_vs_cpu_backend'] or 0):>8.0f}{r['dali_gpu_pipeline_batches_per_s']:>9.0f}")
        print("kernel times are CUPTI kernel durations (torch: sum of its kernels per call); '+stage' is the whole GPU path (pack + H2D + launch), CUDA events")
        for r in RESULTS["bench"]:
            print("  tile sweep", r["shape"], r["dtype"], {k: (round(v["cupti_us"], 1), f"{v['max_rel_err_vs_torch']:.0e}") for k, v in r["kernel_us_by_tile_bytes"].items()})
    print("json:", args.out)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
