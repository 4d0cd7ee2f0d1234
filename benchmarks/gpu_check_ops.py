"""A small, fast GPU test driver: every GPU operator's GPU backend on random and edge-case ragged
batches (T=1, C=1, wide C, all-NaN, NaN runs, extremes, int64 ns near 2^62, clouds with N=0 / N=1,
NaN rows, duplicates, max_points truncation), each compared with the CPU backend (the reference the
GPU is held to). Written to be run under compute-sanitizer by benchmarks/sanitize.sh (the full
pytest suite would be far too slow there); also useful alone.

Prints ``== <operator>`` before each operator's cases (the sanitizer script attributes reports by
kernel name and by these markers), a table last, writes JSON to ``--out``; exit status 1 on a
mismatch or an unexpected error.

    python benchmarks/gpu_check_ops.py --out $OUT/gpu_check_ops.json [--ops resample,align] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import robocache  # noqa: E402,F401
from nvidia.dali import fn, pipeline_def  # noqa: E402
from robocache.dtypes import bf16_bits_to_float, float_to_bf16_bits  # noqa: E402

OPS = ["resample", "align", "temporal_jitter", "action_noise", "points_augment", "voxel_downsample", "voxelize", "normalize"]
SEED = 77


def run(op, device, inputs, gpu_inputs=(0,), **kw):
    b = len(inputs[0])
    gpu = device == "gpu"

    @pipeline_def(batch_size=b, num_threads=2, device_id=0 if gpu else None, prefetch_queue_depth=1, seed=SEED)
    def pipe():
        ins = fn.external_source(source=lambda: [list(x) for x in inputs], num_outputs=len(inputs), batch=True)
        ins = list(ins) if isinstance(ins, (list, tuple)) else [ins]
        reg = [x.gpu() if gpu and k in gpu_inputs else x for k, x in enumerate(ins)]
        out = getattr(fn.robocache, op)(*reg, **kw)
        return tuple(out) if isinstance(out, (list, tuple)) else (out,)

    p = pipe()
    p.build()
    outs = p.run()
    res = [[np.array((o.as_cpu() if gpu and hasattr(o, "as_cpu") else o)[i]) for i in range(b)] for o in outs]
    del p
    return res


def series(rng, b, c, ns=False, dtype="float32", kinds=("normal", "t1", "nan_run", "all_nan", "extreme")):
    data, tss = [], []
    for i in range(b):
        kind = kinds[i % len(kinds)]
        t = 1 if kind == "t1" else int(rng.integers(2, 120))
        x = rng.standard_normal((t, c))
        if kind == "nan_run" and t > 5:
            x[2:5, :] = np.nan
        if kind == "all_nan":
            x[:] = np.nan
        if kind == "extreme":
            x = rng.choice([1e30, -1e30, 1e-45, 0.0], size=(t, c)) if dtype != "float16" else rng.choice([6e4, -6e4, 6e-8], size=(t, c))
        d = float_to_bf16_bits(x.astype(np.float32)) if dtype == "bfloat16" else x.astype(dtype)
        data.append(d)
        if ns:
            base = 2**62 - int(rng.integers(0, 10**12))
            tss.append(base + np.cumsum(rng.integers(1, 2 * 10**7, t)).astype(np.int64))
        else:
            tss.append(float(rng.uniform(0, 100)) + np.cumsum(rng.uniform(0.001, 0.03, t)))
    return data, tss


def clouds(rng, b, c):
    out = []
    for i in range(b):
        n = [0, 1, 2, 37, int(rng.integers(100, 20000))][i % 5]
        p = (rng.standard_normal((n, c)) * 4).astype(np.float32)
        if n > 10:
            p[rng.integers(0, n, n // 20), 0] = np.nan
            p[: n // 4] = p[n // 4: 2 * (n // 4)]  # duplicates
        out.append(p)
    return out


def as_f64(x, dtype):
    return bf16_bits_to_float(x).astype(np.float64) if dtype == "bfloat16" else np.asarray(x, dtype=np.float64)


def same(g, c, tol, dtype="float32"):
    g, c = as_f64(g, dtype), as_f64(c, dtype)
    if g.shape != c.shape or not np.array_equal(np.isnan(g), np.isnan(c)):
        return False
    scale = max(1.0, float(np.nanmax(np.abs(c), initial=0.0))) if c.size and np.isfinite(c).any() else 1.0
    return bool(np.allclose(np.nan_to_num(g), np.nan_to_num(c), rtol=tol, atol=tol * scale))


def as_set(means, counts):
    """Voxel rows in a canonical order (voxel order differs between versions): sorted by count and
    rounded mean."""
    key = np.round(np.nan_to_num(means.astype(np.float64)), 4)
    order = np.lexsort(tuple(key.T[::-1]) + (counts,)) if len(means) else np.zeros(0, int)
    return means[order], counts[order]


def cases(op, rng):
    """(name, inputs, gpu_inputs, kwargs, compare) for one operator."""
    out = []
    if op in ("resample", "temporal_jitter", "action_noise"):
        for dtype in ("float32", "float64", "float16", "bfloat16"):
            for c in (1, 7, 300):
                for ns in (False, True):
                    if op == "action_noise" and ns:
                        continue
                    d, t = series(rng, 10, c, ns, dtype)
                    extra = {"dtype": "bfloat16"} if dtype == "bfloat16" else {}
                    if op == "resample":
                        out.append((f"{dtype} C={c} {'ns' if ns else 's'} rate", [d, t], (0,), dict(target_rate=60.0, **extra), dtype))
                        tg = [np.sort(x[rng.integers(0, len(x), 9)]) for x in t]
                        out.append((f"{dtype} C={c} {'ns' if ns else 's'} targets", [d, t, tg], (0,), dict(method="nearest", extrapolate="nan", **extra), dtype))
                    elif op == "temporal_jitter":
                        out.append((f"{dtype} C={c} {'ns' if ns else 's'}", [d, t], (0,), dict(num_samples=24, warp_strength=0.5, **extra), dtype))
                    else:
                        out.append((f"{dtype} C={c} OU", [d], (0,), dict(sigma=[0.1], correlation_time=0.2, rate=30.0, low=[-1.0], high=[1.0], **extra), dtype))
    elif op == "align":
        for dtype in ("float32", "float64", "float16", "bfloat16"):
            for ns in (False, True):
                s0, t0 = series(rng, 8, 4, ns, dtype)
                s1, t1 = series(rng, 8, 1, ns, dtype)
                s2, t2 = series(rng, 8, 300, ns, dtype, kinds=("normal", "t1", "nan_run"))
                extra = {"dtype": "bfloat16"} if dtype == "bfloat16" else {}
                kw = dict(num_samples=33, span="union", methods=["linear", "previous", "nearest"], max_gap=[0.05, 1.0, float("inf")], quaternions=[0, 0], fill="hold", **extra)
                out.append((f"{dtype} {'ns' if ns else 's'} 3 streams", [s0, t0, s1, t1, s2, t2], (0, 2, 4), kw, dtype))
                ref = [np.sort(np.concatenate([a[:3], b[:2]])) for a, b in zip(t0, t1)]
                out.append((f"{dtype} {'ns' if ns else 's'} reference", [s0, t0, s1, t1, ref], (0, 2), dict(fill="zero", **extra), dtype))
    elif op == "points_augment":
        for c in (3, 4, 9):
            out.append((f"C={c}", [clouds(rng, 10, c)], (0,), dict(rotation="so3", scale=[0.8, 1.2], translation=[1, 1, 0.5], jitter=0.02, jitter_clip=0.05, dropout=0.2), "float32"))
    elif op == "voxel_downsample":
        for c in (3, 4):
            for kw in (dict(voxel_size=0.25, return_counts=True), dict(voxel_size=[0.5, 0.25, 1.0], anchor="min_bound", return_counts=True, min_points_per_voxel=2), dict(voxel_size=0.3, max_points=50, return_counts=True)):
                out.append((f"C={c} {sorted(kw)}", [clouds(rng, 10, c)], (0,), kw, "set"))
    elif op == "voxelize":
        for mode in ("occupancy", "count", "mean", "sparse"):
            kw = dict(voxel_size=[0.4, 0.4, 1.0], range=[-8, -8, -3, 8, 8, 3], mode=mode)
            if mode == "sparse":
                kw.update(max_voxels=200)
            out.append((mode, [clouds(rng, 10, 4)], (0,), kw, "sparse" if mode == "sparse" else "float32"))
    elif op == "normalize":
        for mode in ("center", "unit_sphere", "unit_cube"):
            out.append((mode, [clouds(rng, 10, 4)], (0,), dict(mode=mode), "float32"))
    return out


def compare(op, how, g, c, kw):
    """True when the GPU outputs g match the CPU outputs c (lists per output, per sample)."""
    tol = {"float32": 2e-6, "float64": 1e-12, "float16": 1e-3, "bfloat16": 8e-3}
    if how == "set":
        for i in range(len(c[0])):
            n = int(c[-1][i]) if kw.get("max_points") else len(c[0][i])
            if kw.get("max_points") and int(g[-1][i]) != n:
                return False
            gm, gk = as_set(g[0][i][:n], g[1][i][:n])
            cm, ck = as_set(c[0][i][:n], c[1][i][:n])
            if kw.get("max_points"):  # truncation keeps different voxels when the order differs
                if len(gm) != len(cm):
                    return False
                continue
            if not (np.array_equal(gk, ck) and same(gm, cm, 1e-5)):
                return False
        return True
    if how == "sparse":
        for i in range(len(c[0])):
            gq, cq = g[0][i], c[0][i]
            if len(gq) != len(cq) or sorted(map(tuple, gq)) != sorted(map(tuple, cq)):
                if not np.array_equal(np.sort(g[2][i]), np.sort(c[2][i])):  # ties at max_voxels may differ
                    return False
        return True
    k = 50 if op in ("temporal_jitter", "action_noise", "points_augment", "align") else 1  # float64 transcendental rounding
    for go, co in zip(g, c):
        for x, y in zip(go, co):
            if x.dtype == np.uint16 and how == "bfloat16":
                ok = same(x, y, tol["bfloat16"] * k, "bfloat16")
            elif x.dtype.kind in "iub":
                ok = x.shape == y.shape and np.array_equal(x, y)
            else:
                ok = same(x, y, tol.get(str(x.dtype), 2e-6) * k)
            if not ok:
                return False
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--rounds", type=int, default=1, help="random rounds per case list")
    ap.add_argument("--max-cases", type=int, default=0, help="at most this many cases per operator (a seeded random pick; 0: all)")
    ap.add_argument("--time-budget", type=float, default=float("inf"), help="seconds; no new case starts after it (cases run round-robin over the operators, so each gets its first ones)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--self-check", action="store_true", help="CPU against CPU (checks this driver without a GPU)")
    a = ap.parse_args(argv)
    gpu = "cpu" if a.self_check else "gpu"
    rng = np.random.default_rng(SEED)
    ops = a.ops.split(",")
    queues = {}
    for op in ops:
        q = [c for _ in range(a.rounds) for c in cases(op, rng)]
        order = rng.permutation(len(q))
        q = [q[i] for i in order]
        queues[op] = q[: a.max_cases] if a.max_cases else q
    stats = {op: {"op": op, "cases": 0, "passed": 0, "failed": [], "seconds": 0.0, "planned": len(queues[op])} for op in ops}
    t_start = time.perf_counter()
    out_of_time = False
    for k in range(max(len(q) for q in queues.values())):
        for op in ops:
            if k >= len(queues[op]):
                continue
            if time.perf_counter() - t_start > a.time_budget:
                out_of_time = True
                break
            name, inputs, gpu_inputs, kw, how = queues[op][k]
            print(f"== {op}", flush=True)
            t0 = time.perf_counter()
            try:
                g = run(op, gpu, inputs, gpu_inputs, **kw)
                c = run(op, "cpu", inputs, gpu_inputs, **kw)
                ok = compare(op, how, g, c, kw)
            except Exception as e:  # noqa: BLE001 - reported per case
                ok, name = False, f"{name}: {str(e)[-300:]}"
            st = stats[op]
            st["cases"] += 1
            st["passed"] += ok
            st["seconds"] += time.perf_counter() - t0
            if not ok:
                st["failed"].append(name)
                print(f"   FAILED: {name}", flush=True)
        if out_of_time:
            print(f"time budget of {a.time_budget:.0f} s reached: later cases not run", flush=True)
            break
    rows = list(stats.values())
    bad = sum(r["cases"] - r["passed"] for r in rows)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"rows": rows, "out_of_time": out_of_time}, indent=1))
    print()
    print(f"{'operator':<18} {'GPU == CPU':>11} {'of planned':>10} {'s':>6}")
    for r in rows:
        print(f"{r['op']:<18} {r['passed']:>5}/{r['cases']:<5} {r['planned']:>10} {r['seconds']:>6.1f}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
