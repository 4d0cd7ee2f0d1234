"""GPU evidence for fn.robocache.voxel_downsample / voxelize / normalize: correctness of the GPU
backend against the CPU backend (and numpy), then performance against PyTorch (same GPU), Open3D
(this machine's CPU, when importable) and the robocache CPU backend, in one run. Tables last; JSON.

    python benchmarks/gpu_points.py --data <folder holding pointclouds/> [--out gpu_points.json]

Checks: (1) DALI GPU vs DALI CPU pipelines on random ragged batches with NaN/inf rows, every mode
and option (voxel size scalar / per axis / per-sample input, origin, anchor, min_points, counts,
max_points, max_voxels); (2) the same on real scans (KITTI full scans, KITTI crop, nuScenes, PCL
organised Kinect clouds); (3) the GPU path on PyTorch tensors with poisoned (0xFF) outputs; (4) GPU
errors (grid over 2^31 cells; num_points = -1 on the no-sync path); (5) GPU vs numpy on 1M points.
Benchmarks (voxel_downsample): one KITTI scan, 16 KITTI scans (the 4 shipped scans, 4 times each),
1M and 10M random points (uniform in a 10 m cube), voxel 0.05 / 0.1 / 0.2 m: robocache GPU kernels
(CUPTI sum per call) and its whole path (wall clock, including the one D2H copy + sync and output
allocation), the no-sync ``max_points`` path, PyTorch (packed int64 key + torch.unique + index_add_
mean, one call per batch), the DALI CPU backend (all cores) and Open3D's voxel_down_sample.
Open3D needs libGL on the GPU machine (BUILD-NOTES pitfall 11); without it that column is empty.
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
from robocache._raw_points import PointsBatch  # noqa: E402
from robocache.pointclouds import read_bin, read_pcd, reference_voxel_downsample  # noqa: E402

import torch  # noqa: E402
from nvidia.dali import fn, pipeline_def  # noqa: E402

try:
    import open3d as o3d
except Exception as e:  # noqa: BLE001 - any import failure (libGL) means "not available"
    o3d = None
    O3D_ERR = f"{type(e).__name__}: {e}"
else:
    O3D_ERR = None

RESULTS: dict = {"checks": [], "bench": [], "sweep": []}


def run_pipe(device, op, clouds, voxel_input=None, threads=4, **kw):
    """One batch through fn.robocache.<op>; returns [output][sample] numpy arrays."""
    n = len(clouds)

    @pipeline_def(batch_size=n, num_threads=threads, device_id=0 if device == "gpu" else None, prefetch_queue_depth=1)
    def p():
        x = fn.external_source(source=lambda: clouds, batch=True)
        if voxel_input is not None:
            kw["voxel_size"] = fn.external_source(source=lambda: voxel_input, batch=True)
        out = getattr(fn.robocache, op)(x.gpu() if device == "gpu" else x, **kw)
        return tuple(out) if isinstance(out, (list, tuple)) else (out,)

    pipe = p()
    pipe.build()
    outs = pipe.run()
    if device == "gpu":
        outs = [o.as_cpu() for o in outs]
    return [[np.array(o[i]) for i in range(n)] for o in outs]


def compare(name, g, c, ref=None):
    """GPU vs CPU outputs: shapes and dtypes equal, integers exact, floats to float32 rounding (and
    whether every float is bitwise equal: both backends add each voxel's rows in the same order)."""
    ok, worst, detail, exact = True, 0.0, "", True
    if len(g) != len(c):
        ok, detail = False, f"{len(g)} vs {len(c)} outputs"
    for k, (go, co) in enumerate(zip(g, c)):
        for i, (a, b) in enumerate(zip(go, co)):
            if a.shape != b.shape or a.dtype != b.dtype:
                ok, detail = False, f"output {k} sample {i}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
                continue
            if a.dtype.kind in "iu":
                if not np.array_equal(a, b):
                    ok, detail = False, f"output {k} sample {i}: integers differ at {int(np.sum(a != b))} places"
                continue
            if not np.array_equal(np.isfinite(a), np.isfinite(b)):
                ok, detail = False, f"output {k} sample {i}: finite pattern differs"
                continue
            if a.tobytes() != b.tobytes():
                exact = False
            if a.size:
                scale = max(1.0, float(np.nanmax(np.abs(np.where(np.isfinite(b), b, 0)))))
                err = float(np.max(np.abs(np.nan_to_num(a.astype(np.float64)) - np.nan_to_num(b.astype(np.float64))))) / scale
                worst = max(worst, err)
    if worst > 4e-7:
        ok, detail = False, detail or f"max relative error {worst:.2e}"
    if ref is not None and ok:
        ok, detail = ref()
    RESULTS["checks"].append({"case": name, "ok": bool(ok), "exact": bool(exact and ok), "max_rel_err": worst, "detail": detail})
    return ok


def cloud(rng, n, c, nan_frac=0.05, scale=None):
    scale = scale if scale is not None else float(rng.choice([0.5, 3.0, 40.0]))
    p = (rng.standard_normal((n, c)) * scale + rng.uniform(-5, 5, c)).astype(np.float32)
    if n and nan_frac:
        bad = rng.random(n) < nan_frac
        col = rng.integers(0, 3, n)
        p[bad, col[bad]] = rng.choice([np.nan, np.inf, -np.inf], n)[bad]
    return p


def both(name, op, clouds, voxel_input=None, ref=None, **kw):
    g = run_pipe("gpu", op, clouds, voxel_input, **kw)
    c = run_pipe("cpu", op, clouds, voxel_input, **kw)
    return compare(name, g, c, ref)


def random_checks(rng):
    for c in (3, 5):
        for vs in (0.05, [0.1, 0.2, 0.4]):
            for anchor in ("origin", "min_bound"):
                for minp, rc, mp in ((1, True, 0), (3, True, 0), (1, False, 500), (2, True, 64)):
                    clouds = [cloud(rng, int(rng.integers(0, 30000)), c) for _ in range(int(rng.integers(1, 12)))]
                    kw = dict(voxel_size=vs, anchor=anchor, min_points_per_voxel=minp, return_counts=rc, max_points=mp)
                    if anchor == "origin":
                        kw["origin"] = [float(x) for x in rng.uniform(-1, 1, 3)]
                    both(f"downsample C={c} v={vs} {anchor} min={minp} counts={rc} max_points={mp}", "voxel_downsample", clouds, **kw)
    sizes = [np.array(s, np.float32) for s in ([0.1], [0.5, 0.25, 1.0], [0.3], [2.0, 2.0, 2.0])]
    both("downsample per-sample voxel_size input", "voxel_downsample", [cloud(rng, 5000, 4, scale=2.0) for _ in range(4)], voxel_input=sizes, return_counts=True)
    rng_ = [-4.0, -3.0, -2.0, 4.0, 3.0, 2.0]
    for mode in ("occupancy", "count", "mean"):
        for vs in (0.5, [0.1, 0.2, 0.25]):
            both(f"voxelize {mode} v={vs}", "voxelize", [cloud(rng, int(rng.integers(0, 20000)), 4, scale=3.0) for _ in range(5)], voxel_size=vs, range=rng_, mode=mode)
    for mv, mp, minp in ((0, 0, 1), (50, 0, 1), (7, 0, 2), (0, 300, 1), (100, 100, 1), (3000, 0, 1)):
        both(f"voxelize sparse max_voxels={mv} max_points={mp} min={minp}", "voxelize", [cloud(rng, int(rng.integers(0, 20000)), 4, scale=3.0) for _ in range(6)], voxel_size=0.3, range=rng_, mode="sparse", max_voxels=mv, max_points=mp, min_points_per_voxel=minp)
    for mode in ("center", "unit_sphere", "unit_cube"):
        clouds = [cloud(rng, n, 5) for n in (0, 1, 7, 3000, 100000)] + [np.full((4, 5), np.nan, np.float32)]
        both(f"normalize {mode}", "normalize", clouds, mode=mode)


def real(data_dir: Path):
    pc = data_dir / "pointclouds"
    kitti = [read_bin(f) for f in sorted((pc / "kitti_full").glob("*.bin"))]
    crop = read_bin(pc / "mmdet3d" / "kitti_000008.bin")
    nus = read_bin(pc / "mmdet3d" / "nuscenes_LIDAR_TOP_1532402927647951.pcd.bin", 5)
    pcl = [read_pcd(pc / "pcl" / f"{n}.pcd")[0] for n in ("five_people", "office1", "table_scene_mug_stereo_textured")]
    return kitti, crop, nus, pcl


def real_checks(kitti, crop, nus, pcl):
    for v in (0.05, 0.1, 0.2):
        def ref(v=v):
            g = run_pipe("gpu", "voxel_downsample", kitti, voxel_size=v, return_counts=True)
            for i, cl in enumerate(kitti):
                m, k, _ = reference_voxel_downsample(cl, v)
                if not np.array_equal(g[1][i], k):
                    return False, f"scan {i}: counts differ from numpy"
                if np.max(np.abs(g[0][i] - m)) > 2e-7 * max(1.0, float(np.abs(m).max())) + 1e-6:
                    return False, f"scan {i}: means differ from numpy"
            return True, "vs numpy too"

        both(f"KITTI 4 full scans downsample v={v}", "voxel_downsample", kitti, ref=ref, voxel_size=v, return_counts=True)
    both("KITTI crop + anchor=min_bound v=0.1", "voxel_downsample", [crop], voxel_size=0.1, anchor="min_bound", return_counts=True)
    both("nuScenes 5 columns v=[0.1,0.1,0.2]", "voxel_downsample", [nus], voxel_size=[0.1, 0.1, 0.2], return_counts=True)
    both("PCL organised (NaN rows) v=0.01", "voxel_downsample", pcl, voxel_size=0.01, return_counts=True)
    pp = [0.0, -39.68, -3.0, 69.12, 39.68, 1.0]
    both("KITTI PointPillars sparse max_voxels=12000", "voxelize", kitti, voxel_size=[0.16, 0.16, 4.0], range=pp, mode="sparse", max_voxels=12000)
    g = run_pipe("gpu", "voxelize", kitti, voxel_size=[0.05, 0.05, 0.1], range=[-80.0, -80.0, -5.0, 80.0, 80.0, 5.0], mode="sparse")
    inc = all(bool(np.all(np.diff(((c[:, 0].astype(np.int64) << 42) | (c[:, 1].astype(np.int64) << 21) | c[:, 2]), axis=0) > 0)) for c in g[0])
    RESULTS["checks"].append({"case": "GPU sparse coords strictly increasing (x, y, z) lexicographic", "ok": inc, "exact": inc, "max_rel_err": 0.0, "detail": f"{sum(len(c) for c in g[0])} voxels"})
    both("KITTI PointPillars occupancy", "voxelize", kitti, voxel_size=[0.16, 0.16, 4.0], range=pp)
    both("KITTI mean grid 0.4 m", "voxelize", kitti, voxel_size=0.4, range=pp, mode="mean")
    both("PCL normalize unit_sphere", "normalize", pcl, mode="unit_sphere")


def poisoned_checks(rng, kitti):
    s = torch.cuda.current_stream().cuda_stream
    for kw in (dict(voxel_size=[0.2], max_points=40000, return_counts=True), dict(voxel_size=[0.1], return_counts=True), dict(voxel_size=[0.05])):
        clouds = kitti[:2] + [cloud(rng, 777, 4)]
        pb = PointsBatch("voxel_downsample", [torch.from_numpy(x).cuda() for x in clouds], stream=s, **kw)
        out = pb.run()
        torch.cuda.synchronize()
        g = [[t.cpu().numpy() for t in o] for o in out]
        c = run_pipe("cpu", "voxel_downsample", clouds, **{k: (v[0] if k == "voxel_size" else v) for k, v in kw.items()})
        compare(f"poisoned raw path downsample {kw}", g, c)
    # Learned radix-pass launches (PassHint) below what the batch needs: the samples past them
    # finish in the last launch (one block each), a local 1M sample after pass 0 alone.
    big = rng.uniform(-5, 5, (1_000_000, 4)).astype(np.float32)
    clouds = kitti[:2] + [big]
    c = run_pipe("cpu", "voxel_downsample", clouds, voxel_size=0.1, return_counts=True)
    for hint in (1, 2, 3):
        pb = PointsBatch("voxel_downsample", [torch.from_numpy(x).cuda() for x in clouds], stream=s, voxel_size=[0.1], return_counts=True, pass_hint=hint)
        out = pb.run()
        torch.cuda.synchronize()
        g = [[t.cpu().numpy() for t in o] for o in out]
        compare(f"pass launches learned {hint} (KITTI x2 + 1M local) -> {pb.pass_hint}", g, c)
    pb = PointsBatch("voxelize", [torch.from_numpy(x).cuda() for x in kitti], stream=s, voxel_size=[0.16, 0.16, 4.0], range=[0.0, -39.68, -3.0, 69.12, 39.68, 1.0], mode="sparse", max_voxels=9000, max_points=10000)
    out = pb.run()
    torch.cuda.synchronize()
    g = [[t.cpu().numpy() for t in o] for o in out]
    c = run_pipe("cpu", "voxelize", kitti, voxel_size=[0.16, 0.16, 4.0], range=[0.0, -39.68, -3.0, 69.12, 39.68, 1.0], mode="sparse", max_voxels=9000, max_points=10000)
    compare("poisoned raw path voxelize sparse padded", g, c)


def error_checks(rng):
    far = cloud(rng, 100, 4, scale=1.0)
    far[0, 0] = 1e6
    try:
        run_pipe("gpu", "voxel_downsample", [cloud(rng, 100, 4, scale=1.0), far], voxel_size=1e-4)
        ok, msg = False, "no error"
    except RuntimeError as e:
        msg = str(e)
        ok = "robocache.voxel_downsample: sample 1:" in msg and "2^31" in msg
    RESULTS["checks"].append({"case": "GPU error: grid over 2^31 cells (sync path)", "ok": ok, "exact": ok, "max_rel_err": 0.0, "detail": msg[-200:]})
    pb = PointsBatch("voxel_downsample", [torch.from_numpy(far).cuda()], stream=torch.cuda.current_stream().cuda_stream, voxel_size=[1e-4], max_points=10)
    out = pb.run()
    torch.cuda.synchronize()
    n = int(out[1][0].cpu())
    RESULTS["checks"].append({"case": "GPU error on the no-sync path gives num_points = -1", "ok": n == -1, "exact": n == -1, "max_rel_err": 0.0, "detail": f"num_points={n}"})


def big_check(rng):
    p = rng.uniform(-5, 5, (1_000_000, 4)).astype(np.float32)
    both("1M random points v=0.05 GPU vs CPU", "voxel_downsample", [p], voxel_size=0.05, return_counts=True)
    # Long voxels (> 32 points: a warp each) and a wide key (1 cm over 200 m: 42 bits, 6 passes).
    q = rng.uniform(-5, 5, (2_000_000, 4)).astype(np.float32)
    both("2M random points v=0.5 (~250 points per voxel)", "voxel_downsample", [q], voxel_size=0.5, return_counts=True)
    w = np.concatenate([rng.uniform([-100, -100, -5], [100, 100, 15], (200000, 3)), rng.uniform(0, 0.05, (50000, 3))]).astype(np.float32)
    both("1 cm voxels over 200 m (wide keys) + one dense corner", "voxel_downsample", [w, w[:777]], voxel_size=0.01, return_counts=True)
    z = np.zeros((300000, 3), np.float32)
    z[::3] = rng.uniform(-1, 1, (100000, 3))
    both("200k identical points (one voxel) + 100k random", "voxel_downsample", [z], voxel_size=0.1, return_counts=True)


# ---------------- benchmarks ----------------


def cupti_us(fn_, prefix=None, reps=10, breakdown=None):
    """Mean GPU time per call of the kernels fn_ launches (CUPTI via torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    fn_()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            fn_()
        torch.cuda.synchronize()
    total = 0.0
    if breakdown is not None:
        for e in prof.key_averages():
            t = getattr(e, "self_device_time_total", None)
            if t is None:
                t = getattr(e, "self_cuda_time_total", 0.0)
            if t > 0:
                breakdown.append((e.key[:32], round(t / reps, 1), e.count // reps))
        breakdown.sort(key=lambda r: -r[1])
    for e in prof.key_averages():
        t = getattr(e, "self_device_time_total", None)
        if t is None:
            t = getattr(e, "self_cuda_time_total", 0.0)
        if "Memcpy" in e.key or "Memset" in e.key:
            continue
        if prefix is None or e.key.startswith(prefix):
            total += t
    return total / reps


def wall_us(fn_, reps=20):
    fn_()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn_()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t0) * 1e6)
    return float(np.median(ts))


def torch_voxel_downsample(clouds, v):
    """PyTorch reference: one call per batch; int64 key (sample, x, y, z) + torch.unique + index_add_ mean."""
    sizes = torch.tensor([len(c) for c in clouds], device="cuda")
    pts = torch.cat(clouds) if len(clouds) > 1 else clouds[0]
    sid = torch.repeat_interleave(torch.arange(len(clouds), device="cuda"), sizes)
    fin = torch.isfinite(pts[:, :3]).all(1)
    pts, sid = pts[fin], sid[fin]
    q = torch.floor(pts[:, :3] / v).long()
    q = q - q.min(0).values
    ext = q.max(0).values + 1
    key = ((sid * ext[0] + q[:, 0]) * ext[1] + q[:, 1]) * ext[2] + q[:, 2]
    uniq, inv, cnt = torch.unique(key, return_inverse=True, return_counts=True)
    sums = torch.zeros(len(uniq), pts.shape[1], device="cuda").index_add_(0, inv, pts)
    return sums / cnt[:, None], cnt


def copy_bandwidth():
    n = 1 << 30
    src = torch.empty(n, dtype=torch.uint8, device="cuda").random_(0, 255)
    dst = torch.empty_like(src)
    us = wall_us(lambda: dst.copy_(src), reps=10)
    return 2 * n / (us * 1e-6) / 1e9


def cpu_backend_ms(clouds, v, threads):
    @pipeline_def(batch_size=len(clouds), num_threads=threads, device_id=None, prefetch_queue_depth=1)
    def p():
        x = fn.external_source(source=lambda: clouds, batch=True)
        return fn.robocache.voxel_downsample(x, voxel_size=v)

    pipe = p()
    pipe.build()
    pipe.run()
    ts = []
    for _ in range(2):
        t0 = time.perf_counter()
        pipe.run()
        ts.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(ts))


def open3d_ms(clouds, v):
    if o3d is None:
        return None
    pcs = [o3d.geometry.PointCloud(o3d.utility.Vector3dVector(c[np.isfinite(c[:, :3]).all(1), :3].astype(np.float64))) for c in clouds]
    t0 = time.perf_counter()
    for pc in pcs:
        pc.voxel_down_sample(v)
    return (time.perf_counter() - t0) * 1e3


def bench(name, clouds_np, v, cores, o3d_ok=True):
    s = torch.cuda.current_stream().cuda_stream
    tc = [torch.from_numpy(c).cuda() for c in clouds_np]
    n = sum(len(c) for c in clouds_np)
    pb = PointsBatch("voxel_downsample", tc, stream=s, voxel_size=[v], return_counts=True)
    out = pb.run()
    m = sum(int(o.shape[0]) for o in out[0])
    kern = []
    k_us = cupti_us(pb.run, "points_", breakdown=kern)
    w_us = wall_us(pb.run)
    # The same batch launching 5 radix passes (what every batch launched before PassHint; the
    # instance above launches as many as its first batch needed): the launches' share, same run.
    p5 = PointsBatch("voxel_downsample", tc, stream=s, voxel_size=[v], return_counts=True, pass_hint=5)
    k5_us = cupti_us(p5.run, "points_")
    cap = max(int(o.shape[0]) for o in out[0])
    pn = PointsBatch("voxel_downsample", tc, stream=s, voxel_size=[v], return_counts=True, max_points=cap)
    kn_us = cupti_us(pn.run, "points_")
    wn_us = wall_us(pn.run)
    tm, tcnt = torch_voxel_downsample(tc, v)
    t_us = cupti_us(lambda: torch_voxel_downsample(tc, v))
    tw_us = wall_us(lambda: torch_voxel_downsample(tc, v))
    cpu_ms = cpu_backend_ms(clouds_np, v, cores)
    o3_ms = open3d_ms(clouds_np, v) if o3d_ok else None
    row = {
        "case": name, "points": n, "voxel": v, "voxels": m, "torch_voxels": int(len(tcnt)), "kernels": kern,
        "bytes": int(sum(c.nbytes for c in clouds_np) + m * (clouds_np[0].shape[1] + 1) * 4),
        "robocache_kernels_us": k_us, "pass_launches": pb.pass_hint or 5, "robocache_5_launches_kernels_us": k5_us, "robocache_wall_us": w_us, "robocache_nosync_kernels_us": kn_us, "robocache_nosync_wall_us": wn_us,
        "torch_kernels_us": t_us, "torch_wall_us": tw_us, "cpu_backend_ms": cpu_ms, "cpu_threads": cores, "open3d_ms": o3_ms,
        "speedup_vs_torch_kernels": t_us / k_us, "speedup_vs_torch_wall": tw_us / w_us,
        "speedup_vs_cpu_backend_wall": cpu_ms * 1e3 / w_us, "speedup_vs_open3d_wall": (o3_ms * 1e3 / w_us) if o3_ms else None,
    }
    RESULTS["bench"].append(row)
    return row


def set_variant(var):
    """ROBOCACHE_POINTS_VARIANT for the next batches (read by the plugin at each batch); None: unset."""
    if var is None:
        os.environ.pop("ROBOCACHE_POINTS_VARIANT", None)
    else:
        os.environ["ROBOCACHE_POINTS_VARIANT"] = var


def sweep(variants, cases, reps=20):
    """Kernel variants of voxel_downsample on the same data in this process: CUPTI kernel time per
    call with its per-kernel breakdown, and whether the outputs equal the first variant's bit for bit
    (the first should be "none", the v5b kernels; "default" = the variant shipped when unset)."""
    s = torch.cuda.current_stream().cuda_stream
    before = os.environ.get("ROBOCACHE_POINTS_VARIANT")
    for name, clouds, v in cases:
        tc = [torch.from_numpy(c).cuda() for c in clouds]
        ref = None
        for var in variants:
            set_variant(None if var == "default" else var)
            pb = PointsBatch("voxel_downsample", tc, stream=s, voxel_size=[v], return_counts=True)
            out = [[t.cpu().numpy() for t in o] for o in pb.run()]
            same = ref is None or all(a.tobytes() == b.tobytes() for oa, ob in zip(out, ref) for a, b in zip(oa, ob))
            ref = ref if ref is not None else out
            kern = []
            us = cupti_us(pb.run, "points_", reps=reps, breakdown=kern)
            RESULTS["sweep"].append({"case": name, "voxel": v, "variant": var, "kernels_us": us, "same_as_first": bool(same), "kernels": kern})
            print(f"  sweep {name} v={v} {var}: {us:.1f} us{'' if same else '  OUTPUT DIFFERS from ' + variants[0]}", flush=True)
        del tc
    set_variant(before)


def adopt_best(big):
    """Sets ROBOCACHE_POINTS_VARIANT to the best measured variant of `big` (see --adopt-best)."""
    rows = RESULTS["sweep"]

    def us(var, case, v=None):
        r = [r for r in rows if r["variant"] == var and r["case"] == case and (v is None or r["voxel"] == v)]
        return sum(x["kernels_us"] for x in r) if r and all(x["same_as_first"] for x in r) else None

    ref10 = us("default", "10M")
    ok = []
    for var in big:
        one, k16, m10 = us(var, "1M"), us(var, "KITTI16"), us(var, "10M")
        if one is None or k16 is None or k16 >= 300 or (ref10 is not None and m10 is not None and m10 > 1.03 * ref10):
            continue
        ok.append((one, var))
    if ok:
        best = min(ok)[1]
        set_variant(None if best == "default" else best)
        RESULTS["adopted_variant"] = best
        print(f"adopted variant for the checks and benchmarks: {best} (1M sum {min(ok)[0]:.1f} us)", flush=True)


def print_sweep(variants):
    rows = RESULTS["sweep"]
    if not rows:
        return
    cases = list(dict.fromkeys((r["case"], r["voxel"]) for r in rows))
    print("\n== kernel variants (ROBOCACHE_POINTS_VARIANT), CUPTI us per call; * = output differs from the first ==")
    print(f"{'variant':<46}" + "".join(f"{c[:8] + ' ' + str(v):>15}" for c, v in cases))
    for var in variants:
        cells = []
        for c, v in cases:
            r = next((r for r in rows if r["case"] == c and r["voxel"] == v and r["variant"] == var), None)
            cells.append(f"{r['kernels_us']:>14.1f}{'' if r['same_as_first'] else '*'}" if r else f"{'-':>15}")
        print(f"{var[:46]:<46}" + "".join(f"{x:>15}" for x in cells))
    for c, v in cases:
        for var in (variants[0], "default"):
            r = next((r for r in rows if r["case"] == c and r["voxel"] == v and r["variant"] == var), None)
            if r:
                print(f"  {c} v={v} {var}: " + ", ".join(f"{k[:18]} {t} x{n}" for k, t, n in r["kernels"][:10]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(".carry/data"))
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "gpu_points.json")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--skip-bench", action="store_true")
    ap.add_argument("--skip-10m", action="store_true")
    ap.add_argument("--variants", default="", help="';'-separated ROBOCACHE_POINTS_VARIANT values to compare (e.g. 'none;default;passw'), first = reference")
    ap.add_argument("--sweep-big", default="none;default", help="';'-separated variants also measured on 16 KITTI scans and 10M points (the others: 1M only)")
    ap.add_argument("--adopt-best", action="store_true", help="after the sweep, run the checks and benchmarks with the --sweep-big variant fastest on 1M (sum of the three voxel sizes) whose outputs equal the first's, 16 KITTI scans under 300 us and 10M no slower than 'default' + 3%%")
    ap.add_argument("--sweep-only", action="store_true", help="only the variant comparison (no checks, no peers)")
    ap.add_argument("--o3d-max-points", type=int, default=0, help="Open3D only on cases of at most this many points (0: all)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    RESULTS["env"] = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "python": platform.python_version(), "nvrtc": robocache.nvrtc_path(), "seed": args.seed, "cpu_count": os.cpu_count(), "open3d": (o3d.__version__ if o3d else None), "open3d_error": O3D_ERR}
    t0 = time.time()
    kitti, crop, nus, pcl = real(args.data)
    variants = [v.strip() for v in args.variants.split(";") if v.strip()]
    big = [v for v in (v.strip() for v in args.sweep_big.split(";")) if v in variants]
    if variants:
        g = np.random.default_rng(1)
        one_m = g.uniform(-5, 5, (1_000_000, 3)).astype(np.float32)
        sweep(variants, [("1M", [one_m], 0.05), ("1M", [one_m], 0.1), ("1M", [one_m], 0.2)])
        cases = [("KITTI16", [k.copy() for k in kitti] * 4, 0.05)]
        if not args.skip_10m:
            cases.append(("10M", [g.uniform(-5, 5, (10_000_000, 3)).astype(np.float32)], 0.05))
        sweep(big, cases)
        print(f"[{time.time() - t0:.0f} s] variant sweep done", flush=True)
        if args.adopt_best:
            adopt_best(big)
    if args.sweep_only:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(RESULTS, indent=1))
        print_sweep(variants)
        print("json:", args.out)
        sys.exit(1 if any(not r["same_as_first"] for r in RESULTS["sweep"]) else 0)
    for step in (lambda: random_checks(rng), lambda: real_checks(kitti, crop, nus, pcl), lambda: poisoned_checks(rng, kitti), lambda: error_checks(rng), lambda: big_check(rng)):
        try:
            step()
        except Exception as e:  # noqa: BLE001 - record and go on: the table shows what failed
            RESULTS["checks"].append({"case": f"exception in {step}", "ok": False, "max_rel_err": 0.0, "detail": f"{type(e).__name__}: {e}"[:600]})
        nbad = sum(not c["ok"] for c in RESULTS["checks"])
        print(f"[{time.time() - t0:.0f} s] {len(RESULTS['checks'])} checks, {nbad} failing", flush=True)
    RESULTS["check_seconds"] = time.time() - t0
    if not args.skip_bench:
        RESULTS["copy_GBps"] = copy_bandwidth()
        cores = os.cpu_count() or 4
        g = np.random.default_rng(1)
        cases = [("KITTI 1 scan", kitti[:1]), ("KITTI 16 scans", [k.copy() for k in kitti] * 4), ("1M random", [g.uniform(-5, 5, (1_000_000, 3)).astype(np.float32)])]
        if not args.skip_10m:
            cases.append(("10M random", [g.uniform(-5, 5, (10_000_000, 3)).astype(np.float32)]))
        for name, cl in cases:
            for v in (0.05, 0.1, 0.2):
                try:
                    r = bench(name, cl, v, cores, o3d_ok=not args.o3d_max_points or sum(len(c) for c in cl) <= args.o3d_max_points)
                    print(f"[{time.time() - t0:.0f} s] {name} v={v}: {r['robocache_kernels_us']:.1f} us kernels, torch {r['torch_kernels_us']:.1f} us", flush=True)
                except Exception as e:  # noqa: BLE001
                    RESULTS["bench"].append({"case": name, "voxel": v, "error": f"{type(e).__name__}: {e}"[:600]})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(RESULTS, indent=1))
    bad = [c for c in RESULTS["checks"] if not c["ok"]]
    sweep_bad = [r for r in RESULTS["sweep"] if not r["same_as_first"]]
    print_sweep(variants)
    for r in sweep_bad:
        print(f"FAIL variant {r['variant']} {r['case']} v={r['voxel']}: output differs from {variants[0]}")
    inexact = [c for c in RESULTS["checks"] if c["ok"] and not c.get("exact", True)]
    if "adopted_variant" in RESULTS:
        print(f"\n(checks and benchmarks ran with ROBOCACHE_POINTS_VARIANT={RESULTS['adopted_variant']})")
    print(f"\n== correctness on {RESULTS['env']['gpu']}: {len(RESULTS['checks']) - len(bad)}/{len(RESULTS['checks'])} cases pass, {len(RESULTS['checks']) - len(bad) - len(inexact)} bitwise equal to the CPU backend (seed {args.seed}, {RESULTS['check_seconds']:.0f} s) ==")
    for c in bad[:30]:
        print("FAIL", c)
    for c in inexact[:10]:
        print("not bitwise equal (within float32 rounding):", c["case"], f"{c['max_rel_err']:.1e}")
    for c in RESULTS["checks"]:
        if not c["case"].startswith(("downsample C=", "voxelize ")):
            print(f"  {c['case'][:70]:<70} {'ok' if c['ok'] else 'FAIL'}  max rel {c['max_rel_err']:.1e} {c['detail'][:60]}")
    rows = [r for r in RESULTS["bench"] if "error" not in r]
    for r in rows:
        if r["case"] in ("1M random", "10M random") or (r["case"] == "KITTI 16 scans" and r["voxel"] == 0.05):
            print(f"\n-- kernels, {r['case']} v={r['voxel']} (us per call, launches per call):", ", ".join(f"{k[:18]} {t} x{c}" for k, t, c in r["kernels"][:14]))
    if RESULTS["bench"]:
        print(f"\n== voxel_downsample on {RESULTS['env']['gpu']}; d2d copy {RESULTS['copy_GBps']:.0f} GB/s; open3d: {RESULTS['env']['open3d'] or O3D_ERR} ==")
        print(f"{'case':<16}{'voxel':>6}{'points':>10}{'voxels':>9}{'rc kern us':>11}{'passes':>7}{'5 pass us':>10}{'%copy':>6}{'rc wall us':>11}{'nosync us':>10}{'torch k us':>11}{'torch w us':>11}{'x torch k':>10}{'x torch w':>10}{'CPU ms':>9}{'O3D ms':>9}")
        for r in RESULTS["bench"]:
            if "error" in r:
                print(f"{r['case']:<16}{r['voxel']:>6} ERROR {r['error'][:120]}")
                continue
            pct = 100.0 * r["bytes"] / (r["robocache_kernels_us"] * 1e-6) / (RESULTS["copy_GBps"] * 1e9)
            print(f"{r['case']:<16}{r['voxel']:>6}{r['points']:>10}{r['voxels']:>9}{r['robocache_kernels_us']:>11.1f}{r['pass_launches']:>7}{r['robocache_5_launches_kernels_us']:>10.1f}{pct:>6.1f}{r['robocache_wall_us']:>11.1f}{r['robocache_nosync_wall_us']:>10.1f}{r['torch_kernels_us']:>11.1f}{r['torch_wall_us']:>11.1f}{r['speedup_vs_torch_kernels']:>10.1f}{r['speedup_vs_torch_wall']:>10.1f}{r['cpu_backend_ms']:>9.1f}{(r['open3d_ms'] or float('nan')):>9.1f}")
        print("kern: CUPTI kernel time per call (robocache: points_* kernels; torch: all its kernels); passes: radix-pass launches the instance learned from its first batch (PassHint); 5 pass us: the same batch with 5 launches (as before PassHint); %copy: (input + output bytes) / kern time as a share of the d2d copy rate; wall: host clock per call incl. launches, the D2H count copy + sync and output allocation; nosync: max_points path, wall")
        goals = []
        for r in rows:
            if r["case"] == "1M random":
                goals.append((f"1M points v={r['voxel']}: {r['robocache_kernels_us']:.0f} us < 150 us", r["robocache_kernels_us"] < 150))
            if r["case"] == "KITTI 16 scans":
                goals.append((f"16 KITTI scans v={r['voxel']}: {r['robocache_kernels_us']:.0f} us < 300 us", r["robocache_kernels_us"] < 300))
            if r["case"] in ("1M random", "10M random"):
                goals.append((f"{r['case']} v={r['voxel']}: {r['speedup_vs_torch_kernels']:.1f}x torch >= 5x", r["speedup_vs_torch_kernels"] >= 5))
        print("done-when (kernel time): " + "; ".join(f"{t} {'PASS' if ok else 'MISS'}" for t, ok in goals))
    print("json:", args.out)
    sys.exit(1 if bad or sweep_bad else 0)


if __name__ == "__main__":
    main()
