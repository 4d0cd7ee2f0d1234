"""Dataset of the GR00T-style training benchmark (benchmarks/groot_bench.py): a LeRobot v2.1
dataset in GR00T's flavour (``meta/modality.json`` slicing a 26-DoF Unitree G1 state/action into
arms and hands, ``video.*`` cameras), 224x224 H.264 video (GOP 2, as LeRobot encodes), built once
under a cache folder.

Where the real sample ``datasets/lerobot_v21_unitree_g1`` is at hand (``--data``), its 26-DoF
states/actions and its AV1 640x480 camera (decoded, resized to 224x224) are cut into clips and the
clips tiled into as many episodes as asked (each tile's state/action gets a small per-episode offset
so no two episodes are identical; extra cameras are mirrored / shifted views of the real one).
Otherwise the same layout is generated (smooth random joint trajectories, moving synthetic scenes).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

FPS = 30
DOF = 26
SOURCE = "lerobot_v21_unitree_g1"
SOURCE_CAM = "videos/chunk-000/observation.images.cam_high/episode_000001.mp4"
CAMERA_NAMES = ("ego_view", "left_wrist", "right_wrist")
# GR00T modality.json: Unitree G1 (Inspire hands) joint groups of the 26-D vector
GROUPS = {"left_arm": (0, 7), "right_arm": (7, 14), "left_hand": (14, 20), "right_hand": (20, 26)}
TASK = "Pick up the yellow bottle on the table."


def _source_arrays(src: Path) -> tuple:
    """(state [T, 26], action [T, 26]) of the real episode 1 (the one with video), float32."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    t = pq.read_table(src / "data" / "chunk-000" / "episode_000001.parquet", columns=["observation.state", "action"])
    st = np.stack(t.column("observation.state").to_numpy(zero_copy_only=False)).astype(np.float32)
    ac = np.stack(t.column("action").to_numpy(zero_copy_only=False)).astype(np.float32)
    return st, ac


def _source_frames(src: Path, size: int, n: int) -> np.ndarray:
    """The first ``n`` frames of the real AV1 camera, resized to ``size`` x ``size`` RGB."""
    import av  # noqa: PLC0415

    out = []
    with av.open(str(src / SOURCE_CAM)) as c:
        for f in c.decode(video=0):
            out.append(f.reformat(width=size, height=size, format="rgb24").to_ndarray())
            if len(out) >= n:
                break
    return np.stack(out)


def _synthetic(n: int, size: int, rng: np.random.Generator) -> tuple:
    """Smooth random 26-DoF trajectories and a moving synthetic scene of ``n`` frames."""
    steps = rng.normal(0, 0.02, (n + 8, DOF)).cumsum(0)
    kernel = np.ones(8) / 8
    st = np.stack([np.convolve(steps[:, j], kernel, "valid")[:n] for j in range(DOF)], 1).astype(np.float32)
    ac = np.concatenate([st[1:], st[-1:]]).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    frames = np.empty((n, size, size, 3), np.uint8)
    for k in range(n):
        ph = 2 * np.pi * k / 60
        cx, cy = 0.5 + 0.3 * np.cos(ph), 0.5 + 0.3 * np.sin(ph)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.01)
        frames[k, ..., 0] = np.clip(255 * (0.3 + 0.5 * xx + 0.5 * blob), 0, 255)
        frames[k, ..., 1] = np.clip(255 * (0.2 + 0.6 * yy * (1 - blob)), 0, 255)
        frames[k, ..., 2] = np.clip(255 * (0.5 + 0.4 * np.sin(6 * xx + ph)), 0, 255)
    frames = np.clip(frames.astype(np.int16) + rng.integers(-6, 7, frames.shape), 0, 255).astype(np.uint8)
    return st, ac, frames


def _view(frames: np.ndarray, cam: int) -> np.ndarray:
    """Camera ``cam`` of the scene: the frames, mirrored, or shifted (distinct content per camera)."""
    if cam == 0:
        return frames
    if cam == 1:
        return np.ascontiguousarray(frames[:, :, ::-1])
    return np.ascontiguousarray(np.roll(frames, frames.shape[2] // 4, axis=2)[:, ::-1])


def dataset_id(episodes: int, cameras: int, frames: int, size: int, real: bool) -> str:
    """Folder name of a dataset configuration (a different configuration builds a new dataset)."""
    return f"groot_g1_{'real' if real else 'synth'}_{episodes}ep_{cameras}cam_{frames}f_{size}px"


def build(root: Path, episodes: int, cameras: int, frames: int, size: int, source: Path | None, clips: int = 16,
          log=print) -> Path:
    """Build the dataset under ``root`` (skipped when a complete one is there).

    Args:
        root: cache folder; the dataset goes to ``root / dataset_id(...)``.
        episodes: number of episodes (tiles).
        cameras: 1-3 cameras (``video.ego_view``, ``video.left_wrist``, ``video.right_wrist``).
        frames: frames per episode (episode lengths vary by up to 25% below this).
        size: video height = width.
        source: the real ``lerobot_v21_unitree_g1`` folder, or None to generate.
        clips: distinct clips encoded; episodes tile them (their videos are copies).

    Returns:
        Path: the dataset folder.
    """
    from robocache.datasets.lerobot import LeRobotWriter  # noqa: PLC0415
    from robocache.datasets.video import VideoWriter  # noqa: PLC0415

    real = source is not None and (source / SOURCE_CAM).is_file()
    out = root / dataset_id(episodes, cameras, frames, size, real)
    if (out / "COMPLETE").is_file():
        return out
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    if real:
        st, ac = _source_arrays(source)
        scene = _source_frames(source, size, len(st))
        n = min(len(st), len(scene))
        st, ac, scene = st[:n], ac[:n], scene[:n]
    else:
        st, ac, scene = _synthetic(max(3 * frames, 120), size, rng)
        n = len(st)
    frames = min(frames, n)
    clips = max(1, min(clips, episodes))
    lengths = [int(frames - (frames // 4) * k / max(clips - 1, 1)) for k in range(clips)]
    starts = [int(rng.integers(0, n - ln + 1)) for ln in lengths]
    w = LeRobotWriter(out, fps=FPS, robot_type="Unitree_G1_Inspire")
    keys = [f"observation.images.{CAMERA_NAMES[c]}" for c in range(cameras)]
    for i in range(episodes):
        k = i % clips
        a, ln = starts[k], lengths[k]
        videos = {}
        for c, key in enumerate(keys):
            p = w.video_path(i, key)
            if i < clips:
                with VideoWriter(p, "h264", FPS, size, size, gop=2) as vw:
                    vw.write(_view(scene[a:a + ln], c))
            else:
                shutil.copyfile(w.video_path(k, key), p)
            videos[key] = {"height": size, "width": size, "codec": "h264"}
        off = rng.normal(0, 0.01, DOF).astype(np.float32)  # per-episode offset: tiles are not identical
        w.add_episode(i, np.arange(ln) / FPS, {"observation.state": st[a:a + ln] + off, "action": ac[a:a + ln] + off},
                      [TASK], videos=videos)
    w.close()
    modality = {"state": {g: {"start": s, "end": e} for g, (s, e) in GROUPS.items()},
                "action": {g: {"start": s, "end": e} for g, (s, e) in GROUPS.items()},
                "video": {CAMERA_NAMES[c]: {"original_key": keys[c]} for c in range(cameras)},
                "annotation": {"human.task_description": {"original_key": "task_index"}}}
    (out / "meta" / "modality.json").write_text(json.dumps(modality, indent=2))
    (out / "COMPLETE").write_text(json.dumps({"episodes": episodes, "cameras": cameras, "frames": frames, "size": size,
                                               "source": str(source) if real else "generated",
                                               "seconds": time.perf_counter() - t0}))
    log(f"built {out.name}: {episodes} episodes, {cameras} camera(s) {size}x{size} H.264, "
        f"{'tiled from the real ' + SOURCE if real else 'generated'} in {time.perf_counter() - t0:.1f} s")
    return out
