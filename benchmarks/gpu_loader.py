"""GPU evidence for RobotDataLoader: device="cuda" against device="cpu" (same seed: the same windows,
values within float rounding), then throughput in samples/s against a LeRobot-style PyTorch
DataLoader (CPU worker processes: decode, resample with numpy, normalise, resize; pinned batches
copied to the GPU) on the same data with the same CPU count, in one run. Prints a table last;
writes JSON.

    python benchmarks/gpu_loader.py --data <copy of shared/data> [--out $OUT/gpu_loader.json]

Data (``--data`` is laid out like ``shared/data``): the LeRobot v2.1 Unitree G1 episode 1 (30 Hz,
26-D, AV1 640x480 video, decoded by PyAV in both loaders), LeRobot v3.0 SO-101 (30 Hz, 6-D), RLDS
Bridge (5 Hz, 7-D, 64x64 JPEG views: nvJPEG inside the DALI pipeline on the GPU, Pillow in the
baseline) and robosuite Lift (20 Hz, 32-D states, float64).

Equal CPUs: the DataLoader gets ``--cpus`` worker processes; RobotDataLoader gets ``--cpus`` DALI
threads and ``num_workers=--cpus`` (worker processes decoding the PyAV video frames).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import robocache  # noqa: E402
from robocache import DatasetSpec, RobotDataLoader  # noqa: E402
from robocache.loader.host import nearest_frame, step_times, valid_mask  # noqa: E402

import torch  # noqa: E402

RESULTS: dict = {"checks": [], "throughput": []}
GPU = torch.cuda.is_available()  # False: a CPU smoke run of this script (cpu against cpu), for development only
DEV = "cuda" if GPU else "cpu"


def sync():
    if GPU:
        torch.cuda.synchronize()
CAM = "observation.images.cam_high"


def specs(data: Path, cameras: bool) -> list:
    d = data / "datasets"
    g1 = DatasetSpec(str(d / "lerobot_v21_unitree_g1"), episodes=[1], cameras={"front": CAM} if cameras else None)
    br = DatasetSpec(str(d / "rlds_bridge"), cameras={"front": "observation.image_0"} if cameras else None)
    if cameras:
        return [g1, br]
    return [g1, DatasetSpec(str(d / "lerobot_v30_so101")), br, DatasetSpec(str(d / "robosuite_hdf5" / "lift" / "panda" / "demo.hdf5"))]


def to_np(b: dict) -> dict:
    return {k: v.cpu().numpy() for k, v in b.items()}


def run_all(loader, limit=None) -> list:
    out = []
    for k, b in enumerate(loader):
        out.append(to_np(b))
        if limit and k + 1 >= limit:
            break
    return out


# ----------------------------------------------------------------------------------- correctness
def check(name: str, data: Path, cameras, augmentations, size=(96, 128), **kw):
    common = dict(target_frequency=50.0, observation_horizon=0.1, action_horizon=1.0, batch_size=32, seed=1234, epoch_size=256,
                  cameras={"front": size} if cameras else None, augmentations=augmentations, num_workers=8, num_threads=4, **kw)
    t0 = time.perf_counter()
    g = run_all(RobotDataLoader(specs(data, bool(cameras)), device=DEV, **common))
    c = run_all(RobotDataLoader(specs(data, bool(cameras)), device="cpu", **common))
    same_windows = all(np.array_equal(x[k], y[k]) for x, y in zip(g, c) for k in ("index", "dataset_index", "episode_index", "anchor_time", "task"))
    masks_equal = all(np.array_equal(x[k], y[k]) for x, y in zip(g, c) for k in x if k.endswith("mask"))
    worst, img = {}, {}
    for k in g[0]:
        if g[0][k].dtype.kind == "f" or k.startswith("images."):
            diffs = [np.abs(x[k].astype(np.float64) - y[k].astype(np.float64)) for x, y in zip(g, c)]
            worst[k] = max(float(d.max()) if d.size else 0.0 for d in diffs)
            if k.startswith("images."):
                allx = np.concatenate([d.reshape(-1) for d in diffs])
                img[k] = {"mean_abs_diff": float(allx.mean()), "fraction_differing": float(np.mean(allx > 0))}
    tol = {"state": 1e-5, "action": 1e-5, "state_timestamps": 1e-6, "action_timestamps": 1e-6, "anchor_time": 0.0}
    # images: GPU and CPU resize / colour twist compute in float and round to uint8: allow a few LSB
    img_tol = 3.0 if g[0].get("images.front", np.zeros(1)).dtype == np.uint8 else 3.0 / 255 / 0.2
    ok = same_windows and masks_equal and all(worst[k] <= tol.get(k, img_tol) for k in worst) and len(g) == len(c)
    ok = ok and all(v["mean_abs_diff"] <= 0.5 * (1.0 if k not in g[0] or g[0][k].dtype == np.uint8 else 1 / 255 / 0.2) for k, v in img.items())
    RESULTS["checks"].append({"name": name, "ok": bool(ok), "same_windows": same_windows, "masks_equal": masks_equal,
                              "max_abs_diff": worst, "images": img, "batches": len(g), "seconds": time.perf_counter() - t0})
    print(f"check {name}: {'OK' if ok else 'FAIL'} windows equal={same_windows} masks equal={masks_equal} "
          + " ".join(f"{k}={v:.2e}" for k, v in worst.items()), flush=True)


# ----------------------------------------------------------------------------------- baseline
def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG -> RGB uint8 on the CPU, as LeRobot-style loaders do it (Pillow; PyAV where Pillow is absent)."""
    try:
        from PIL import Image  # noqa: PLC0415

        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except ImportError:
        import av  # noqa: PLC0415

        with av.open(io.BytesIO(data), format="jpeg_pipe") as c:
            return next(c.decode(video=0)).to_ndarray(format="rgb24")


def _one_thread(_):
    torch.set_num_threads(1)  # one process per CPU: no intra-op oversubscription


class LeRobotStyleDataset(torch.utils.data.Dataset):
    """What a LeRobot-style PyTorch pipeline does per item, in a worker process: look up the window,
    read the recorded samples, resample them to the target clock with numpy.interp, normalise with
    the dataset's statistics, decode the camera frame (PyAV for video, Pillow for JPEG) and resize it
    (torch, bilinear with antialias). Uses the same windows (the loader's plan) and the same episodes
    in memory as the RoboCache loader, so the two do the same work."""

    def __init__(self, loader: RobotDataLoader, size):
        self.hosts, self.cfg, self.size = loader.hosts, loader.cfg, size
        self.plan = loader.plan(0)
        for h in self.hosts:  # pick video decoders here, before worker processes fork
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
        obs_t, act_t = step_times(t, self.cfg["steps"], self.cfg["period"])
        item = {}
        for g, tt in (("state", obs_t), ("action", act_t)):
            ts, v = getattr(e, g + "_ts"), getattr(e, g)[:, : getattr(h, g + "_dim")]  # the dataset's own channels
            x = np.stack([np.interp(tt, ts, v[:, c]) for c in range(v.shape[1])], 1)
            st = h.stats[g]
            x = (x - st["mean"]) / np.where(st["std"] > 1e-8, st["std"], 1.0)
            pad = np.zeros((len(tt), self.cfg[g + "_dim"]), np.float32)
            pad[:, : x.shape[1]] = x
            item[g] = torch.from_numpy(pad)
            item[g + "_mask"] = torch.from_numpy(valid_mask(ts, tt, e.max_gap[g]))
        if self.size is not None:
            stream, cts = e.cameras["front"]
            j = nearest_frame(cts, t)
            enc = getattr(stream.loader, "encoded", None) if stream.kind == "image" else None
            if enc is not None:
                frame = decode_jpeg(bytes(enc[j]))
            else:
                frame = np.array(stream.read(j, j + 1)[0])
            x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float()
            x = torch.nn.functional.interpolate(x, size=self.size, mode="bilinear", antialias=True, align_corners=False)
            item["images.front"] = x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8)
        item["dataset_index"] = d
        return item


def baseline_rate(loader, size, workers, batches, batch_size):
    # File-descriptor sharing of worker tensors broke in the GPU machine's container (the pin-memory
    # thread could not reach the workers' resource sharer); shared files work everywhere.
    torch.multiprocessing.set_sharing_strategy("file_system")
    ds = LeRobotStyleDataset(loader, size)
    dl = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=True,
                                     persistent_workers=False, prefetch_factor=4, drop_last=True,
                                     worker_init_fn=_one_thread)
    it = iter(dl)
    for _ in range(2):  # warm-up: workers started, first batches
        b = next(it)
    sync()
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        b = next(it)
        b = {k: v.to(DEV, non_blocking=True) for k, v in b.items()}
        n += len(b["state"])
    sync()
    dt = time.perf_counter() - t0
    del it, dl
    return n / dt


def robocache_rate(loader, batches):
    it = iter(loader)
    for _ in range(2):
        next(it)
    sync()
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        b = next(it)
        n += len(b["state"])
    sync()
    dt = time.perf_counter() - t0
    del it
    return n / dt


def throughput(name, data, cameras, size, batches, batch_size, cpus):
    kw = dict(target_frequency=50.0, observation_horizon=0.1, action_horizon=1.0, batch_size=batch_size, seed=0,
              epoch_size=(batches + 4) * batch_size, cameras={"front": size} if cameras else None, num_threads=cpus, num_workers=cpus,
              prefetch_queue_depth=3)
    rows = {}
    base_loader = RobotDataLoader(specs(data, cameras), device="cpu", **kw)
    rows["pytorch DataLoader (LeRobot-style)"] = baseline_rate(base_loader, size if cameras else None, cpus, batches, batch_size)
    for dev in (DEV, "cpu") if GPU else ("cpu",):
        rows[f"RobotDataLoader device={dev}"] = robocache_rate(RobotDataLoader(specs(data, cameras), device=dev, **kw), batches)
    for impl, rate in rows.items():
        RESULTS["throughput"].append({"scenario": name, "impl": impl, "samples_per_s": rate, "batch_size": batch_size,
                                      "batches": batches, "cpus": cpus})
        print(f"{name:<34} {impl:<38} {rate:>10.0f} samples/s", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "gpu_loader.json")
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--cpus", type=int, default=os.cpu_count())
    args = ap.parse_args(argv)
    RESULTS["env"] = {"python": platform.python_version(), "torch": torch.__version__, "robocache": robocache.__version__,
                      "gpu": torch.cuda.get_device_name(0) if GPU else "none (CPU smoke run)", "cpus": args.cpus}
    import nvidia.dali as dali

    RESULTS["env"]["dali"] = dali.__version__
    print(f"GPU {RESULTS['env']['gpu']}, {args.cpus} CPUs, DALI {dali.__version__}, torch {torch.__version__}", flush=True)
    check("lowdim mixture (4 datasets)", args.data, None, [])
    check("lowdim, min_max, episode timestamps", args.data, None, [], normalization="min_max", timestamps="episode")
    check("cameras AV1+JPEG uint8 + color_jitter", args.data, True, ["color_jitter"])
    check("cameras float32 images", args.data, True, [], image_dtype="float32", image_mean=[0.5] * 3, image_std=[0.2] * 3)
    from nvidia.dali import fn

    if hasattr(fn.robocache, "temporal_jitter") and hasattr(fn.robocache, "action_noise"):  # once the augmentation operators are merged
        check("lowdim + temporal_jitter + action_noise", args.data, None,
              [{"name": "temporal_jitter", "speed": (0.8, 1.2)}, {"name": "action_noise", "sigma": [0.05]}])
    throughput("lowdim mixture (4 datasets)", args.data, False, None, args.batches, args.batch_size, args.cpus)
    throughput("AV1 640x480 + JPEG -> 224x224", args.data, True, (224, 224), args.batches, args.batch_size, args.cpus)
    print("\n" + "=" * 100)
    print(f"{'check':<44}{'ok':>6}  max |cuda - cpu|")
    for c in RESULTS["checks"]:
        print(f"{c['name']:<44}{str(c['ok']):>6}  " + ", ".join(f"{k} {v:.1e}" for k, v in c["max_abs_diff"].items()))
    print(f"\n{'scenario':<34} {'loader':<38} {'samples/s':>10}  (batch {args.batch_size}, {args.cpus} CPUs)")
    for r in RESULTS["throughput"]:
        print(f"{r['scenario']:<34} {r['impl']:<38} {r['samples_per_s']:>10.0f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(RESULTS, indent=1))
    print(f"JSON: {args.out}")
    return 0 if all(c["ok"] for c in RESULTS["checks"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
