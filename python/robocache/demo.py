"""The RoboCache demo: resamples a built-in multi-rate robot recording onto one 50 Hz clock inside a
DALI pipeline, checks the result against the analytic signal it was generated from, and reports
throughput. Runs the GPU backend where a GPU is present, the CPU backend otherwise.

    python -m robocache.demo [--batch 64] [--iters 20] [--device auto|cpu|gpu]
    python -m robocache.demo --loader [...]    # only the RobotDataLoader demo (robocache.demo_loader)

After the resampling demo it runs the RobotDataLoader demo too (``--no-loader`` skips it; it needs
PyTorch, ``requirements-loader.txt``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import robocache
from nvidia.dali import fn, pipeline_def


def gpu_available() -> bool:
    """True when DALI sees a CUDA device."""
    try:
        from nvidia.dali.backend import GetCUDADeviceCount

        return GetCUDADeviceCount() > 0
    except Exception:  # noqa: BLE001 - no driver at all
        return False


def signal(t: np.ndarray, channels: int, phase: float) -> np.ndarray:
    """The smooth ground-truth motion the recording samples: one sinusoid per channel."""
    f = 0.2 + 0.15 * np.arange(channels)
    return np.sin(2 * np.pi * f[None, :] * t[:, None] + phase + np.arange(channels)[None, :]).astype(np.float32)


STREAMS = [
    # name, nominal rate (Hz), jitter, channels, method, timestamp kind
    ("joints (7-DoF arm)", 100.0, 0.10, 7, "linear", "s"),
    ("gripper command", 10.0, 0.02, 1, "previous", "s"),
    ("imu (gyro+accel)", 400.0, 0.05, 6, "linear", "ns"),
    ("wrist camera frame times", 15.0, 0.15, 1, "nearest", "s"),
]


def recording(rng: np.random.Generator, batch: int, seconds: float):
    """A built-in batch of episodes: each stream at its own jittered rate and its own length."""
    out = {}
    for name, rate, jitter, ch, _, kind in STREAMS:
        data, ts = [], []
        for _ in range(batch):
            dur = seconds * rng.uniform(0.6, 1.0)
            n = max(2, int(dur * rate))
            t = np.cumsum(np.full(n, 1.0 / rate) * (1 + jitter * rng.uniform(-1, 1, n))) + rng.uniform(0, 0.01)
            data.append(signal(t, ch, 0.0))
            ts.append(np.round(t * 1e9).astype(np.int64) if kind == "ns" else t)
        out[name] = (data, ts)
    return out


def main(argv=None) -> int:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--loader" in argv:
        from robocache import demo_loader

        argv.remove("--loader")
        return demo_loader.main([a if a != "gpu" else "cuda" for a in argv])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-loader", action="store_true", help="skip the RobotDataLoader demo")
    args = ap.parse_args(argv)
    device = ("gpu" if gpu_available() else "cpu") if args.device == "auto" else args.device
    rng = np.random.default_rng(0)
    rec = recording(rng, args.batch, args.seconds)
    names = [s[0] for s in STREAMS]
    feeds = []
    for n in names:
        feeds += list(rec[n])

    @pipeline_def(batch_size=args.batch, num_threads=args.threads, device_id=0 if device == "gpu" else None)
    def pipe():
        ins = fn.external_source(source=lambda: feeds, num_outputs=len(feeds), batch=True)
        outs = []
        for i, (_, _, _, _, method, _) in enumerate(STREAMS):
            d, t = ins[2 * i], ins[2 * i + 1]
            outs += list(fn.robocache.resample(d.gpu() if device == "gpu" else d, t, target_rate=args.rate, method=method))
        return tuple(outs)

    p = pipe()
    p.build()
    res = p.run()
    print(f"RoboCache {robocache.__version__} demo: {args.batch} episodes x {len(STREAMS)} streams -> {args.rate:g} Hz, DALI {device.upper()} backend"
          + ("" if device == "gpu" else " (no GPU found)"))
    print(f"{'stream':<26}{'in rate':>9}{'in rows':>9}{'out rows':>9}{'method':>10}{'max |err|':>11}")
    total_in = total_out = 0
    for i, (name, rate, _, ch, method, kind) in enumerate(STREAMS):
        out, out_ts = res[2 * i], res[2 * i + 1]
        if device == "gpu":
            out, out_ts = out.as_cpu(), out_ts.as_cpu()
        data, ts = rec[name]
        err = 0.0
        rows_in = sum(len(t) for t in ts)
        rows_out = 0
        for b in range(args.batch):
            o, ot = np.array(out[b]), np.array(out_ts[b])
            rows_out += len(ot)
            t_s = ot * 1e-9 if kind == "ns" else ot
            if method == "linear":
                err = max(err, float(np.abs(o - signal(t_s, ch, 0.0)).max()))
            else:  # hold/nearest reproduce a recorded sample exactly
                src = data[b]
                err = max(err, float(np.min(np.abs(o[:, None, :] - src[None, :, :]).max(axis=2), axis=1).max()))
        measured = (len(ts[0]) - 1) / ((ts[0][-1] - ts[0][0]) * (1e-9 if kind == "ns" else 1))
        print(f"{name:<26}{measured:>8.1f}Hz{rows_in:>9}{rows_out:>9}{method:>10}{err:>11.2e}")
        total_in += rows_in * ch * 4 + rows_in * 8
        total_out += rows_out * ch * 4 + rows_out * 8
    t0 = time.perf_counter()
    for _ in range(args.iters):
        p.run()
    dt = (time.perf_counter() - t0) / args.iters
    print(f"throughput: {1 / dt:.1f} batches/s, {args.batch / dt:.0f} episodes/s, "
          f"{(total_in + total_out) / dt / 1e6:.1f} MB/s through fn.robocache.resample ({device}, {args.threads} threads)")
    print("linear streams are checked against the analytic motion (error = interpolation error of the recording);"
          " previous/nearest outputs must be recorded samples (error 0).")
    if args.no_loader:
        return 0
    try:
        import torch  # noqa: F401
    except ImportError:
        print("\nRobotDataLoader demo skipped: PyTorch is not installed (pip install -r requirements-loader.txt)")
        return 0
    from robocache import demo_loader

    print()
    return demo_loader.main(["--device", "cuda" if device == "gpu" else "cpu", "--batches", "10"])


if __name__ == "__main__":
    raise SystemExit(main())
