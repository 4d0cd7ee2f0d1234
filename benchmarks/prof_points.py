"""Per-kernel CUPTI breakdown of voxel_downsample's GPU path (PointsBatch, no DALI pipeline):
robocache kernels and the PyTorch reference, on the benchmark cases. Developer tool, not a test.

    python benchmarks/prof_points.py --data <folder holding pointclouds/> [--skip-10m]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from robocache._raw_points import PointsBatch  # noqa: E402
from robocache.pointclouds import read_bin  # noqa: E402
from gpu_points import torch_voxel_downsample  # noqa: E402


def breakdown(fn_, reps=10):
    fn_()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            fn_()
        torch.cuda.synchronize()
    rows = []
    for e in prof.key_averages():
        t = getattr(e, "self_device_time_total", None)
        if t is None:
            t = getattr(e, "self_cuda_time_total", 0.0)
        if t > 0:
            rows.append((e.key[:40], t / reps, e.count // reps))
    return sorted(rows, key=lambda r: -r[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--skip-10m", action="store_true")
    ap.add_argument("--torch", action="store_true")
    ap.add_argument("--only", default="", help="run only cases whose name holds this, once each (for ncu)")
    args = ap.parse_args()
    kitti = [read_bin(f) for f in sorted((args.data / "pointclouds" / "kitti_full").glob("*.bin"))]
    g = np.random.default_rng(1)
    cases = [("KITTI 1", kitti[:1], (0.1,)), ("KITTI 16", [k.copy() for k in kitti] * 4, (0.05, 0.2)), ("1M", [g.uniform(-5, 5, (1_000_000, 3)).astype(np.float32)], (0.05, 0.1, 0.2))]
    if not args.skip_10m:
        cases.append(("10M", [g.uniform(-5, 5, (10_000_000, 3)).astype(np.float32)], (0.05, 0.2)))
    s = torch.cuda.current_stream().cuda_stream
    print("GPU:", torch.cuda.get_device_name(0))
    for name, cl, vs in cases:
        if args.only:
            if args.only not in name:
                continue
            vs = vs[:1]
        tc = [torch.from_numpy(c).cuda() for c in cl]
        for v in vs:
            kw = dict(stream=s, voxel_size=[v], return_counts=True)
            pb = PointsBatch("voxel_downsample", tc, **kw)
            if args.only:
                pb.run()
                torch.cuda.synchronize()
                continue
            rows = breakdown(pb.run)
            tot = sum(r[1] for r in rows if not r[0].startswith(("Memcpy", "Memset")))
            print(f"== {name} v={v}: robocache kernels {tot:.1f} us")
            for k, t, c in rows:
                print(f"   {k:<40}{t:>9.1f} us  x{c}")
            if args.torch:
                rows = breakdown(lambda: torch_voxel_downsample(tc, v))
                print(f"   torch total {sum(r[1] for r in rows):.1f} us")


if __name__ == "__main__":
    main()
