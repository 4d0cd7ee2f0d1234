"""GPU evidence for the augmentation operators (fn.robocache.temporal_jitter, action_noise,
points_augment): correctness of the GPU backend against the CPU backend (same seed, same output),
then performance against a numpy CPU implementation, a PyTorch GPU implementation and the DALI CPU
backend, in one run. Prints tables last; writes JSON.

    python benchmarks/gpu_augment.py --data <folder laid out like shared/data> --out $OUT/gpu_augment.json

Checks: (1) DALI GPU pipelines vs DALI CPU pipelines on random ragged batches over several
iterations (every dtype, timestamp kind, grid form, method, distribution, correlation, clipping,
rotation mode), plus the independent numpy reference drawing the same Philox numbers
(robocache.testing_augment); (2) real data (robosuite actions, KITTI scans, EuRoC IMU); (3) the same
seed gives bit-identical output across two GPU pipeline builds, and iterations differ; (4) the GPU
path driven outside DALI (dali_plugin/raw_augment.cc) with outputs poisoned before the run; (5) the
composition example on the GPU.
Benchmarks: B=256 windows of T=64 x C=32 (temporal_jitter, white and OU action_noise) and 16 point
clouds of 120k points: the operator's kernel time (CUPTI, from torch.profiler, while DALI runs the GPU
pipeline), the DALI GPU pipeline per batch, PyTorch GPU (CUPTI sum of its kernels, and CUDA events),
numpy on the CPU, the DALI CPU backend, and a device-to-device copy for scale. Done when each
operator's kernel is < 25 us per batch of 256 windows (< 100 us for the clouds) and >= 3x faster than
PyTorch.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import robocache  # noqa: E402
from robocache._raw_augment import AugmentBatch  # noqa: E402
from robocache.dtypes import bf16_bits_to_float, float_to_bf16_bits  # noqa: E402
from robocache.testing import random_ragged, read_euroc_imu  # noqa: E402
from robocache.testing_augment import (  # noqa: E402
    reference_action_noise,
    reference_points_augment,
    reference_temporal_jitter,
)

import torch  # noqa: E402
from nvidia.dali import fn, pipeline_def  # noqa: E402

RESULTS: dict = {"checks": [], "bench": []}
SEED = 31337


def _const(v):
    return lambda: v


def run_pipe(op, device, inputs, iterations=2, seed=SEED, threads=4, **kw):
    """`iterations` batches of the same inputs through fn.robocache.<op> on `device`; returns, per
    iteration, a list of outputs, each a list of numpy arrays."""
    b = len(inputs[0])
    gpu = device == "gpu"

    @pipeline_def(batch_size=b, num_threads=threads, device_id=0 if gpu else None, prefetch_queue_depth=1)
    def p():
        ins = fn.external_source(source=_const(tuple(inputs)), num_outputs=len(inputs), batch=True)
        d = ins[0].gpu() if gpu else ins[0]
        o = getattr(fn.robocache, op)(d, *ins[1:], seed=seed, **kw)
        return tuple(o) if isinstance(o, (list, tuple)) else (o,)

    pipe = p()
    pipe.build()
    res = []
    for _ in range(iterations):
        outs = pipe.run()
        res.append([[np.array((x.as_cpu() if gpu and hasattr(x, "as_cpu") else x)[i]) for i in range(b)] for x in outs])
    return res


def as_f64(x, bf16):
    return bf16_bits_to_float(x).astype(np.float64) if bf16 else x.astype(np.float64)


def record(case, gpu, cpu, tol, exact=(), bf16=False, ref=None, ref_tol=None):
    """Compares GPU and CPU outputs of every iteration: outputs listed in `exact` bit for bit, the
    others to `tol` relative to max(1, |cpu|); optionally the first output against `ref` (a list per
    iteration of lists per sample)."""
    worst, exact_ok, ref_err = 0.0, True, 0.0
    for it, (g, c) in enumerate(zip(gpu, cpu)):
        for k, (go, co) in enumerate(zip(g, c)):
            for i in range(len(go)):
                if go[i].shape != co[i].shape:
                    exact_ok = False
                    continue
                if k in exact:
                    exact_ok &= bool(np.array_equal(go[i], co[i]))
                elif go[i].size:
                    gf, cf = as_f64(go[i], bf16 and k == 0), as_f64(co[i], bf16 and k == 0)
                    if not np.array_equal(np.isnan(gf), np.isnan(cf)):
                        worst = float("inf")  # poison left in place, or NaN where the CPU has none
                        continue
                    fin = ~np.isnan(cf)
                    if fin.any():
                        worst = max(worst, float(np.max(np.abs(gf[fin] - cf[fin])) / max(1.0, float(np.max(np.abs(cf[fin]))))))
        if ref is not None:
            for i, r in enumerate(ref[it]):
                if r.size:
                    gf = as_f64(g[0][i], bf16)
                    err = float(np.max(np.abs(gf - r)) / max(1.0, float(np.max(np.abs(r)))))
                    ref_err = max(ref_err, err if np.isfinite(err) else float("inf"))
    ok = exact_ok and worst <= tol and (ref is None or ref_err <= (ref_tol or max(tol, 1e-5)))
    RESULTS["checks"].append({"case": case, "gpu_vs_cpu_max_rel": worst, "exact_outputs_equal": exact_ok, "vs_numpy_max_rel": ref_err if ref is not None else None, "tolerance": tol, "ok": ok})
    return ok


TOL = {"float32": 1e-6, "float16": 1e-3, "float64": 1e-12, "bfloat16": 8e-3}


def make_data(rng, dtype_name, shape):
    x = (rng.standard_normal(shape) * rng.uniform(0.1, 3)).astype(np.float32 if dtype_name == "bfloat16" else dtype_name)
    return float_to_bf16_bits(x) if dtype_name == "bfloat16" else x


def jitter_checks(rng):
    grids = [dict(), dict(target_rate=43.0), dict(num_samples=37), dict(target_rate=120.0, num_samples=50)]
    for dtype_name in ("float32", "float16", "float64", "bfloat16"):
        for ns in (False, True):
            for method in ("linear", "nearest", "previous"):
                for g in grids:
                    c = int(rng.choice([1, 3, 14, 32]))
                    data, ts = random_ragged(rng, int(rng.integers(1, 20)), c, (1, 200), ns=ns)
                    data = [make_data(rng, dtype_name, d.shape) for d in data]
                    kw = dict(speed=[0.7, 1.4], offset=[0.0, 0.05], warp_strength=float(rng.choice([0.0, 0.5, 0.9])), warp_knots=int(rng.integers(0, 6)), method=method, dtype="bfloat16" if dtype_name == "bfloat16" else "", **g)
                    gpu = run_pipe("temporal_jitter", "gpu", [data, ts], **kw)
                    cpu = run_pipe("temporal_jitter", "cpu", [data, ts], **kw)
                    ref = None
                    if dtype_name == "float32" and method == "linear":
                        rk = {k: v for k, v in kw.items() if k not in ("method", "dtype")}
                        ref = [[reference_temporal_jitter(d, t, SEED, it, i, **rk)[0] for i, (d, t) in enumerate(zip(data, ts))] for it in range(2)]
                    record(f"temporal_jitter {dtype_name} {'ns' if ns else 's'} {method} {g or 'original rate'} C={c}", gpu, cpu, TOL[dtype_name], exact=(1,), bf16=dtype_name == "bfloat16", ref=ref, ref_tol=1e-4)


def noise_checks(rng):
    for dtype_name in ("float32", "float16", "float64", "bfloat16"):
        for dist in ("gaussian", "uniform"):
            for tau in (0.0, 0.15):
                for clip in (False, True):
                    c = int(rng.choice([1, 7, 32, 300]))
                    acts = [make_data(rng, dtype_name, (int(rng.integers(1, 150)), c)) for _ in range(int(rng.integers(1, 40)))]
                    kw = dict(sigma=list(rng.uniform(0, 0.5, c).astype(np.float32)), distribution=dist, p=0.8, dtype="bfloat16" if dtype_name == "bfloat16" else "")
                    if tau:
                        kw.update(correlation_time=tau, rate=30.0)
                    if clip:
                        kw.update(low=[-0.5], high=[0.7])
                    gpu = run_pipe("action_noise", "gpu", [acts], **kw)
                    cpu = run_pipe("action_noise", "cpu", [acts], **kw)
                    ref = None
                    if dtype_name == "float32":
                        rk = {k: v for k, v in kw.items() if k != "dtype"}
                        ref = [[reference_action_noise(a, SEED, it, i, **rk) for i, a in enumerate(acts)] for it in range(2)]
                    tol = max(TOL[dtype_name], 2e-6)  # Box-Muller transcendentals may differ in the last bit
                    record(f"action_noise {dtype_name} {dist} tau={tau} clip={clip} C={c}", gpu, cpu, tol, bf16=dtype_name == "bfloat16", ref=ref)


def draw_checks(rng):
    """The random integers themselves: uniform white noise on zeros in float64 (no transcendental
    function on the way: 2u - 1 with u exact) must be bit-identical on the GPU and the CPU."""
    c = int(rng.integers(1, 40))
    acts = [np.zeros((int(rng.integers(1, 500)), c), np.float64) for _ in range(16)]
    kw = dict(sigma=[1.0], distribution="uniform")
    gpu = run_pipe("action_noise", "gpu", [acts], iterations=3, **kw)
    cpu = run_pipe("action_noise", "cpu", [acts], iterations=3, **kw)
    record("draws: uniform noise on zeros, float64, bit-identical GPU vs CPU (3 iterations)", gpu, cpu, 0.0, exact=(0,))


def points_checks(rng):
    for rotation in ("z", "so3", "none"):
        for jitter, drop in ((0.0, 0.0), (0.02, 0.3)):
            clouds = [(rng.standard_normal((int(rng.integers(0, 50_000)), 3 + int(f))) * 20).astype(np.float32) for f in [rng.integers(0, 3)] * int(rng.integers(1, 12))]
            kw = dict(rotation=rotation, scale=[0.8, 1.2], translation=[1.0, 1.0, 0.2], jitter=jitter, jitter_clip=0.05, dropout=drop)
            gpu = run_pipe("points_augment", "gpu", [clouds], **kw)
            cpu = run_pipe("points_augment", "cpu", [clouds], **kw)
            ref = [[reference_points_augment(c, SEED, it, i, **kw)[0] for i, c in enumerate(clouds)] for it in range(2)]
            record(f"points_augment {rotation} jitter={jitter} dropout={drop} B={len(clouds)}", gpu, cpu, 1e-6, exact=(1, 2), ref=ref)


def real_checks(data: Path):
    ts, imu = read_euroc_imu(data / "trajectories" / "euroc_v101_micro" / "mav0")
    kw = dict(speed=[0.8, 1.2], warp_strength=0.4, target_rate=100.0)
    g = run_pipe("temporal_jitter", "gpu", [[imu], [ts]], **kw)
    c = run_pipe("temporal_jitter", "cpu", [[imu], [ts]], **kw)
    ref = [[reference_temporal_jitter(imu, ts, SEED, it, 0, **kw)[0]] for it in range(2)]
    record("real: EuRoC V1_01 IMU int64 ns -> 100 Hz jittered", g, c, 1e-6, exact=(1,), ref=ref, ref_tol=1e-4)
    try:
        import h5py

        with h5py.File(data / "datasets" / "robosuite_hdf5" / "lift" / "panda" / "demo.hdf5") as f:
            acts = [np.asarray(f["data"][k]["actions"], np.float32) for k in f["data"].keys()]
        kw = dict(sigma=[0.05] * 6 + [0.0], correlation_time=0.3, rate=20.0, low=[-1.0], high=[1.0])
        g = run_pipe("action_noise", "gpu", [acts], **kw)
        c = run_pipe("action_noise", "cpu", [acts], **kw)
        ref = [[reference_action_noise(a, SEED, it, i, **kw) for i, a in enumerate(acts)] for it in range(2)]
        record("real: robosuite lift actions, OU noise + joint limits", g, c, 2e-6, ref=ref)
    except ImportError:
        RESULTS["checks"].append({"case": "real: robosuite (h5py not installed)", "ok": True, "skipped": True, "gpu_vs_cpu_max_rel": 0.0, "vs_numpy_max_rel": None})
    clouds = [np.fromfile(f, np.float32).reshape(-1, 4) for f in sorted((data / "pointclouds" / "kitti_full").glob("*.bin"))]
    kw = dict(rotation="z", scale=[0.95, 1.05], translation=[0.2, 0.2, 0.0], jitter=0.01, jitter_clip=0.05, dropout=0.1)
    g = run_pipe("points_augment", "gpu", [clouds], **kw)
    c = run_pipe("points_augment", "cpu", [clouds], **kw)
    ref = [[reference_points_augment(x, SEED, it, i, **kw)[0] for i, x in enumerate(clouds)] for it in range(2)]
    record(f"real: {len(clouds)} KITTI HDL-64 scans", g, c, 1e-6, exact=(1, 2), ref=ref)


def determinism_checks(rng):
    data, ts = random_ragged(rng, 8, 6, (20, 80))
    cases = [("temporal_jitter", [data, ts], dict(warp_strength=0.5, num_samples=30)),
             ("action_noise", [data], dict(sigma=[0.3], correlation_time=0.2, rate=50.0)),
             ("points_augment", [[np.ascontiguousarray(d[:, :4]) for d in data]], dict(rotation="so3", jitter=0.01, dropout=0.2))]
    for op, ins, kw in cases:
        a = run_pipe(op, "gpu", ins, iterations=3, **kw)
        b = run_pipe(op, "gpu", ins, iterations=3, **kw)
        same = all(np.array_equal(x, y) for ia, ib in zip(a, b) for oa, ob in zip(ia, ib) for x, y in zip(oa, ob))
        differ = not all(np.array_equal(x, y) for x, y in zip(a[0][0], a[1][0]))
        RESULTS["checks"].append({"case": f"determinism {op}: two GPU builds bit-identical, iterations differ", "ok": bool(same and differ), "gpu_vs_cpu_max_rel": 0.0, "vs_numpy_max_rel": None, "builds_identical": same, "iterations_differ": differ})


def example_check(data: Path | None):
    """examples/augment_pipeline.py on the GPU (nvJPEG decode, GPU crop/colour, robocache GPU ops):
    frames and actions on the same warp, each output frame the augmented input frame nearest its
    warped time, and the warped times and jittered actions equal to the CPU pipeline's."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("augment_pipeline", Path(__file__).resolve().parents[1] / "examples" / "augment_pipeline.py")
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    episodes, what = ex.load_episodes(data, frames=8)
    bs, nb = 4, 2
    outs = {}
    for dev in ("gpu", "cpu"):
        p = ex.build_pipeline(episodes, batch_size=bs, num_batches=nb, device=dev)
        p.build()
        outs[dev] = []
        for _ in range(nb):
            o = dict(zip(ex.OUTPUTS, p.run()))
            outs[dev].append({k: [np.array((v.as_cpu() if hasattr(v, "as_cpu") else v)[i]) for i in range(bs)] for k, v in o.items()})
    aligned, same_warp, actions_err = True, True, 0.0
    for g, c in zip(outs["gpu"], outs["cpu"]):
        for i in range(bs):
            ft, at, ts = g["frame_times"][i], g["action_times"][i], g["frame_ts"][i]
            same_warp &= bool(np.array_equal(ft, at) and np.array_equal(ft, c["frame_times"][i]))
            j = np.clip(np.searchsorted(ts, ft, side="right") - 1, 0, len(ts) - 1)
            nxt = np.minimum(j + 1, len(ts) - 1)
            j = np.where((nxt != j) & (ts[nxt] - ft < ft - ts[j]), nxt, j)
            aligned &= bool(np.array_equal(g["frames"][i], g["frames_in"][i][j]))
            actions_err = max(actions_err, float(np.abs(g["actions"][i] - c["actions"][i]).max()))
    ok = aligned and same_warp and actions_err <= 1e-6
    RESULTS["checks"].append({"case": f"example augment_pipeline on the GPU ({what}): frames/actions aligned, warp == CPU's", "ok": ok, "gpu_vs_cpu_max_rel": actions_err, "vs_numpy_max_rel": None, "frames_aligned": aligned, "same_warp": same_warp})
    try:
        from nvidia.dali.plugin.pytorch import DALIGenericIterator

        p = ex.build_pipeline(episodes, batch_size=bs, num_batches=nb, device="gpu")
        p.build()
        shapes = [(tuple(b[0]["frames"].shape), str(b[0]["frames"].device)) for b in DALIGenericIterator(p, ex.OUTPUTS)]
        RESULTS["example_torch_iterator"] = shapes
    except Exception as e:  # noqa: BLE001  (reported, not fatal)
        RESULTS["example_torch_iterator"] = f"failed: {e}"


def f32(xs):
    """Rounds parameters to float32, as DALI passes float arguments."""
    return [float(np.float32(x)) for x in xs]


def raw_batch(op, tensors, kw, timestamps=None):
    """An AugmentBatch (GPU path outside DALI) with the parameters of `kw` (DALI keyword names)."""
    stream = torch.cuda.current_stream().cuda_stream
    if op == "temporal_jitter":
        args = f32(kw.get("speed", [0.8, 1.2]) + kw.get("offset", [0.0, 0.0]) + [kw.get("warp_strength", 0.0)])
        args += [kw.get("warp_knots", 4), f32([kw.get("target_rate", 0.0)])[0], kw.get("num_samples", 0)]
        return AugmentBatch(op, tensors, args, timestamps=timestamps, text0=kw.get("method", "linear"), dtype=kw.get("dtype", ""), seed=SEED, stream=stream)
    if op == "action_noise":
        args = f32([kw.get("p", 1.0), kw.get("correlation_time", 0.0), kw.get("rate", 0.0)])
        low, high = kw.get("low"), kw.get("high")
        return AugmentBatch(op, tensors, args, text0=kw.get("distribution", "gaussian"), dtype=kw.get("dtype", ""), seed=SEED, sigma=kw.get("sigma", [0.01]),
                            low=f32(low) if low else None, high=f32(high) if high else None, stream=stream)
    args = f32(kw.get("angle", [-3.14159265, 3.14159265]) + kw.get("scale", [1.0, 1.0]) + kw.get("translation", [0.0, 0.0, 0.0]))
    args += f32([kw.get("jitter", 0.0), kw.get("jitter_clip", 0.0), kw.get("dropout", 0.0)])
    return AugmentBatch(op, tensors, args, text0=kw.get("rotation", "z"), seed=SEED, stream=stream)


def poisoned_checks(rng):
    """The GPU path on PyTorch tensors with outputs poisoned (0xFF) before the run, against the DALI
    CPU backend (iteration 0, same seed): every output element must be written."""
    cases = []
    data, ts = random_ragged(rng, 37, 14, (1, 300))
    cases.append(("temporal_jitter", [data, ts], dict(speed=[0.7, 1.3], warp_strength=0.6, num_samples=80, target_rate=90.0), (1,)))
    cases.append(("temporal_jitter", [data, ts], dict(speed=[0.7, 1.3], offset=[0.0, 0.2], warp_strength=0.3, method="nearest"), (1,)))
    acts = [rng.standard_normal((int(rng.integers(1, 200)), 33)).astype(np.float32) for _ in range(41)]
    cases.append(("action_noise", [acts], dict(sigma=[0.2], p=0.7, low=[-1.0], high=[1.0]), ()))
    cases.append(("action_noise", [acts], dict(sigma=list(rng.uniform(0, 1, 33)), correlation_time=0.3, rate=30.0, distribution="uniform"), ()))
    clouds = [(rng.standard_normal((int(rng.integers(0, 70_000)), 5)) * 30).astype(np.float32) for _ in range(9)]
    cases.append(("points_augment", [clouds], dict(rotation="so3", scale=[0.8, 1.2], translation=[1.0, 2.0, 0.5], jitter=0.02, jitter_clip=0.04, dropout=0.4), (1, 2)))
    for op, ins, kw, exact in cases:
        tensors = [torch.from_numpy(x).cuda() for x in ins[0]]
        rb = raw_batch(op, tensors, kw, timestamps=ins[1] if len(ins) > 1 else None)
        rb.fill_poison()
        rb.run()
        torch.cuda.synchronize()
        g = rb.outputs()
        c = run_pipe(op, "cpu", ins, iterations=1, **kw)[0]
        record(f"poisoned outputs (raw GPU path) {op} {kw}", [g], [c], 2e-6, exact=exact)


# ---------------------------------------------------------------------------------------- peers

def torch_temporal_jitter(data, ts, n, rate, speed=(0.8, 1.2), strength=0.5, knots=4):
    """PyTorch GPU temporal jitter on dense [B, T, C]: random speed and knot speeds, the warp integral,
    then searchsorted + gather + lerp at the warped times (fixed-length windows, as the operator)."""
    b, t, c = data.shape
    dev, f64 = data.device, torch.float64
    v = speed[0] + (speed[1] - speed[0]) * torch.rand(b, 1, device=dev, dtype=f64)
    k = knots + 2
    r = 1 + strength * (2 * torch.rand(b, k, device=dev, dtype=f64) - 1)
    h = 1.0 / (k - 1)
    cum = torch.cat([torch.zeros(b, 1, device=dev, dtype=f64), torch.cumsum(0.5 * (r[:, :-1] + r[:, 1:]) * h, 1)], 1)
    x = torch.arange(n, device=dev, dtype=f64) / max(n - 1, 1)
    j = torch.clamp((x * (k - 1)).floor().long(), max=k - 2)
    f = (x - j * h) / h
    r0, r1 = r[:, j], r[:, j + 1]
    w = (cum[:, j] + h * (r0 * f + 0.5 * (r1 - r0) * f * f)) / cum[:, -1:]
    q = torch.minimum(ts[:, :1] + v * ((n - 1) / rate) * w, ts[:, -1:])
    i = (torch.searchsorted(ts, q, right=True) - 1).clamp_(0, t - 2)
    t0, t1 = torch.gather(ts, 1, i), torch.gather(ts, 1, i + 1)
    wt = ((q - t0) / (t1 - t0)).clamp_(0, 1).to(data.dtype)
    ie = i.unsqueeze(-1).expand(b, n, c)
    return torch.lerp(torch.gather(data, 1, ie), torch.gather(data, 1, ie + 1), wt.unsqueeze(-1)), q


def torch_action_noise(x, sigma, p, low, high, a=0.0):
    """PyTorch GPU action noise: randn * sigma, optional OU recursion along T, per-sample coin, clip."""
    eps = torch.randn_like(x) * sigma
    if a > 0:
        b_ = math.sqrt(1 - a * a)
        noise = torch.empty_like(eps)
        noise[:, 0] = eps[:, 0]
        for t in range(1, x.shape[1]):
            noise[:, t] = a * noise[:, t - 1] + b_ * eps[:, t]
        eps = noise
    apply = torch.rand(x.shape[0], 1, 1, device=x.device) < p
    return torch.where(apply, torch.clamp(x + eps, low, high), x)


def torch_points_augment(pts, scale=(0.9, 1.1), trans=(0.2, 0.2, 0.1), jitter=0.01, clip=0.05, dropout=0.1):
    """PyTorch GPU point-cloud augmentation on dense [B, N, D]: z rotation, scale, translation,
    clipped Gaussian jitter, dropout mask; returns points, 4x4 transforms and the keep-mask."""
    b, n, d = pts.shape
    dev = pts.device
    th = (torch.rand(b, device=dev) * 2 - 1) * math.pi
    cs, sn = torch.cos(th), torch.sin(th)
    m = torch.zeros(b, 4, 4, device=dev)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1], m[:, 2, 2], m[:, 3, 3] = cs, -sn, sn, cs, 1.0, 1.0
    s = scale[0] + (scale[1] - scale[0]) * torch.rand(b, device=dev)
    m[:, :3, :3] *= s[:, None, None]
    m[:, :3, 3] = (torch.rand(b, 3, device=dev) * 2 - 1) * torch.tensor(trans, device=dev)
    xyz = torch.baddbmm(m[:, None, :3, 3], pts[..., :3], m[:, :3, :3].transpose(1, 2))
    xyz = xyz + (torch.randn(b, n, 3, device=dev) * jitter).clamp_(-clip, clip)
    out = torch.cat([xyz, pts[..., 3:]], -1)
    return out, m, torch.rand(b, n, device=dev) >= dropout


def numpy_temporal_jitter(data, ts, n, rate, rng, speed=(0.8, 1.2), strength=0.5, knots=4):
    out = np.empty((len(data), n, data[0].shape[1]), np.float32)
    for i, (d, t) in enumerate(zip(data, ts)):
        v = rng.uniform(*speed)
        r = 1 + strength * rng.uniform(-1, 1, knots + 2)
        h = 1.0 / (knots + 1)
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (r[:-1] + r[1:]) * h)])
        x = np.arange(n) / (n - 1)
        j = np.minimum(np.floor(x * (knots + 1)).astype(int), knots)
        f = (x - j * h) / h
        w = (cum[j] + h * (r[j] * f + 0.5 * (r[j + 1] - r[j]) * f * f)) / cum[-1]
        q = np.minimum(t[0] + v * (n - 1) / rate * w, t[-1])
        k = np.clip(np.searchsorted(t, q, side="right") - 1, 0, len(t) - 2)
        a = ((q - t[k]) / (t[k + 1] - t[k]))[:, None].astype(np.float32)
        out[i] = d[k] + a * (d[k + 1] - d[k])
    return out


def numpy_action_noise(x, sigma, p, low, high, rng, a=0.0):
    eps = rng.standard_normal(x.shape).astype(np.float32) * sigma
    if a > 0:
        b_ = np.float32(math.sqrt(1 - a * a))
        for t in range(1, x.shape[1]):
            eps[:, t] = a * eps[:, t - 1] + b_ * eps[:, t]
    apply = rng.uniform(size=(x.shape[0], 1, 1)) < p
    return np.where(apply, np.clip(x + eps, low, high), x)


def numpy_points_augment(clouds, rng, scale=(0.9, 1.1), trans=(0.2, 0.2, 0.1), jitter=0.01, clip=0.05, dropout=0.1):
    res = []
    for c in clouds:
        th = rng.uniform(-math.pi, math.pi)
        r = np.array([[math.cos(th), -math.sin(th), 0], [math.sin(th), math.cos(th), 0], [0, 0, 1]], np.float32) * np.float32(rng.uniform(*scale))
        t = (rng.uniform(-1, 1, 3) * trans).astype(np.float32)
        xyz = c[:, :3] @ r.T + t + np.clip(rng.standard_normal((len(c), 3)).astype(np.float32) * jitter, -clip, clip)
        res.append((np.concatenate([xyz, c[:, 3:]], 1), rng.uniform(size=len(c)) >= dropout))
    return res


# ---------------------------------------------------------------------------------------- timing

def median_ms(fn_, reps=20, warmup=3, inner=1):
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


def wall_ms(fn_, reps=5, warmup=1):
    for _ in range(warmup):
        fn_()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn_()
        ts.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(ts))


def cupti(fn_, prefix=None, reps=10):
    """CUPTI kernel time (torch.profiler) of the kernels named `prefix*` (all kernels when None) while
    `fn_` runs `reps` times: (mean us per kernel launch, launches, total us per call). Kernels launched
    by DALI's own threads on its streams are recorded too (CUPTI activity tracing is per process)."""
    from torch.profiler import ProfilerActivity, profile

    fn_()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        for _ in range(reps):
            fn_()
        torch.cuda.synchronize()
    total, count = 0.0, 0
    for e in prof.key_averages():
        t = getattr(e, "self_device_time_total", None)
        if t is None:
            t = getattr(e, "self_cuda_time_total", 0.0)
        if not t or "Memcpy" in e.key or "Memset" in e.key:
            continue
        if prefix is None or e.key.startswith(prefix):
            total += t
            count += e.count if prefix is not None else 0
    per_launch = total / count if count else None
    return per_launch, count, total / reps


def copy_bandwidth():
    n = 1 << 30
    src = torch.empty(n, dtype=torch.uint8, device="cuda").random_(0, 255)
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), reps=20)
    return 2 * n / (ms * 1e-3) / 1e9


def dali_gpu_pipe(op, dense, cpu_inputs, depth=2, **kw):
    """A DALI GPU pipeline fed with one dense GPU tensor batch (and CPU inputs such as timestamps)."""

    @pipeline_def(batch_size=dense.shape[0], num_threads=4, device_id=0, prefetch_queue_depth=depth)
    def p():
        d = fn.external_source(source=_const(dense), device="gpu", batch=True)
        extra = [fn.external_source(source=_const(x), batch=True) for x in cpu_inputs]
        o = getattr(fn.robocache, op)(d, *extra, seed=SEED, **kw)
        return tuple(o) if isinstance(o, (list, tuple)) else (o,)

    pipe = p()
    pipe.build()
    for _ in range(3):
        pipe.run()
    return pipe


def dali_cpu_ms(op, inputs, threads, **kw):
    @pipeline_def(batch_size=len(inputs[0]), num_threads=threads, device_id=None, prefetch_queue_depth=1)
    def p():
        ins = fn.external_source(source=_const(tuple(inputs)), num_outputs=len(inputs), batch=True)
        o = getattr(fn.robocache, op)(*ins, seed=SEED, **kw)
        return tuple(o) if isinstance(o, (list, tuple)) else (o,)

    pipe = p()
    pipe.build()
    return wall_ms(pipe.run)


def bench_row(name, op, prefix, pipe, raw, torch_fn, numpy_ms, cpu_ms, limit_us, bytes_, copy_gbs):
    dali_k_us, launches, _ = cupti(lambda: pipe.run(), prefix)
    raw_k_us, _, _ = cupti(raw.run, prefix)
    raw_ms = median_ms(raw.run, reps=20)
    k_us = dali_k_us if dali_k_us is not None else raw_k_us
    pipe_ms = wall_ms(pipe.run, reps=20, warmup=2)
    _, _, t_us = cupti(torch_fn)
    t_evt = median_ms(torch_fn, inner=5) * 1e3
    row = {
        "case": name, "op": op, "bytes": bytes_,
        "robocache_kernel_us": k_us, "kernel_us_in_dali_pipeline": dali_k_us, "kernel_us_raw_launch": raw_k_us,
        "kernel_launches_seen_in_dali": launches, "raw_path_event_ms": raw_ms, "dali_gpu_pipeline_ms_per_batch": pipe_ms,
        "torch_us": t_us, "torch_event_us": t_evt, "numpy_ms": numpy_ms, "dali_cpu_ms": cpu_ms,
        "speedup_vs_torch": (t_us / k_us) if k_us else None, "speedup_vs_numpy": (numpy_ms * 1e3 / k_us) if k_us else None,
        "kernel_GBps": (bytes_ / (k_us * 1e-6) / 1e9) if k_us else None, "copy_GBps": copy_gbs, "limit_us": limit_us,
    }
    row["done"] = bool(k_us is not None and k_us < limit_us and row["speedup_vs_torch"] >= 3.0)
    RESULTS["bench"].append(row)
    return row


def benchmarks(copy_gbs, threads):
    rng = np.random.default_rng(0)
    b, t, c, n = 256, 64, 32, 64
    dense = torch.randn(b, t, c, device="cuda")
    ts = (torch.rand(b, 1, device="cuda", dtype=torch.float64) * 100 + torch.cumsum(0.02 * (1 + 0.2 * (torch.rand(b, t, device="cuda", dtype=torch.float64) - 0.5)), 1)).contiguous()
    ts_np = ts.cpu().numpy()
    data_np = dense.cpu().numpy()
    bytes_w = 2 * b * t * c * 4

    kw = dict(speed=[0.8, 1.2], warp_strength=0.5, warp_knots=4, num_samples=n, target_rate=50.0)
    pipe = dali_gpu_pipe("temporal_jitter", dense, [ts_np], **kw)
    np_ms = wall_ms(lambda: numpy_temporal_jitter(data_np, ts_np, n, 50.0, rng))
    cpu_ms = dali_cpu_ms("temporal_jitter", [list(data_np), list(ts_np)], threads, **kw)
    raw = raw_batch("temporal_jitter", [dense[i] for i in range(b)], kw, timestamps=list(ts_np))
    bench_row(f"temporal_jitter B={b} T={t} C={c} -> {n} (speed + warp, linear)", "temporal_jitter", "resample_v", pipe, raw,
              lambda: torch_temporal_jitter(dense, ts, n, 50.0), np_ms, cpu_ms, 25.0, bytes_w, copy_gbs)

    sigma = torch.full((c,), 0.05, device="cuda")
    low, high = torch.full((c,), -2.0, device="cuda"), torch.full((c,), 2.0, device="cuda")
    for tau, label in ((0.0, "white gaussian"), (0.2, "OU gaussian tau=0.2 s @ 50 Hz")):
        kw = dict(sigma=[0.05], p=0.8, low=[-2.0], high=[2.0])
        a = 0.0
        if tau:
            kw.update(correlation_time=tau, rate=50.0)
            a = math.exp(-1 / (50.0 * tau))
        pipe = dali_gpu_pipe("action_noise", dense, [], **kw)
        np_ms = wall_ms(lambda: numpy_action_noise(data_np, np.float32(0.05), 0.8, -2.0, 2.0, rng, a))
        cpu_ms = dali_cpu_ms("action_noise", [list(data_np)], threads, **kw)
        raw = raw_batch("action_noise", [dense[i] for i in range(b)], kw)
        bench_row(f"action_noise B={b} T={t} C={c} {label}, clip, p=0.8", "action_noise", "action_noise_", pipe, raw,
                  lambda: torch_action_noise(dense, sigma, 0.8, low, high, a), np_ms, cpu_ms, 25.0, bytes_w, copy_gbs)

    nc, npts = 16, 120_000
    pts = torch.randn(nc, npts, 4, device="cuda") * 20
    pts_np = pts.cpu().numpy()
    kw = dict(rotation="z", scale=[0.9, 1.1], translation=[0.2, 0.2, 0.1], jitter=0.01, jitter_clip=0.05, dropout=0.1)
    pipe = dali_gpu_pipe("points_augment", pts, [], **kw)
    np_ms = wall_ms(lambda: numpy_points_augment(pts_np, rng))
    cpu_ms = dali_cpu_ms("points_augment", [list(pts_np)], threads, **kw)
    raw = raw_batch("points_augment", [pts[i] for i in range(nc)], kw)
    bench_row(f"points_augment {nc} clouds x {npts // 1000}k x 4 (z rot, scale, trans, jitter, dropout)", "points_augment", "points_augment_", pipe, raw,
              lambda: torch_points_augment(pts), np_ms, cpu_ms, 100.0, nc * npts * (16 + 16 + 1), copy_gbs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(".carry/data"))
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "gpu_augment.json")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--skip-bench", action="store_true")
    ap.add_argument("--skip-checks", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    RESULTS["env"] = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "python": platform.python_version(), "nvrtc": robocache.nvrtc_path(), "seed": args.seed, "cpu_count": os.cpu_count()}
    t0 = time.time()
    if not args.skip_checks:
        jitter_checks(rng)
        noise_checks(rng)
        draw_checks(rng)
        points_checks(rng)
        poisoned_checks(rng)
        if args.data.is_dir():
            real_checks(args.data)
        determinism_checks(rng)
        example_check(args.data if args.data.is_dir() else None)
    RESULTS["check_seconds"] = time.time() - t0
    if not args.skip_bench:
        copy = copy_bandwidth()
        RESULTS["copy_GBps"] = copy
        benchmarks(copy, os.cpu_count() or 4)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(RESULTS, indent=1, default=str))
    bad = [c for c in RESULTS["checks"] if not c["ok"]]
    print(f"\n== correctness on {RESULTS['env']['gpu']}: {len(RESULTS['checks']) - len(bad)}/{len(RESULTS['checks'])} cases pass (seed {args.seed}) ==")
    for c in bad[:30]:
        print("FAIL", c)
    groups: dict = {}
    for c in RESULTS["checks"]:
        g = " ".join(c["case"].split(" ")[:2])
        w = groups.setdefault(g, [0, 0.0, 0.0, 0])
        w[0] += 1
        w[1] = max(w[1], c.get("gpu_vs_cpu_max_rel") or 0.0)
        w[2] = max(w[2], c.get("vs_numpy_max_rel") or 0.0)
        w[3] += int(c["ok"])
    for g, (n, wg, wr, ok) in groups.items():
        print(f"  {g:<44} {ok}/{n} ok   worst GPU-vs-CPU {wg:.1e}   worst vs numpy reference {wr:.1e}")
    if RESULTS["bench"]:
        print(f"\n== augmentation benchmark on {RESULTS['env']['gpu']}; device-to-device copy {RESULTS['copy_GBps']:.0f} GB/s ==")
        print(f"{'case':<82}{'kernel us':>10}{'torch us':>10}{'x torch':>8}{'numpy ms':>10}{'DALI CPU ms':>12}{'DALI GPU ms/b':>14}{'limit':>7}{'done':>6}")
        for r in RESULTS["bench"]:
            k = r["robocache_kernel_us"]
            print(f"{r['case']:<82}{(k if k else float('nan')):>10.1f}{r['torch_us']:>10.1f}{(r['speedup_vs_torch'] or float('nan')):>8.1f}{r['numpy_ms']:>10.2f}{r['dali_cpu_ms']:>12.2f}{r['dali_gpu_pipeline_ms_per_batch']:>14.3f}{r['limit_us']:>7.0f}{'yes' if r['done'] else 'NO':>6}")
        for r in RESULTS["bench"]:
            print(f"  {r['op']:<16} kernel in DALI pipeline {r['kernel_us_in_dali_pipeline']} us, raw launch {r['kernel_us_raw_launch']} us, raw path (plan + copy + launch) {r['raw_path_event_ms'] * 1e3:.1f} us")
        print("kernel: CUPTI time per launch of the operator's kernel inside the DALI GPU pipeline (raw launch if CUPTI saw none there); torch: CUPTI sum of its kernels per call;")
        print("numpy: one CPU thread; DALI CPU: the CPU backend on all cores; DALI GPU ms/b: pipeline wall time per batch (host planning + feed + kernel)")
    print("example through DALIGenericIterator on the GPU:", RESULTS.get("example_torch_iterator"))
    print("json:", args.out)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
