"""The ``robocache`` command line: ``inspect`` a dataset, ``convert`` it to LeRobot at another rate.

``robocache inspect PATH`` prints the format, the episodes, every stream with its measured rate
(median) and jitter, gaps longer than a threshold, and each camera's codec, whether DALI can decode
it on the GPU and which decoder this machine would use. ``--json`` prints the same as JSON.

``robocache convert SRC DST --rate 50 [--codec h264]`` rewrites a dataset in the LeRobot v2.1
layout at a new rate: every low-dimensional stream is resampled by the DALI operator
``fn.robocache.resample`` in a CPU pipeline (linear for floating-point streams, nearest for
integer and boolean ones), and every camera is re-timed (nearest source frame per output
timestamp) and re-encoded with PyAV. The output reads back through the LeRobot adapter.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .datasets import (
    DatasetError,
    Episode,
    find_gaps,
    measure_rate,
    open_dataset,
)

RESERVED = ("timestamp", "frame_index", "episode_index", "index", "task_index")


# --------------------------------------------------------------------------------------- inspect
def _dt(ts: np.ndarray) -> np.ndarray:
    ts = np.asarray(ts)
    ts = ts.astype(np.float64) * 1e-9 if ts.dtype == np.int64 else ts.astype(np.float64)
    return np.diff(ts)


def _video_report(ep: Episode, key: str) -> dict:
    from .datasets.video import GPU_CODECS, gpu_count  # noqa: PLC0415

    src = ep.streams[key].video
    out: dict = {"episode": ep.index, "path": str(src.path)}
    try:
        info = src.info
        out.update(
            codec=info.codec,
            width=info.width,
            height=info.height,
            fps=info.fps,
            frames=info.num_frames,
            gpu_decodable=info.codec in GPU_CODECS,
            decoder=src.backend.name,
            decoder_reason=src.backend.reason,
            gpus=gpu_count(),
        )
        src.check()
        out["status"] = "ok"
    except (DatasetError, ValueError) as e:
        out["status"] = str(e)
    return out


def inspect_dataset(
    path: str | Path,
    gap_factor: float = 2.0,
    gap_s: float | None = None,
    max_episodes: int | None = None,
    **open_kw: Any,
) -> dict:
    """Measure a dataset: episodes, stream rates and jitter, gaps, video codecs.

    Args:
        path: dataset folder or file.
        gap_factor: report intervals longer than this many median intervals.
        gap_s: report intervals longer than this many seconds (overrides ``gap_factor``).
        max_episodes: inspect only the first N episodes.
        **open_kw: options for :func:`robocache.datasets.open_dataset`.

    Returns:
        dict: ``{"dataset", "streams", "videos", "episodes", "problems"}``, JSON-serialisable.

    Raises:
        DatasetNotFoundError, UnknownFormatError, CorruptDatasetError: when the dataset cannot be
        opened at all (problems with single episodes are reported, not raised).
    """
    ds = open_dataset(path, **open_kw)
    report: dict = {
        "dataset": ds.describe(),
        "streams": {},
        "videos": {},
        "episodes": [],
        "problems": [],
    }
    if getattr(ds, "missing_episodes", None):
        report["problems"].append(
            f"{len(ds.missing_episodes)} episodes listed in the metadata " f"have no data file"
        )
    dts: dict = {}
    indices = ds.episode_indices[:max_episodes] if max_episodes else ds.episode_indices
    for i in indices:
        try:
            ep = ds.episode(i)
        except (DatasetError, ValueError) as e:
            report["problems"].append(str(e))
            continue
        erep = {"index": i, "task": ep.metadata.task, "streams": {}}
        for name, s in ep.streams.items():
            st = report["streams"].setdefault(
                name,
                {
                    "kind": s.kind,
                    "shape": list(s.shape),
                    "dtype": str(s.dtype),
                    "time_unit": s.time_unit,
                    "timestamps_derived": s.timestamps_derived,
                    "declared_rate": s.rate,
                    "episodes": 0,
                    "samples": 0,
                    "gaps": [],
                },
            )
            st["episodes"] += 1
            st["samples"] += len(s)
            d = _dt(s.timestamps)
            dts.setdefault(name, []).append(d)
            r = measure_rate(s.timestamps)
            erep["streams"][name] = {
                "samples": len(s),
                "rate_hz": r.median_hz if r else None,
                "duration_s": float(np.sum(d)) if len(d) else 0.0,
            }
            if r is not None:
                thr = gap_s if gap_s is not None else gap_factor / r.median_hz
                for k, t, dur in find_gaps(s.timestamps, thr):
                    st["gaps"].append({"episode": i, "sample": k, "t_s": t, "duration_s": dur})
            if s.kind == "video":
                v = _video_report(ep, name)
                report["videos"].setdefault(name, []).append(v)
                if v["status"] != "ok":
                    report["problems"].append(v["status"])
        report["episodes"].append(erep)
    for name, parts in dts.items():
        d = np.concatenate(parts) if parts else np.zeros(0)
        st = report["streams"][name]
        if len(d):
            med = float(np.median(d))
            st.update(
                rate_hz=1.0 / med if med > 0 else None,
                median_dt_s=med,
                jitter_s=float(np.std(d)),
                jitter_pct=100.0 * float(np.std(d)) / med if med > 0 else None,
                max_dt_s=float(d.max()),
            )
        else:
            st.update(rate_hz=None, median_dt_s=None, jitter_s=None, jitter_pct=None, max_dt_s=None)
    return report


def format_report(rep: dict) -> str:
    """Human-readable text of :func:`inspect_dataset`'s report.

    Args:
        rep: the report.

    Returns:
        str: several lines.
    """
    d = rep["dataset"]
    lines = [
        f"format: {d['format']}",
        f"path: {d['path']}",
        f"robot: {d.get('robot') or 'unknown'}",
        f"declared rate: {_hz(d.get('declared_rate'))}",
    ]
    declared = d.get("declared_episodes")
    if declared and declared != d["episodes"]:
        lines.append(f"episodes: {d['episodes']} present of {declared} declared")
    else:
        lines.append(f"episodes: {d['episodes']}")
    if d.get("timestamps"):
        lines.append(f"timestamps: {d['timestamps']}")
    tasks = list(dict.fromkeys(e["task"] for e in rep["episodes"] if e["task"]))
    if tasks:
        lines.append(f"tasks: {len(tasks)} (e.g. {tasks[0]!r})")
    lines.append(f"streams (over {len(rep['episodes'])} episodes):")
    w = max([len(n) for n in rep["streams"]] + [6])
    lines.append(
        f"  {'name':<{w}}  {'kind':<6} {'shape':<14} {'dtype':<8} {'samples':>8}  "
        f"{'rate (median)':>14}  {'jitter':>18}  gaps"
    )
    for name, s in rep["streams"].items():
        jit = "-" if s["jitter_s"] is None else f"{_secs(s['jitter_s'])} ({s['jitter_pct']:.2f}%)"
        rate = _hz(s["rate_hz"]) + ("*" if s["timestamps_derived"] else "")
        lines.append(
            f"  {name:<{w}}  {s['kind']:<6} {str(tuple(s['shape'])):<14} "
            f"{s['dtype']:<8} {s['samples']:>8}  {rate:>14}  {jit:>18}  "
            f"{len(s['gaps'])}"
        )
    if any(s["timestamps_derived"] for s in rep["streams"].values()):
        lines.append("  * timestamps derived from the declared rate (the format stores none)")
    for name, s in rep["streams"].items():
        for g in s["gaps"][:3]:
            lines.append(
                f"  gap: {name} episode {g['episode']} at t={g['t_s']:.3f} s: "
                f"{g['duration_s'] * 1e3:.1f} ms"
            )
        if len(s["gaps"]) > 3:
            lines.append(f"  gap: {name}: {len(s['gaps']) - 3} more")
    if rep["videos"]:
        lines.append("videos:")
    for key, vids in rep["videos"].items():
        ok = [v for v in vids if v["status"] == "ok"]
        head = ok[0] if ok else next((v for v in vids if "codec" in v), None)
        if head:
            gpu = "yes" if head["gpu_decodable"] else "no"
            lines.append(
                f"  {key}: {head['codec']} {head['width']}x{head['height']} "
                f"{head['fps']:g} fps; GPU decode: {gpu}; decoder here: "
                f"{head['decoder']} ({head['decoder_reason']}); "
                f"{len(ok)} of {len(vids)} files ok"
            )
        else:
            lines.append(f"  {key}: no readable file ({len(vids)} missing or broken)")
    if rep["problems"]:
        lines.append("problems:")
        lines += [f"  {p}" for p in rep["problems"][:20]]
        if len(rep["problems"]) > 20:
            lines.append(f"  ... {len(rep['problems']) - 20} more")
    return "\n".join(lines)


def _secs(x: float) -> str:
    return f"{x * 1e6:.2f} us" if x < 1e-3 else f"{x * 1e3:.3f} ms"


def _hz(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f} Hz"


# --------------------------------------------------------------------------------------- resample
_PIPES: dict = {}


def resample(
    items: Sequence[tuple], rate: float, method: str = "linear", batch_size: int = 8
) -> list:
    """Resample series onto ``t0 + k / rate`` with ``fn.robocache.resample`` in a CPU pipeline.

    Args:
        items: ``[(data [T, C] float32, timestamps [T] float64 s or int64 ns), ...]``.
        rate: target rate in Hz.
        method: ``"linear"``, ``"nearest"`` or ``"previous"``.
        batch_size: DALI batch size.

    Returns:
        list: ``[(data [N, C] float32, timestamps [N]), ...]`` in the order of ``items``.

    Raises:
        ImportError: when the robocache DALI plugin is not available.
        ValueError: for fewer than two samples or timestamps that do not increase.
    """
    from nvidia.dali import fn  # noqa: PLC0415

    import robocache  # noqa: F401, PLC0415 - loads the plugin

    if not hasattr(fn, "robocache") or not hasattr(fn.robocache, "resample"):
        raise ImportError(
            "robocache convert needs fn.robocache.resample: the robocache DALI "
            "plugin did not load"
        )
    out: list = []
    for k in range(0, len(items), batch_size):
        chunk = items[k : k + batch_size]
        tdt = chunk[0][1].dtype
        for data, ts in chunk:
            if ts.dtype != tdt:
                raise ValueError("timestamps of one batch must share a dtype")
            if np.ndim(data) != 2 or len(data) != len(ts):
                raise ValueError(f"resample needs data [T, C] with T = {len(ts)} timestamps, "
                                 f"got shape {np.shape(data)}")  # fmt: skip
            if len(ts) < 2 or not np.all(np.diff(ts) > 0):
                raise ValueError(
                    f"resample needs at least two strictly increasing timestamps "
                    f"(got {len(ts)})"
                )
        key = (float(rate), method, str(tdt), batch_size)
        if key not in _PIPES:
            _PIPES[key] = _resample_pipe(float(rate), method, tdt == np.int64, batch_size)
        p = _PIPES[key]
        p.feed_input("data", [np.ascontiguousarray(d, np.float32) for d, _ in chunk])
        p.feed_input("ts", [np.ascontiguousarray(t) for _, t in chunk])
        v, g = p.run()
        out += [(np.array(v[j]), np.array(g[j])) for j in range(len(chunk))]
    return out


def _resample_pipe(rate: float, method: str, ns: bool, batch_size: int):
    """A built CPU pipeline: external data and timestamps into ``fn.robocache.resample``."""
    from nvidia.dali import fn, pipeline_def, types  # noqa: PLC0415

    @pipeline_def(batch_size=batch_size, num_threads=2, device_id=None, prefetch_queue_depth=1)
    def pipe():
        d = fn.external_source(name="data", dtype=types.FLOAT, ndim=2)
        t = fn.external_source(name="ts", dtype=types.INT64 if ns else types.FLOAT64, ndim=1)
        v, g = fn.robocache.resample(d, t, target_rate=rate, method=method)
        return v, g

    p = pipe()
    p.build()
    return p


# --------------------------------------------------------------------------------------- convert
def _progress(it: Iterable, enabled: bool, **kw: Any) -> Iterable:
    if not enabled:
        return it
    try:
        from tqdm import tqdm  # noqa: PLC0415
    except ImportError:
        return it
    return tqdm(it, **kw)


def _is_camera(s: Any) -> bool:
    return s.kind == "video" or (
        s.kind == "image" and s.dtype == np.uint8 and len(s.shape) == 3 and s.shape[-1] == 3
    )


def _parse_episodes(text: str | None) -> list | None:
    if not text:
        return None
    out: list = []
    for part in text.split(","):
        a, _, b = part.strip().partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def _frame_stats(frames: list) -> dict:
    """LeRobot-style per-channel image statistics (0..1) of (spatially subsampled) frames."""
    f = np.stack(frames).astype(np.float32) / 255.0
    out = {
        s: getattr(np, s)(f, axis=(0, 1, 2)).astype(np.float64).reshape(3, 1, 1)
        for s in ("min", "max", "mean", "std")
    }
    out["count"] = np.array([len(frames)])
    return out


def _resample_lowdim(lowdim: list, ts: np.ndarray, rate: float) -> tuple:
    """Resample an episode's numeric streams: one operator call per method.

    Floating-point streams are interpolated linearly; integer and boolean ones take the nearest
    sample. Columns of a method are concatenated into one ``[T, C]`` float32 batch.

    Returns:
        tuple: ``({column: [N, *shape] array}, grid timestamps or None)``.
    """
    columns: dict = {}
    grid = None
    n = len(ts)
    for method, streams in (
        ("linear", [s for s in lowdim if s.dtype.kind == "f"]),
        ("nearest", [s for s in lowdim if s.dtype.kind in "iub"]),
    ):
        if not streams:
            continue
        data = np.concatenate([s.values.reshape(n, -1).astype(np.float32) for s in streams], 1)
        ((vals, grid),) = resample([(data, ts)], rate, method)
        c = 0
        for s in streams:
            w = int(np.prod(s.shape)) if s.shape else 1
            v = vals[:, c : c + w].reshape((len(grid),) + (s.shape or (1,)))
            c += w
            if s.dtype.kind == "f":
                v = v.astype(np.float32)
            elif s.dtype.kind == "b":
                v = v > 0.5
            else:
                v = np.rint(v).astype(s.dtype)
            columns[f"src.{s.name}" if s.name in RESERVED else s.name] = v
    return columns, grid


def _select_frames(t_src: np.ndarray, t_out: np.ndarray, method: str) -> np.ndarray:
    """Source frame index for each output time: nearest (earlier on a tie) or previous."""
    n = len(t_src)
    if method == "nearest":
        j = np.clip(np.searchsorted(t_src, t_out), 1, n - 1)
        return np.where(np.abs(t_out - t_src[j - 1]) <= np.abs(t_src[j] - t_out), j - 1, j)
    return np.clip(np.searchsorted(t_src, t_out + 1e-9, side="right") - 1, 0, n - 1)


def _write_camera(cam: Any, sel: np.ndarray, path: Path, codec: str, rate: float, chunk: int,
                  progress: bool) -> dict:  # fmt: skip
    """Decode the selected frames chunk by chunk and encode them at ``rate``.

    Returns:
        dict: ``{"height", "width", "codec", "stats"}`` for :class:`LeRobotWriter`.
    """
    from .datasets.video import VideoWriter  # noqa: PLC0415

    h, w = int(cam.shape[0]), int(cam.shape[1])
    sample: list = []
    every = max(len(sel) // 100, 1)  # frames kept for the image statistics
    with VideoWriter(path, codec, rate, w, h) as vw:
        steps = range(0, len(sel), chunk)
        for k in _progress(steps, progress, desc=f"  {cam.name}", unit="chunk", leave=False):
            frames = _frames(cam, sel[k : k + chunk])
            vw.write(frames)
            sample += [fr[::4, ::4].copy() for fr in frames[::every]]
    return {"height": h, "width": w, "codec": codec, "stats": _frame_stats(sample)}


def convert_dataset(
    src: str | Path,
    dst: str | Path,
    rate: float,
    codec: str | None = None,
    episodes: Sequence[int] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    video_method: str = "nearest",
    chunk: int = 64,
    **open_kw: Any,
) -> dict:
    """Rewrite a dataset as LeRobot v2.1 at ``rate`` Hz.

    Args:
        src: source dataset (any format :func:`open_dataset` reads).
        dst: output folder; must be absent or empty unless ``overwrite``.
        rate: output rate in Hz.
        codec: output video codec (``h264``, ``hevc``, ``vp9``, ``av1``); default: the source's
            where it can be encoded, else ``h264``.
        episodes: source episode indices (default: all present).
        overwrite: replace an existing output dataset (one with ``meta/info.json``).
        progress: show progress bars.
        video_method: ``"nearest"`` or ``"previous"`` source frame per output timestamp.
        chunk: frames decoded per step when re-timing video.
        **open_kw: options for :func:`open_dataset` (``rate=`` for the source, ...).

    Returns:
        dict: ``{"episodes", "frames", "videos", "skipped", "dst"}``.

    Raises:
        ValueError: for a bad rate, a non-empty destination, streams on different clocks, or
            nothing left to convert.
        DatasetError: for problems reading the source.
    """
    from .datasets.lerobot import LeRobotDataset, LeRobotWriter  # noqa: PLC0415
    from .datasets.video import ENCODERS  # noqa: PLC0415

    if not rate > 0:
        raise ValueError(f"--rate must be positive, got {rate}")
    if video_method not in ("nearest", "previous"):
        raise ValueError(f"video_method must be 'nearest' or 'previous', got {video_method!r}")
    dst = Path(dst)
    ds = open_dataset(src, **open_kw)
    modality_file = None
    if isinstance(ds, LeRobotDataset) and ds.modality is not None:
        modality_file = ds.path / "meta" / "modality.json"  # slices stay valid: copy it over
        ds = LeRobotDataset(ds.path, modality="raw", video_backend=ds.video_backend)
    if dst.exists() and any(dst.iterdir()):
        if not overwrite:
            raise ValueError(f"{dst} exists and is not empty; pass --overwrite to replace it")
        if not (dst / "meta" / "info.json").is_file():
            raise ValueError(f"{dst} is not a LeRobot dataset; refusing to overwrite it")
        shutil.rmtree(dst)
    indices = list(ds.episode_indices) if episodes is None else list(episodes)
    for i in indices:
        ds.check_index(i)
    writer = LeRobotWriter(dst, fps=rate, robot_type=ds.robot)
    summary: dict = {"episodes": 0, "frames": 0, "videos": 0, "skipped": [], "dst": str(dst)}
    for i in _progress(indices, progress, desc="convert", unit="episode"):
        ep = ds.episode(i)
        lowdim = [s for s in ep.streams.values() if s.kind == "lowdim" and s.dtype.kind in "fiub"]
        cams = [s for s in ep.streams.values() if _is_camera(s)]
        for s in ep.streams.values():
            if s not in lowdim and s not in cams and s.kind != "text":  # text -> tasks
                summary["skipped"].append(f"episode {i}: {s.name} ({s.kind} {s.dtype} {s.shape})")
        ref = (lowdim or cams or [None])[0]
        if ref is None or len(ref) < 2:
            summary["skipped"].append(f"episode {i}: fewer than two samples")
            continue
        for s in lowdim + cams:
            if not np.array_equal(s.timestamps, ref.timestamps):
                raise ValueError(
                    f"{ep.metadata.source}: episode {i}: streams {ref.name!r} and "
                    f"{s.name!r} have different timestamps; convert needs one clock"
                )
        columns, grid = _resample_lowdim(lowdim, ref.timestamps, rate)
        if grid is None:  # cameras only: the grid from a dummy series
            ((_, grid),) = resample([(np.zeros((len(ref), 1), np.float32), ref.timestamps)],
                                    rate, "previous")  # fmt: skip
        t_out = grid.astype(np.float64) * (1e-9 if grid.dtype == np.int64 else 1.0)
        sel = _select_frames(ref.seconds(), t_out, video_method)
        videos: dict = {}
        for cam in cams:
            src_codec = cam.video.info.codec if cam.kind == "video" else None
            out_codec = codec or (src_codec if src_codec in ENCODERS else "h264")
            path = writer.video_path(summary["episodes"], cam.name)
            videos[cam.name] = _write_camera(cam, sel, path, out_codec, rate, chunk, progress)
            summary["videos"] += 1
        names = {s.name: s.names for s in lowdim if s.names}
        tasks = list(ep.metadata.language) or ([ep.metadata.task] if ep.metadata.task else [])
        extra = {"source_episode": i, "source_start_s": float(t_out[0])}
        writer.add_episode(summary["episodes"], t_out - t_out[0], columns, tasks, videos, names,
                           extra)  # fmt: skip
        summary["episodes"] += 1
        summary["frames"] += len(grid)
    if summary["episodes"] == 0:
        shutil.rmtree(dst, ignore_errors=True)
        raise ValueError(
            f"{src}: nothing to convert; every episode was skipped: "
            f"{'; '.join(summary['skipped'][-3:])}"
        )
    writer.close()
    if modality_file is not None:
        shutil.copy(modality_file, dst / "meta" / "modality.json")
    back = LeRobotDataset(dst)
    if len(back) != summary["episodes"]:
        raise RuntimeError(f"{dst}: wrote {summary['episodes']} episodes but {len(back)} read back")
    return summary


def _frames(cam: Any, idx: np.ndarray) -> np.ndarray:
    """Frames ``idx`` of a camera stream, decoding only those for lazy streams."""
    if cam.is_loaded:
        return cam.values[idx]
    return np.asarray(cam.loader(np.asarray(idx)))


# --------------------------------------------------------------------------------------- main
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="robocache", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("inspect", help="formats, episodes, stream rates, gaps, video codecs")
    i.add_argument("path")
    i.add_argument("--json", action="store_true", help="print the report as JSON")
    i.add_argument(
        "--gap-factor",
        type=float,
        default=2.0,
        help="report intervals longer than this many median intervals (default 2)",
    )
    i.add_argument("--gap", type=float, default=None, help="report intervals longer than SECONDS")
    i.add_argument("--max-episodes", type=int, default=None)
    i.add_argument("--strict", action="store_true", help="exit 1 when problems are found")
    c = sub.add_parser("convert", help="rewrite as LeRobot v2.1 at another rate")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--rate", type=float, required=True, help="output rate in Hz")
    c.add_argument(
        "--codec",
        choices=["h264", "hevc", "vp9", "av1"],
        default=None,
        help="output video codec (default: the source's; h264 for still images)",
    )
    c.add_argument("--episodes", default=None, help="e.g. 0,2,5-7 (default: all)")
    c.add_argument("--overwrite", action="store_true")
    c.add_argument("--no-progress", action="store_true")
    c.add_argument("--video-method", choices=["nearest", "previous"], default="nearest")
    for q in (i, c):
        q.add_argument(
            "--format",
            choices=["lerobot", "rlds", "robomimic", "calvin"],
            default=None,
            help="force the adapter",
        )
        q.add_argument(
            "--source-rate",
            type=float,
            default=None,
            help="rate of formats without timestamps (RLDS, HDF5, CALVIN)",
        )
        q.add_argument(
            "--video-backend", choices=["auto", "pyav", "dali-gpu", "dali-cpu"], default="auto"
        )
    return p


def _open_kw(args: argparse.Namespace) -> dict:
    from .datasets import detect_format  # noqa: PLC0415

    path = getattr(args, "path", None) or args.src
    fmt = args.format or detect_format(path)
    kw: dict = {"format": fmt}
    if args.source_rate is not None and fmt != "lerobot":
        kw["rate"] = args.source_rate
    if fmt == "lerobot":
        kw["video_backend"] = args.video_backend
    return kw


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``robocache`` command.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        int: exit status: 0 success, 1 problems found with ``--strict``, 2 error.
    """
    args = _parser().parse_args(argv)
    try:
        if args.command == "inspect":
            rep = inspect_dataset(
                args.path,
                gap_factor=args.gap_factor,
                gap_s=args.gap,
                max_episodes=args.max_episodes,
                **_open_kw(args),
            )
            print(
                json.dumps(rep, indent=2, default=_json_default)
                if args.json
                else format_report(rep)
            )
            return 1 if args.strict and rep["problems"] else 0
        summary = convert_dataset(
            args.src,
            args.dst,
            args.rate,
            codec=args.codec,
            episodes=_parse_episodes(args.episodes),
            overwrite=args.overwrite,
            progress=not args.no_progress,
            video_method=args.video_method,
            **_open_kw(args),
        )
        print(
            f"wrote {summary['episodes']} episodes, {summary['frames']} frames, "
            f"{summary['videos']} videos at {args.rate:g} Hz to {summary['dst']}"
        )
        for s in summary["skipped"][:10]:
            print(f"  skipped: {s}")
        return 0
    except (DatasetError, ValueError, KeyError, FileNotFoundError, ImportError) as e:
        print(f"robocache {args.command}: error: {e}", file=sys.stderr)
        return 2


def _json_default(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return str(x)


if __name__ == "__main__":
    sys.exit(main())
