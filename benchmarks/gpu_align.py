"""GPU evidence for fn.robocache.align: correctness against the CPU backend, then performance
against PyTorch (same GPU) and numpy on one CPU core, in one run. Prints tables last; writes JSON.

    python benchmarks/gpu_align.py --data <copy of shared/data> [--out $OUT/gpu_align.json]

Checks: (1) DALI GPU pipelines vs DALI CPU pipelines on random ragged multi-stream batches with time
gaps and NaN runs (every dtype, fill, clock form, span, float64 s and int64 ns, quaternion groups,
per-stream methods and max_gap), float32 cases also against the numpy/scipy reference; (2) the same
on real recordings (EuRoC IMU -> cam0 frames, TUM fr2_desk mocap with its 12 s hole -> ORB-SLAM
frames, EuRoC V1_02 ground-truth pose with SLERP); (3) the GPU path on PyTorch tensors with poisoned
(0xFF) output buffers, against the CPU backend. Benchmark (the issue's shape): B=256 windows of 10 s,
4 streams (IMU 200 Hz x 6, joints 100 Hz x 7, pose 30 Hz x 7 with a quaternion, wrench 500 Hz x 6)
onto 50 Hz: the kernel (CUPTI), the whole GPU path (stage + launch), a PyTorch GPU implementation of
the same semantics, numpy on one core, the Rust CPU backend (1 thread and all), a device-to-device
copy (roofline), DALI GPU pipeline batches/s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import robocache  # noqa: E402
from robocache._raw_align import AlignBatch  # noqa: E402
from robocache.dtypes import bf16_bits_to_float, float_to_bf16_bits  # noqa: E402
from robocache.testing import random_quaternions, random_streams, reference_align, streams_overlap  # noqa: E402

import torch  # noqa: E402
from nvidia.dali import fn, pipeline_def  # noqa: E402

from align_peers import numpy_align, torch_align  # noqa: E402

RESULTS: dict = {"checks": [], "bench": {}}
# The numpy/scipy reference needs scipy (Slerp); without it the GPU is still checked against the CPU
# backend, which CI checks against the reference.
HAVE_SCIPY = importlib.util.find_spec("scipy") is not None


def ref_align(*a, **k):
    return reference_align(*a, **k) if HAVE_SCIPY else None
TOL = {"float32": 1e-6, "float16": 1e-3, "float64": 1e-12, "bfloat16": 8e-3}


def run_pipe(device, streams, reference=None, num_threads=4, **kw):
    """One batch through fn.robocache.align on `device`; returns (fused, valid, t) numpy lists."""
    srcs = []
    for d, t in streams:
        srcs += [d, t]
    if reference is not None:
        srcs.append(reference)
    b = len(srcs[0])

    @pipeline_def(batch_size=b, num_threads=num_threads, device_id=0 if device == "gpu" else None, prefetch_queue_depth=1)
    def p():
        ins = list(fn.external_source(source=lambda: srcs, num_outputs=len(srcs), batch=True))
        if device == "gpu":
            for q in range(len(streams)):
                ins[2 * q] = ins[2 * q].gpu()
        return tuple(fn.robocache.align(*ins, **kw))

    pipe = p()
    pipe.build()
    outs = pipe.run()
    res = []
    for o in outs:
        o = o.as_cpu() if hasattr(o, "as_cpu") else o
        res.append([np.array(o[i]) for i in range(b)])
    return tuple(res)


def as_f64(x, dtype_name):
    return (bf16_bits_to_float(x) if dtype_name == "bfloat16" else x).astype(np.float64)


def compare(name, g, c, dtype_name="float32", ref=None):
    """GPU (g) vs CPU (c) outputs; ref: optional per-sample (fused, valid) from reference_align."""
    worst, ref_err, bit_frac, n_el = 0.0, 0.0, 0, 0
    valid_eq = ts_eq = nan_eq = True
    for i in range(len(g[0])):
        gf, cf = as_f64(g[0][i], dtype_name), as_f64(c[0][i], dtype_name)
        valid_eq &= g[1][i].shape == c[1][i].shape and bool(np.array_equal(g[1][i], c[1][i]))
        ts_eq &= g[2][i].shape == c[2][i].shape and bool(np.array_equal(g[2][i], c[2][i]))
        if gf.shape != cf.shape:
            nan_eq = False
            continue
        nan_eq &= bool(np.array_equal(np.isnan(gf), np.isnan(cf)))
        if gf.size:
            gb = np.ascontiguousarray(g[0][i]).view(np.uint8).reshape(gf.shape + (-1,))
            cb = np.ascontiguousarray(c[0][i]).view(np.uint8).reshape(gf.shape + (-1,))
            bit_frac += int(np.all(gb == cb, axis=-1).sum())
        n_el += gf.size
        fin = cf[~np.isnan(cf)]
        scale = max(1.0, float(np.abs(fin).max())) if fin.size else 1.0
        if gf.size:
            worst = max(worst, float(np.nanmax(np.abs(gf - cf))) / scale if fin.size else 0.0)
        if ref is not None:
            rf, rv = ref[i]
            valid_eq &= bool(np.array_equal(rv, g[1][i].astype(bool)))
            fr = rf[~np.isnan(rf)]
            if fr.size:
                ref_err = max(ref_err, float(np.nanmax(np.abs(gf - rf))) / max(1.0, float(np.abs(fr).max())))
    tol = TOL[dtype_name]
    ok = valid_eq and ts_eq and nan_eq and worst <= tol and (ref is None or ref_err <= max(tol, 2e-6))
    RESULTS["checks"].append({
        "case": name, "gpu_vs_cpu_max_rel": worst, "bitwise_equal_fraction": bit_frac / max(1, n_el),
        "vs_reference_max_rel": ref_err if ref is not None else None, "valid_equal": valid_eq,
        "timestamps_equal": ts_eq, "nan_pattern_equal": nan_eq, "tolerance": tol, "ok": ok,
    })
    return ok


def random_checks(rng):
    for dtype_name in ("float32", "float16", "float64", "bfloat16"):
        np_dtype = np.float32 if dtype_name == "bfloat16" else np.dtype(dtype_name)
        for ns in (False, True):
            for fill in ("hold", "nan", "zero"):
                for form in ("rate", "count", "reference"):
                    n = int(rng.integers(1, 9))
                    specs = [(float(rng.choice([15.0, 30.0, 100.0, 200.0, 500.0, 1000.0])), int(rng.choice([1, 3, 4, 6, 7, 12]))) for _ in range(n)]
                    quats = []
                    for s, (_, c) in enumerate(specs):
                        if c >= 4 and rng.random() < 0.7:
                            quats += [s, int(rng.integers(0, c - 3))]
                    streams = random_streams(rng, int(rng.integers(1, 24)), specs, ns=ns, dtype=np_dtype, quaternions=quats)
                    if dtype_name == "bfloat16":
                        streams = [([float_to_bf16_bits(x) for x in d], t) for d, t in streams]
                    kw = dict(
                        methods=[str(rng.choice(["linear", "nearest", "previous"])) for _ in range(n)],
                        max_gap=[float(rng.choice([np.inf, 3.0 / r, 1.5 / r, 0.05])) for r, _ in specs],
                        quaternions=quats, quaternion_order=str(rng.choice(["xyzw", "wxyz"])), fill=fill,
                        dtype="bfloat16" if dtype_name == "bfloat16" else "",
                    )
                    reference = None
                    # "intersection" only where every sample's streams overlap (else the operator rightly refuses)
                    overlap = streams_overlap(streams)
                    if form == "rate":
                        kw.update(target_rate=float(rng.choice([10.0, 50.0, 333.0])), span=str(rng.choice(["intersection", "union"])) if overlap else "union")
                    elif form == "count":
                        kw.update(num_samples=int(rng.integers(1, 300)), span="union")
                    else:
                        reference = []
                        for i in range(len(streams[0][0])):
                            lo = min(float(t[i][0]) for _, t in streams) - (5e7 if ns else 0.05)
                            hi = max(float(t[i][-1]) for _, t in streams) + (5e7 if ns else 0.05)
                            x = np.sort(rng.uniform(lo, hi, int(rng.integers(0, 400))))
                            reference.append(np.round(x).astype(np.int64) if ns else x)
                    g = run_pipe("gpu", streams, reference, **kw)
                    c = run_pipe("cpu", streams, reference, **kw)
                    ref = None
                    if dtype_name == "float32" and HAVE_SCIPY:
                        rkw = {k: kw[k] for k in ("methods", "max_gap", "quaternions", "quaternion_order", "fill")}
                        ref = [reference_align([(d[i], t[i]) for d, t in streams], c[2][i], **rkw) for i in range(len(c[2]))]
                    compare(f"random {dtype_name} {'ns' if ns else 's'} {form} fill={fill} N={n} quats={len(quats) // 2}", g, c, dtype_name, ref)


def _find(data_dir: Path, name: str) -> Path:
    for p in (data_dir / "trajectories" / name, data_dir / name):
        if p.is_dir():
            return p
    raise FileNotFoundError(f"{name} not under {data_dir} (expected trajectories/{name})")


def real_checks(data_dir: Path):
    mav0 = _find(data_dir, "euroc_v101_micro") / "mav0"
    imu_t = np.loadtxt(mav0 / "imu0" / "data.csv", delimiter=",", comments="#", usecols=0, dtype=np.int64)
    imu = np.loadtxt(mav0 / "imu0" / "data.csv", delimiter=",", comments="#")[:, 1:].astype(np.float32)
    cam = np.loadtxt(mav0 / "cam0" / "data.csv", delimiter=",", comments="#", usecols=0, dtype=np.int64)
    for dt in ("float32", "bfloat16"):
        d = float_to_bf16_bits(imu) if dt == "bfloat16" else imu
        kw = dict(max_gap=[0.01], dtype="bfloat16" if dt == "bfloat16" else "")
        g, c = run_pipe("gpu", [([d], [imu_t])], [cam], **kw), run_pipe("cpu", [([d], [imu_t])], [cam], **kw)
        ref = [ref_align([(imu, imu_t)], cam, max_gap=[0.01])] if dt == "float32" and HAVE_SCIPY else None
        compare(f"EuRoC V1_01 IMU 200 Hz -> cam0 frames (int64 ns) {dt}", g, c, dt, ref)

    tum = _find(data_dir, "tum_fr2_desk")
    a = np.loadtxt(tum / "fr2_desk_groundtruth.txt", comments="#")
    keep = np.concatenate([[True], np.diff(a[:, 0]) > 0])  # one repeated mocap timestamp
    gt_t, gt = np.ascontiguousarray(a[keep, 0]), a[keep, 1:].astype(np.float32)
    orb_t = np.ascontiguousarray(np.loadtxt(tum / "fr2_desk_ORB.txt")[:, 0])
    kw = dict(max_gap=[0.1], quaternions=[0, 3], quaternion_order="xyzw")
    g, c = run_pipe("gpu", [([gt], [gt_t])], [orb_t], **kw), run_pipe("cpu", [([gt], [gt_t])], [orb_t], **kw)
    hole = np.flatnonzero(np.diff(gt_t) > 10.0)[0]
    in_gap = (orb_t > gt_t[hole]) & (orb_t < gt_t[hole + 1])
    ref = [ref_align([(gt, gt_t)], orb_t, **kw)] if HAVE_SCIPY else None
    ok = compare("TUM fr2_desk mocap (12 s hole) -> ORB-SLAM frames, SLERP xyzw", g, c, "float32", ref)
    RESULTS["checks"][-1]["frames_in_hole"] = int(in_gap.sum())
    RESULTS["checks"][-1]["valid_in_hole"] = int(g[1][0][in_gap, 0].sum())
    RESULTS["checks"][-1]["ok"] = ok and int(g[1][0][in_gap, 0].sum()) == 0 and int(in_gap.sum()) > 300

    v102 = _find(data_dir, "euroc_v102")
    gt_t = np.loadtxt(v102 / "V102_groundtruth.csv", delimiter=",", comments="#", usecols=0, dtype=np.int64)
    gtv = np.loadtxt(v102 / "V102_groundtruth.csv", delimiter=",", comments="#")[:, 1:]
    est_t = np.round(np.loadtxt(v102 / "V102.txt")[:, 0] * 1e9).astype(np.int64)
    for dt in (np.float32, np.float64):
        pose, vel = np.ascontiguousarray(gtv[:, :7].astype(dt)), np.ascontiguousarray(gtv[:, 7:10].astype(dt))
        kw = dict(quaternions=[0, 3], quaternion_order="wxyz", max_gap=[0.02, 0.02], fill="nan")
        s = [([pose], [gt_t]), ([vel], [gt_t])]
        g, c = run_pipe("gpu", s, [est_t], **kw), run_pipe("cpu", s, [est_t], **kw)
        name = np.dtype(dt).name
        ref = [ref_align([(pose, gt_t), (vel, gt_t)], est_t, **kw)] if HAVE_SCIPY else None
        compare(f"EuRoC V1_02 ground-truth pose (SLERP wxyz) + velocity -> 10 Hz estimate {name}", g, c, name, ref)


def poisoned_checks(rng):
    specs = [(200.0, 6), (100.0, 7), (30.0, 7), (500.0, 6)]
    for dt, dtype_arg in ((np.float32, ""), (np.float16, ""), (np.float32, "bfloat16")):
        streams = random_streams(rng, 37, specs, dtype=dt, quaternions=[2, 3])
        if dtype_arg:
            streams = [([float_to_bf16_bits(x) for x in d], t) for d, t in streams]
        kw = dict(methods=["linear", "nearest", "linear", "previous"], max_gap=[0.02, 0.05, 0.1, 0.01], quaternions=[2, 3], dtype=dtype_arg, fill="nan")
        tdata = [[torch.from_numpy(x).cuda() for x in d] for d, _ in streams]
        rb = AlignBatch(tdata, [t for _, t in streams], num_samples=97, span="union", stream=torch.cuda.current_stream().cuda_stream, **kw)
        rb.fill_poison()
        rb.run()
        torch.cuda.synchronize()
        g = ([t.cpu().numpy() for t in rb.out], [t.cpu().numpy() for t in rb.valid], [t.cpu().numpy() for t in rb.out_ts])
        c = run_pipe("cpu", streams, num_samples=97, span="union", **kw)
        compare(f"poisoned outputs {dtype_arg or np.dtype(dt).name} B=37 4 streams", g, c, dtype_arg or np.dtype(dt).name)


def median_ms(fn_, reps=30, warmup=3, inner=1):
    """Median CUDA-event time per call over `reps` groups of `inner` back-to-back calls."""
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


def cupti_us(fn_, names=None, reps=10, per_kernel=None):
    """Mean GPU time per call of the kernels `fn_` launches, from CUPTI (torch.profiler): kernel
    execution only. `names`: kernel-name prefix to keep (None: every kernel, copies excluded).
    per_kernel: a dict that receives each kept kernel's mean time per call."""
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
        if "Memcpy" in e.key or "Memset" in e.key:
            continue
        if names is None or e.key.startswith(names):
            total += t
            if per_kernel is not None:
                per_kernel[e.key] = per_kernel.get(e.key, 0.0) + t / reps
    return total / reps


def copy_bandwidth():
    n = 1 << 30
    src = torch.empty(n, dtype=torch.uint8, device="cuda").random_(0, 255)
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), reps=30)
    return 2 * n / (ms * 1e-3) / 1e9


SPECS = [("imu", 200.0, 6), ("joints", 100.0, 7), ("pose", 30.0, 7), ("wrench", 500.0, 6)]
BENCH_KW = dict(methods=["linear", "linear", "linear", "previous"], max_gap=[0.02, 0.05, 0.1, 0.01], quaternions=[2, 3], quaternion_order="xyzw", fill="hold")


def bench_batch(rng, b=256, seconds=10.0):
    """Dense per-stream [B, T, C] windows of jittered float64 timestamps (each from the window's start
    to its end, so every sample gets the same 50 Hz clock and the peers can run dense), a unit-quaternion walk
    in the pose stream and a few NaN rows (dropped packets) in the wrench stream."""
    data, ts = [], []
    base = rng.uniform(0, 1000, b)
    for _, rate, c in SPECS:
        t = int(seconds * rate)
        dt = (1.0 / rate) * (1 + 0.2 * rng.uniform(-0.5, 0.5, (b, t)))
        cum = np.concatenate([np.zeros((b, 1)), np.cumsum(dt[:, 1:], 1)], 1)
        x = base[:, None] + seconds * cum / cum[:, -1:]  # every stream spans exactly the window: 501 steps
        d = rng.standard_normal((b, t, c)).astype(np.float32)
        if c == 7 and rate == 30.0:
            for i in range(b):
                d[i, :, 3:7] = random_quaternions(rng, t, 0.1)
        if rate == 500.0:
            d[rng.random((b, t)) < 0.002] = np.nan
        if rate == 200.0:  # IMU dropouts of 50 ms in a third of the windows: invalid under max_gap=0.02
            for i in np.flatnonzero(rng.random(b) < 0.3):
                a = int(rng.integers(0, t - 10))
                d[i, a:a + 10] = np.nan
        data.append(d)
        ts.append(x)
    return data, ts


def cpu_backend_ms(streams_np, threads):
    srcs = []
    for d, t in streams_np:
        srcs += [d, t]

    @pipeline_def(batch_size=len(srcs[0]), num_threads=threads, device_id=None, prefetch_queue_depth=1)
    def p():
        ins = fn.external_source(source=lambda: srcs, num_outputs=len(srcs), batch=True)
        return tuple(fn.robocache.align(*ins, target_rate=50.0, **BENCH_KW))

    pipe = p()
    pipe.build()
    pipe.run()
    t = []
    for _ in range(3):
        t0 = time.perf_counter()
        pipe.run()
        t.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(t))


def gpu_pipeline_bps(tdata, ts_np, iters=20):
    @pipeline_def(batch_size=tdata[0].shape[0], num_threads=4, device_id=0, prefetch_queue_depth=2)
    def p():
        ins = []
        for d, t in zip(tdata, ts_np):
            # (a callable with a parameter would be given DALI's batch index: close over the values instead)
            ins.append(fn.external_source(source=(lambda x: lambda: x)(d), device="gpu", batch=True))
            ins.append(fn.external_source(source=(lambda x: lambda: x)(t), batch=True))
        return tuple(fn.robocache.align(*ins, target_rate=50.0, **BENCH_KW))

    pipe = p()
    pipe.build()
    for _ in range(3):
        pipe.run()
    t0 = time.perf_counter()
    for _ in range(iters):
        pipe.run()
    return iters / (time.perf_counter() - t0)


def bench(rng, copy_gbs):
    data, ts = bench_batch(rng)
    b = data[0].shape[0]
    tdata = [torch.from_numpy(d).cuda() for d in data]
    tts = [torch.from_numpy(t).cuda() for t in ts]
    per_sample = [[x[i] for i in range(b)] for x in tdata]
    ts_list = [[t[i] for i in range(b)] for t in ts]
    rb = AlignBatch(per_sample, ts_list, target_rate=50.0, stream=torch.cuda.current_stream().cuda_stream, **BENCH_KW)
    rb.fill_poison()
    rb.run()
    torch.cuda.synchronize()
    k_us = cupti_us(rb.launch, "align_")
    launch_us = median_ms(rb.launch, inner=20) * 1e3
    full_us = median_ms(rb.run) * 1e3
    q = torch.stack([t for t in rb.out_ts])  # [B, K] float64 on the GPU: the same clock for every peer
    got = torch.stack(rb.out).double()
    got_valid = torch.stack(rb.valid).bool()
    gaps = BENCH_KW["max_gap"]
    tf, tv = torch_align(list(zip(tdata, tts)), q, BENCH_KW["methods"], gaps, {2: [3]})
    torch_us = cupti_us(lambda: torch_align(list(zip(tdata, tts)), q, BENCH_KW["methods"], gaps, {2: [3]}))
    torch_evt_us = median_ms(lambda: torch_align(list(zip(tdata, tts)), q, BENCH_KW["methods"], gaps, {2: [3]}), reps=10) * 1e3
    q_np = q.cpu().numpy()
    np_times = []
    for _ in range(3):
        t0 = time.perf_counter()
        nf, nv = numpy_align(list(zip(data, ts)), q_np, BENCH_KW["methods"], gaps, {2: [3]})
        np_times.append((time.perf_counter() - t0) * 1e3)
    np_ms = min(np_times)
    err_torch = float((got - tf.double()).abs().max())
    err_np = float(np.abs(got.cpu().numpy() - nf).max())
    valid_eq = bool(torch.equal(got_valid, tv)) and bool(np.array_equal(got_valid.cpu().numpy(), nv))
    streams_np = [([d[i] for i in range(b)], [t[i] for i in range(b)]) for d, t in zip(data, ts)]
    cpu1 = cpu_backend_ms(streams_np, 1)
    cpu_all = cpu_backend_ms(streams_np, os.cpu_count() or 4)
    bps = gpu_pipeline_bps(tdata, [np.ascontiguousarray(t) for t in ts])
    k = int(q.shape[1])
    total_c = sum(c for _, _, c in SPECS)
    in_bytes = sum(d.nbytes + t.nbytes for d, t in zip(data, ts))
    out_bytes = b * k * (total_c * 4 + len(SPECS) + 8)
    nbytes = in_bytes + out_bytes
    row = {
        "shape": f"B={b}, 10 s windows, streams {[(n, r, c) for n, r, c in SPECS]} -> 50 Hz ({k} steps)",
        "bytes_inputs_once_plus_outputs": nbytes, "input_bytes": in_bytes, "output_bytes": out_bytes,
        "robocache_kernel_us": k_us, "robocache_launch_event_us": launch_us, "robocache_stage_plus_kernel_us": full_us,
        "torch_kernels_us": torch_us, "torch_event_us": torch_evt_us, "numpy_one_core_ms": np_ms,
        "rust_cpu_backend_1_thread_ms": cpu1, "rust_cpu_backend_all_threads_ms": cpu_all, "cpu_threads": os.cpu_count(),
        "speedup_vs_torch": torch_us / k_us, "speedup_vs_numpy_one_core": np_ms * 1e3 / k_us, "speedup_vs_rust_1_thread": cpu1 * 1e3 / k_us,
        "kernel_GBps": nbytes / (k_us * 1e-6) / 1e9, "fraction_of_copy_bw": nbytes / (k_us * 1e-6) / 1e9 / copy_gbs,
        "dali_gpu_pipeline_batches_per_s": bps, "max_abs_err_vs_torch": err_torch, "max_abs_err_vs_numpy": err_np, "valid_equal_all_three": valid_eq,
        "invalid_steps": int((~got_valid).sum()),
    }
    row["done_when"] = {"x50_vs_one_core": row["speedup_vs_numpy_one_core"] >= 50, "x5_vs_torch": row["speedup_vs_torch"] >= 5, "60pct_copy_bw": row["fraction_of_copy_bw"] >= 0.6}
    RESULTS["bench"] = row
    return row


KNOBS = ("TILE", "THREADS", "BLOCK", "SMEM", "SPARSE", "MARGIN", "MARGIN_SHIFT", "VARIANT", "DESIGN", "TSSPLIT")


def kernel_only(rng, launches, configs=None):
    """The kernel alone at the benchmark shape, for each launch config in turn (comma-separated
    KNOB=value settings of the ROBOCACHE_ALIGN_* variables, e.g. "TILE=32,SPARSE=8"; "" = the
    environment as given): summed CUPTI time of the operator's kernels, GB/s over the bytes counted
    (inputs once, outputs once), the fraction of a device-to-device copy measured in this process,
    and whether every output is bitwise equal to the CPU backend's."""
    data, ts = bench_batch(rng)
    b = data[0].shape[0]
    tdata = [torch.from_numpy(d).cuda() for d in data]
    # The scratch is sized once, here: for the largest form any config asks for (locate + gather
    # keeps its records in the device scratch).
    design = os.environ.get("ROBOCACHE_ALIGN_DESIGN")
    if any("DESIGN=gather" in c for c in configs or []):
        os.environ["ROBOCACHE_ALIGN_DESIGN"] = "gather"
    rb = AlignBatch([[x[i] for i in range(b)] for x in tdata], [[t[i] for i in range(b)] for t in ts], target_rate=50.0,
                    stream=torch.cuda.current_stream().cuda_stream, **BENCH_KW)
    if design is None:
        os.environ.pop("ROBOCACHE_ALIGN_DESIGN", None)
    else:
        os.environ["ROBOCACHE_ALIGN_DESIGN"] = design
    rb.run()
    torch.cuda.synchronize()
    if launches:  # under ncu: no CUPTI timing of our own
        for _ in range(launches):
            rb.launch()
        torch.cuda.synchronize()
        return []
    streams_np = [([d[i] for i in range(b)], [t[i] for i in range(b)]) for d, t in zip(data, ts)]
    want = run_pipe("cpu", streams_np, num_threads=os.cpu_count() or 4, target_rate=50.0, **BENCH_KW)
    want_f = np.stack(want[0]).view(np.uint8)
    want_v, want_t = np.stack(want[1]), np.stack(want[2])
    copy = copy_bandwidth()
    k = int(rb.out_ts[0].shape[0])
    nbytes = sum(d.nbytes + t.nbytes for d, t in zip(data, ts)) + b * k * (sum(c for _, _, c in SPECS) * 4 + len(SPECS) + 8)
    opts = os.environ.get("ROBOCACHE_NVRTC_OPTIONS", "")
    base = {kn: os.environ.get(f"ROBOCACHE_ALIGN_{kn}") for kn in KNOBS}
    rows = []
    for cfg in configs or [""]:
        for kn, v in base.items():
            os.environ.pop(f"ROBOCACHE_ALIGN_{kn}", None)
            if v is not None:
                os.environ[f"ROBOCACHE_ALIGN_{kn}"] = v
        for kv in filter(None, cfg.split(",")):
            kn, v = kv.split("=")
            os.environ[f"ROBOCACHE_ALIGN_{kn}"] = v
        rb.fill_poison()
        rb.run()  # re-stage: the tile map depends on the tile
        torch.cuda.synchronize()
        exact = (np.array_equal(torch.stack(rb.out).cpu().numpy().view(np.uint8), want_f)
                 and np.array_equal(torch.stack(rb.valid).cpu().numpy(), want_v)
                 and np.array_equal(torch.stack(rb.out_ts).cpu().numpy(), want_t))
        per = {}
        us = cupti_us(rb.launch, "align_", reps=20, per_kernel=per)
        gbs = nbytes / (us * 1e-6) / 1e9
        rows.append({"nvrtc_options": opts, "config": cfg, "kernel_us": us, "GBps": gbs, "copy_GBps": copy,
                     "fraction_of_copy_bw": gbs / copy, "bitwise_equal_cpu": bool(exact), "kernels_us": per})
        print(f"kernel-only: opts [{opts}] cfg [{cfg}]: {us:.1f} us CUPTI, {gbs:.0f} GB/s over {nbytes / 1e6:.1f} MB"
              f" = {100 * gbs / copy:.0f}% of copy {copy:.0f} GB/s; bitwise equal to CPU: {exact}", flush=True)
    print(f"\n== align kernel-only at the benchmark shape ({nbytes / 1e6:.1f} MB); copy {copy:.0f} GB/s in this run ==")
    print(f"{'config':<40}{'kernel us':>10}{'GB/s':>7}{'of copy':>9}  bitwise = CPU  kernels")
    for r in rows:
        ks = " + ".join(f"{k} {v:.1f}" for k, v in r["kernels_us"].items())
        print(f"{r['config'] or '(as given)':<40}{r['kernel_us']:>10.1f}{r['GBps']:>7.0f}{100 * r['fraction_of_copy_bw']:>8.0f}%  {str(r['bitwise_equal_cpu']):<13}  {ks}")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(".carry/data"))
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "gpu_align.json")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--skip-bench", action="store_true")
    ap.add_argument("--kernel-only", action="store_true", help="time the kernel alone at the benchmark shape (CUPTI), then exit")
    ap.add_argument("--configs", default="", help="with --kernel-only: ';'-separated launch configs, each comma-separated"
                    " KNOB=value for ROBOCACHE_ALIGN_<KNOB> (TILE, THREADS, BLOCK, SMEM, SPARSE, MARGIN, MARGIN_SHIFT, VARIANT, DESIGN); '' = as given")
    ap.add_argument("--launches", type=int, default=0, help="with --kernel-only: launch this many times after timing (for ncu)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    if args.kernel_only:
        rows = kernel_only(rng, args.launches, args.configs.split(";") if args.configs else None)
        if rows and args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(rows, indent=1))
        sys.exit(0 if all(r["bitwise_equal_cpu"] for r in rows) else 1)
    RESULTS["env"] = {
        "scipy_reference": HAVE_SCIPY, "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "python": platform.python_version(),
        "nvrtc": robocache.nvrtc_path(), "seed": args.seed, "cpu_count": os.cpu_count(),
        "align_env": {kn: os.environ.get(f"ROBOCACHE_ALIGN_{kn}") for kn in KNOBS}, "nvrtc_options_env": os.environ.get("ROBOCACHE_NVRTC_OPTIONS"),
    }
    t0 = time.time()
    random_checks(rng)
    real_checks(args.data)
    poisoned_checks(rng)
    RESULTS["check_seconds"] = time.time() - t0
    if not args.skip_bench:
        RESULTS["copy_GBps"] = copy_bandwidth()
        bench(rng, RESULTS["copy_GBps"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(RESULTS, indent=1))
    bad = [c for c in RESULTS["checks"] if not c["ok"]]
    print(f"\n== align correctness on {RESULTS['env']['gpu']}: {len(RESULTS['checks']) - len(bad)}/{len(RESULTS['checks'])} cases pass (seed {args.seed}) ==")
    for c in bad[:20]:
        print("FAIL", c)
    for c in RESULTS["checks"]:
        if not c["case"].startswith("random"):
            vr = c["vs_reference_max_rel"]
            vr = "-" if vr is None else format(vr, ".1e")
            print(f"  {c['case']:<80} gpu-vs-cpu {c['gpu_vs_cpu_max_rel']:.1e} (bitwise {100 * c['bitwise_equal_fraction']:.2f}%)"
                  f"  vs-ref {vr}  {'ok' if c['ok'] else 'FAIL'}")
    worst = {}
    for c in RESULTS["checks"]:
        if c["case"].startswith("random"):
            k = c["case"].split(" ")[1]
            worst[k] = max(worst.get(k, 0.0), c["gpu_vs_cpu_max_rel"])
    print("  random ragged, worst GPU-vs-CPU relative error per dtype:", {k: f"{v:.1e}" for k, v in worst.items()})
    if not HAVE_SCIPY:
        print("  (scipy absent: numpy/scipy reference comparisons skipped here; CI runs them against the CPU backend)")
    r = RESULTS["bench"]
    if r:
        print(f"\n== align benchmark on {RESULTS['env']['gpu']}; device-to-device copy {RESULTS['copy_GBps']:.0f} GB/s ==")
        print(r["shape"])
        print(f"{'peer':<44}{'time':>12}{'robocache x':>13}")
        print(f"{'robocache kernel (CUPTI)':<44}{r['robocache_kernel_us']:>10.1f}us{1.0:>13.1f}")
        print(f"{'robocache stage (pack + H2D) + kernel':<44}{r['robocache_stage_plus_kernel_us']:>10.1f}us{r['robocache_stage_plus_kernel_us'] / r['robocache_kernel_us']:>13.2f}")
        print(f"{'PyTorch GPU, same semantics (CUPTI sum)':<44}{r['torch_kernels_us']:>10.1f}us{r['speedup_vs_torch']:>13.1f}")
        print(f"{'PyTorch GPU (CUDA events, with launch gaps)':<44}{r['torch_event_us']:>10.1f}us{r['torch_event_us'] / r['robocache_kernel_us']:>13.1f}")
        print(f"{'numpy, one core':<44}{r['numpy_one_core_ms']:>10.2f}ms{r['speedup_vs_numpy_one_core']:>13.0f}")
        print(f"{'Rust CPU backend, 1 thread':<44}{r['rust_cpu_backend_1_thread_ms']:>10.2f}ms{r['speedup_vs_rust_1_thread']:>13.0f}")
        label = f"Rust CPU backend, {r['cpu_threads']} threads"
        ms = r["rust_cpu_backend_all_threads_ms"]
        print(f"{label:<44}{ms:>10.2f}ms{ms * 1e3 / r['robocache_kernel_us']:>13.0f}")
        mb = r["bytes_inputs_once_plus_outputs"] / 1e6
        print(f"kernel: {r['kernel_GBps']:.0f} GB/s over inputs read once + outputs written once ({mb:.1f} MB)"
              f" = {100 * r['fraction_of_copy_bw']:.0f}% of copy bandwidth")
        print(f"agreement: max |gpu - torch| {r['max_abs_err_vs_torch']:.1e}, max |gpu - numpy| {r['max_abs_err_vs_numpy']:.1e},"
              f" valid flags equal: {r['valid_equal_all_three']} ({r['invalid_steps']} invalid steps)")
        print(f"DALI GPU pipeline: {r['dali_gpu_pipeline_batches_per_s']:.0f} batches/s; done-when: {r['done_when']}")
    print("json:", args.out)
    sys.exit(1 if bad or (r and not r["valid_equal_all_three"]) else 0)


if __name__ == "__main__":
    main()
