"""Check the adapters' GPU video path against the CPU path on an H.264 re-encode of the sample.

The LeRobot sample video is AV1, which DALI 2.4 cannot decode on the GPU, so this script first
re-encodes it to H.264 with PyAV, then decodes every frame (and a scattered window) three ways:

* DALI's GPU decoder (``fn.decoders.video``, ``device="mixed"``) through
  ``robocache.datasets.video.VideoSource`` with ``backend="auto"`` (which must pick ``dali-gpu``);
* PyAV on the CPU through the same class with ``backend="pyav"``;
* a plain sequential PyAV decode, the reference.

It prints the frame differences (DALI and FFmpeg convert YUV to RGB with slightly different
chroma upsampling, so a few units of difference are codec rounding, not an error) and one JSON
line. Exit status 1 when the GPU path is not chosen or differs by more than ``--max-mean-diff``.

Usage::

    python benchmarks/gpu_video_check.py [--video PATH] [--frames N] [--max-mean-diff 3.0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))

from robocache.datasets.video import VideoSource, VideoWriter, gpu_count  # noqa: E402

SHARED = Path(os.environ.get("ROBOCACHE_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
DEFAULT_VIDEO = (
    SHARED
    / "datasets"
    / "lerobot_v21_unitree_g1"
    / "videos"
    / "chunk-000"
    / "observation.images.cam_high"
    / "episode_000001.mp4"
)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 arrays, dB."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def main() -> int:
    """Run the check; print a report and a JSON line.

    Returns:
        int: 0 when the GPU path was used and matches, 1 otherwise.
    """
    import av

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default=str(DEFAULT_VIDEO))
    ap.add_argument("--frames", type=int, default=0, help="frames to re-encode (0: all)")
    ap.add_argument("--max-mean-diff", type=float, default=3.0)
    args = ap.parse_args()

    with av.open(args.video) as c:
        src = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        fps = float(c.streams.video[0].average_rate)
    if args.frames:
        src = src[: args.frames]
    h, w = src[0].shape[:2]
    tmp = Path(tempfile.mkdtemp(prefix="robocache_gpu_video_"))
    h264 = tmp / "reencode_h264.mp4"
    t0 = time.perf_counter()
    with VideoWriter(h264, "h264", fps, w, h, gop=2) as vw:
        vw.write(src)
    enc_s = time.perf_counter() - t0

    with av.open(str(h264)) as c:
        ref = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    n = len(ref)
    times = np.arange(n) / fps
    gpu = VideoSource(h264, times, fps, "gpu check", backend="auto")
    cpu = VideoSource(h264, times, fps, "gpu check", backend="pyav")
    window = np.array(sorted({0, 1, 2, n // 3, n // 3 + 1, n // 2, n - 2, n - 1}))

    t0 = time.perf_counter()
    g_all = gpu.decode()
    gpu_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    c_all = cpu.decode()
    cpu_s = time.perf_counter() - t0
    g_win = gpu.decode(window)
    c_win = cpu.decode(window)

    diff = np.abs(g_all.astype(np.int16) - c_all.astype(np.int16))
    res = {
        "check": "gpu_video",
        "codec": "h264",
        "frames": n,
        "width": w,
        "height": h,
        "gpus": gpu_count(),
        "backend": gpu.backend.name,
        "reason": gpu.backend.reason,
        "cpu_matches_reference": bool(np.array_equal(c_all, ref)),
        "max_abs_diff": int(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "psnr_db": None if np.array_equal(g_all, c_all) else psnr(g_all, c_all),  # None: equal
        "window_max_abs_diff": int(np.abs(g_win.astype(np.int16) - c_win.astype(np.int16)).max()),
        "window_matches_full": bool(np.array_equal(g_win, g_all[window])),
        "dali_gpu_s": gpu_s,
        "pyav_s": cpu_s,
        "encode_s": enc_s,
    }
    print(f"backend: {res['backend']} ({res['reason']})")
    print(
        f"{n} frames {w}x{h}: max |GPU - CPU| = {res['max_abs_diff']}, mean "
        f"{res['mean_abs_diff']:.3f}, PSNR {res['psnr_db'] or float('inf'):.1f} dB; "
        f"window max diff {res['window_max_abs_diff']}; GPU {gpu_s:.3f} s, PyAV {cpu_s:.3f} s"
    )
    print(json.dumps(res))
    ok = (
        res["backend"] == "dali-gpu"
        and res["mean_abs_diff"] <= args.max_mean_diff
        and res["window_matches_full"]
        and res["cpu_matches_reference"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
