"""Composition example: DALI's own JPEG decoder and image augmentations next to RoboCache's temporal
jitter and action noise, in one DALI pipeline feeding PyTorch.

Each sample is one robot episode window: ``F`` camera frames (JPEG, decoded by ``fn.decoders.image``)
and the matching actions, both on the episode's step clock. The frames are stacked into a sequence,
cropped (``fn.random_resized_crop``, the same crop for every frame of a sample) and colour-jittered
(``fn.color_twist``); then both streams go through ``fn.robocache.temporal_jitter`` with the **same
seed and ranges**, so they are replayed through the same random speed and time warp (the draws depend
only on seed, iteration and sample index): frames are picked by nearest warped time
(``method="nearest"``), actions are interpolated at the same warped times, so frames and actions stay
aligned. Finally ``fn.robocache.action_noise`` adds temporally correlated noise to the actions.

Data: the real BridgeData episodes (RLDS TFRecords, 64x64 JPEG views) under
``--data/datasets/rlds_bridge``; without them, synthetic frames encoded to JPEG with Pillow.

    python examples/augment_pipeline.py --data ../shared/data            # CPU backend
    python examples/augment_pipeline.py --data ../shared/data --device gpu

With PyTorch installed the batches come through ``nvidia.dali.plugin.pytorch.DALIGenericIterator``;
without it the script prints the pipeline's own outputs.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import robocache  # noqa: E402,F401  (loads the plugin)
from nvidia.dali import fn, pipeline_def, types  # noqa: E402

OUTPUTS = ["frames", "actions", "noisy_actions", "frame_times", "action_times", "frames_in", "frame_ts"]
# Both streams get the same seed, ranges and output grid (rate and length): the same warp.
JITTER = dict(speed=[0.7, 1.3], offset=[0.0, 0.1], warp_strength=0.5, warp_knots=2, target_rate=5.0)


def load_bridge(root: Path, frames: int):
    """Episodes of the real Bridge RLDS TFRecords: ``(jpegs [F] of bytes, actions [F, 7], ts [F])``."""
    from robocache.datasets.rlds import RLDSDataset, parse_example

    ds = RLDSDataset(root / "datasets" / "rlds_bridge")
    out = []
    for i in ds.episode_indices:
        ex = parse_example(ds._record(i)[2])
        ep = ds.episode(i)
        jpegs = list(ex["steps/observation/image_0"])
        if len(jpegs) < frames:
            continue
        acts = np.asarray(ep["action"].values[:frames], np.float32)
        ts = np.asarray(ep["action"].timestamps[:frames], np.float64)
        out.append(([np.frombuffer(j, np.uint8) for j in jpegs[:frames]], acts, ts))
    return out


def synthetic_episodes(n: int, frames: int, rng=None):
    """Synthetic episodes: moving-square frames encoded to JPEG with Pillow, smooth 7-D actions."""
    from PIL import Image

    rng = rng or np.random.default_rng(0)
    out = []
    for _ in range(n):
        jpegs = []
        for k in range(frames):
            img = np.zeros((64, 64, 3), np.uint8)
            img[8 + 4 * k : 20 + 4 * k, 10:30] = 255
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG")
            jpegs.append(np.frombuffer(buf.getvalue(), np.uint8))
        t = np.arange(frames) / 5.0
        acts = np.sin(np.outer(t, rng.uniform(0.5, 2, 7)) + rng.uniform(0, 6, 7)).astype(np.float32)
        out.append((jpegs, acts, t))
    return out


def load_episodes(data: Path | None, frames: int):
    if data is not None and (data / "datasets" / "rlds_bridge").is_dir():
        eps = load_bridge(data, frames)
        if eps:
            return eps, "BridgeData (RLDS TFRecords)"
    return synthetic_episodes(8, frames), "synthetic (Pillow JPEGs)"


class Batches:
    """An epoch of batches for ``fn.external_source`` (``StopIteration`` at the end of the epoch)."""

    def __init__(self, episodes, batch_size: int, num_batches: int):
        self.eps, self.bs, self.n = episodes, batch_size, num_batches
        self.i = 0

    def __iter__(self):
        self.i = 0
        return self

    def __next__(self):
        if self.i >= self.n:
            raise StopIteration
        sel = [self.eps[(self.i * self.bs + k) % len(self.eps)] for k in range(self.bs)]
        self.i += 1
        frames = len(sel[0][0])
        return tuple([[e[0][k] for e in sel] for k in range(frames)] + [[e[1] for e in sel], [e[2] for e in sel]])


def build_pipeline(episodes, batch_size=4, num_batches=2, device="cpu", out_steps=6, crop=48, seed=2024):
    """The composed pipeline; outputs are named in ``OUTPUTS``."""
    frames = len(episodes[0][0])
    gpu = device == "gpu"

    @pipeline_def(batch_size=batch_size, num_threads=2, device_id=0 if gpu else None, seed=seed, prefetch_queue_depth=1)
    def pipe():
        src = fn.external_source(source=Batches(episodes, batch_size, num_batches), num_outputs=frames + 2, batch=True, cycle="raise")
        jpegs, actions, ts = src[:frames], src[frames], src[frames + 1]
        decoded = [fn.decoders.image(j, device="mixed" if gpu else "cpu") for j in jpegs]
        seq = fn.stack(*decoded, axis_name="F")  # [F, H, W, 3]
        seq = fn.random_resized_crop(seq, size=[crop, crop], random_area=[0.6, 1.0])
        seq = fn.color_twist(seq, brightness=fn.random.uniform(range=[0.8, 1.2]), contrast=fn.random.uniform(range=[0.8, 1.2]),
                             saturation=fn.random.uniform(range=[0.7, 1.3]), hue=fn.random.uniform(range=[-10, 10]), dtype=types.FLOAT16)
        flat = fn.reshape(seq, shape=[frames, crop * crop * 3])
        # The same seed and ranges: both streams go through the same warp.
        f_j, f_t = fn.robocache.temporal_jitter(flat, ts, num_samples=out_steps, method="nearest", seed=seed + 1, **JITTER)
        a_j, a_t = fn.robocache.temporal_jitter(actions.gpu() if gpu else actions, ts, num_samples=out_steps, seed=seed + 1, **JITTER)
        noisy = fn.robocache.action_noise(a_j, sigma=[0.02] * 6 + [0.0], correlation_time=0.4, rate=5.0, low=[-1.0] * 6 + [0.0], high=[1.0] * 6 + [1.0], seed=seed + 2)
        out_frames = fn.reshape(f_j, shape=[out_steps, crop, crop, 3], layout="FHWC")
        # Every output on one device: CPU outputs of a GPU pipeline are pinned host memory, which
        # PyTorch's DLPack import refuses ("Unsupported device_type: 3").
        return out_frames, a_j, noisy, f_t, a_t, seq, ts.gpu() if gpu else ts

    return pipe()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="folder laid out like shared/data")
    ap.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--batches", type=int, default=3)
    args = ap.parse_args(argv)
    episodes, what = load_episodes(args.data, frames=8)
    p = build_pipeline(episodes, args.batch_size, args.batches, args.device)
    p.build()
    print(f"{len(episodes)} episodes of {what}; device {args.device}")
    try:
        from nvidia.dali.plugin.pytorch import DALIGenericIterator
    except ImportError:
        DALIGenericIterator = None
    if DALIGenericIterator is not None:
        it = DALIGenericIterator(p, OUTPUTS, auto_reset=True)
        for k, batch in enumerate(it):
            b = batch[0]
            print(f"batch {k}: frames {tuple(b['frames'].shape)} {b['frames'].dtype} on {b['frames'].device}; "
                  f"actions {tuple(b['noisy_actions'].shape)}; warped times equal: {bool((b['frame_times'] == b['action_times']).all())}")
    else:
        print("(PyTorch not installed: printing the pipeline outputs)")
        for k in range(args.batches):
            o = dict(zip(OUTPUTS, p.run()))
            f = o["frames"].as_cpu() if args.device == "gpu" else o["frames"]
            ft = [np.array(o["frame_times"][i]) for i in range(args.batch_size)]
            at = [np.array(o["action_times"][i]) for i in range(args.batch_size)]
            print(f"batch {k}: frames {np.array(f[0]).shape} {np.array(f[0]).dtype}; sample 0 warped times {np.round(ft[0], 3)}; "
                  f"frames and actions on the same warp: {all(np.array_equal(x, y) for x, y in zip(ft, at))}")


if __name__ == "__main__":
    main()
