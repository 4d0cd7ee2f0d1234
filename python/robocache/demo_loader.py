"""The RobotDataLoader demo: writes two small synthetic robot datasets in the LeRobot v2.1 layout
(different robots, rates, state/action widths, one with a camera video), mixes them with weights,
and iterates shuffled, windowed batches resampled to one clock, printing shapes and samples/s.
Runs on the GPU where one is present, on the CPU otherwise.

    python -m robocache.demo_loader [--batches 20] [--batch-size 32] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def write_sample(root: Path, fps: float, state_dim: int, action_dim: int, episodes: int, seconds: float, task: str,
                 camera: tuple | None, seed: int) -> Path:
    """A synthetic LeRobot v2.1 dataset: smooth joint motion, actions leading the state, optional video.

    Args:
        root: output folder.
        fps: recording rate.
        state_dim: state width.
        action_dim: action width.
        episodes: number of episodes.
        seconds: mean episode length.
        task: task text.
        camera: ``(height, width)`` of a ``observation.images.front`` video, or ``None``.
        seed: random seed.

    Returns:
        Path: the dataset folder.
    """
    from robocache.datasets.lerobot import LeRobotWriter
    from robocache.datasets.video import VideoWriter

    rng = np.random.default_rng(seed)
    w = LeRobotWriter(root, fps=fps, robot_type=f"demo_{state_dim}dof")
    for e in range(episodes):
        n = int(fps * seconds * rng.uniform(0.8, 1.2))
        t = np.arange(n) / fps
        freq = rng.uniform(0.1, 0.5, state_dim)
        state = np.sin(2 * np.pi * freq * t[:, None] + rng.uniform(0, 6, state_dim)).astype(np.float32)
        action = np.roll(state, -3, axis=0)[:, :action_dim]
        videos = None
        if camera is not None:
            h, wd = camera
            with VideoWriter(w.video_path(e, "observation.images.front"), fps=fps, width=wd, height=h, codec="h264") as vw:
                yy, xx = np.mgrid[0:h, 0:wd]
                vw.write(np.stack([((xx + 4 * k) % 256), ((yy + 2 * k) % 256), np.full_like(xx, (40 * e) % 256)], -1).astype(np.uint8)
                         for k in range(n))
            videos = {"observation.images.front": {"height": h, "width": wd, "codec": "h264"}}
        w.add_episode(e, t, {"observation.state": state, "action": action}, [task], videos=videos)
    w.close()
    return root


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)

    import robocache
    from robocache import DatasetSpec, RobotDataLoader

    with tempfile.TemporaryDirectory(prefix="robocache-demo-") as tmp:
        arm = write_sample(Path(tmp) / "arm_30hz", 30.0, 7, 7, 6, 8.0, "stack the blocks", (96, 128), 0)
        humanoid = write_sample(Path(tmp) / "humanoid_100hz", 100.0, 26, 20, 4, 6.0, "wave", None, 1)
        loader = RobotDataLoader(
            [DatasetSpec(arm), DatasetSpec(humanoid)],
            weights=[0.7, 0.3], target_frequency=50.0, observation_horizon=0.1, action_horizon=0.5,
            batch_size=args.batch_size,
            device=args.device, seed=0, num_workers=args.workers)
        cam_loader = RobotDataLoader(
            [DatasetSpec(arm)], target_frequency=50.0, observation_horizon=0.1, action_horizon=0.5,
            cameras={"front": (64, 64)}, augmentations=["color_jitter"], batch_size=args.batch_size,
            device=args.device, seed=0, num_workers=args.workers)
        print(f"RoboCache {robocache.__version__} RobotDataLoader demo on {loader.device.upper()}: "
              f"{', '.join(loader.dataset_names)} (30 Hz arm with a camera, 100 Hz humanoid) -> 50 Hz, "
              f"weights {np.round(loader.weights, 2).tolist()}, {loader.epoch_size} windows per epoch")
        for name, ld in (("mixture (state/action)", loader), ("arm with camera + color_jitter", cam_loader)):
            it = iter(ld)
            first = next(it)
            print(f"\n{name}: batch of {args.batch_size}")
            for k, v in first.items():
                print(f"  {k:<20} {str(tuple(v.shape)):<18} {str(v.dtype):<14} {v.device}")
            d = first["dataset_index"][0].item()
            print(f"  sample 0: dataset {ld.dataset_names[d]}, episode {first['episode_index'][0].item()}, "
                  f"t={first['anchor_time'][0].item():.3f} s, task {ld.tasks[first['task'][0].item()]!r}, "
                  f"state[0, -1, :3]={[round(float(x), 3) for x in first['state'][0, -1, :3]]}, "
                  f"valid action steps {int(first['action_mask'][0].sum())}/{first['action_mask'].shape[1]}")
            t0 = time.perf_counter()
            n = 0
            for k, b in enumerate(it):
                n += len(b["index"])
                if k + 2 >= args.batches:
                    break
            dt = time.perf_counter() - t0
            print(f"  throughput: {n / max(dt, 1e-9):.0f} samples/s ({n} samples after the first batch)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
