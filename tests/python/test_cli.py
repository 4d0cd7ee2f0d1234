"""``robocache inspect`` and ``robocache convert`` on the real samples in ../shared/data/datasets.

Convert resamples through the DALI operator ``fn.robocache.resample``; its output is checked
against ``numpy.interp`` on the source values, and it must read back through the LeRobot adapter.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
from robocache.cli import main, resample
from robocache.datasets import open_dataset
from robocache.datasets.lerobot import LeRobotDataset, LeRobotWriter

SHARED = Path(
    os.environ.get("ROBOCACHE_SHARED_DATA")
    or Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
)
DATA = SHARED / "datasets"
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"shared test data folder {DATA} is absent"
)

V21 = DATA / "lerobot_v21_unitree_g1"
RLDS = DATA / "rlds_bridge"
LIFT = DATA / "robosuite_hdf5" / "lift" / "panda" / "demo.hdf5"
CALVIN = DATA / "calvin_frames"
CAM = "observation.images.cam_high"
REPO = Path(__file__).resolve().parents[2]


def run(capsys, *argv) -> tuple:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def grid_len(ts: np.ndarray, rate: float) -> int:
    """Points of the operator's grid t0 + k / rate, k = 0..floor((tN - t0) rate + 1e-6).

    The 1e-6 slack (in grid steps) keeps the intended last point of float32-stored timestamps:
    LeRobot's 13.0666666 s at 15 Hz is 195.999999 steps, and the grid still ends at 196.
    """
    return int(math.floor((ts[-1] - ts[0]) * rate + 1e-6)) + 1


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


def all_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


# --------------------------------------------------------------------------------------- inspect
@needs_data
def test_inspect_lerobot_text_and_json(capsys):
    code, out, _ = run(capsys, "inspect", V21)
    assert code == 0
    present = sorted((V21 / "data").glob("*/*.parquet"))
    info = json.loads((V21 / "meta" / "info.json").read_text())
    assert "format: lerobot-v2.1" in out and f"robot: {info['robot_type']}" in out
    assert f"episodes: {len(present)} present of {info['total_episodes']} declared" in out
    assert f"{CAM}: av1 640x480 30 fps; GPU decode: no; decoder here: pyav" in out
    assert "1 of 2 files ok" in out and "episode_000000.mp4 is missing" in out
    code, out, _ = run(capsys, "inspect", V21, "--json")
    rep = json.loads(out)
    ts = [pq.read_table(p).column("timestamp").to_numpy().astype(np.float64) for p in present]
    dt = np.concatenate([np.diff(t) for t in ts])
    st = rep["streams"]["observation.state"]
    assert st["samples"] == sum(len(t) for t in ts) and st["kind"] == "lowdim"
    assert st["rate_hz"] == pytest.approx(1 / np.median(dt))
    assert st["jitter_s"] == pytest.approx(dt.std()) and st["gaps"] == []
    line = next(
        x
        for x in run(capsys, "inspect", V21)[1].splitlines()
        if x.strip().startswith("observation.state")
    )
    assert (
        f"{1 / np.median(dt):.3f} Hz" in line and f"({100 * dt.std() / np.median(dt):.2f}%)" in line
    )
    assert rep["videos"][CAM][1]["codec"] == "av1" and not rep["videos"][CAM][1]["gpu_decodable"]
    assert run(capsys, "inspect", V21, "--strict")[0] == 1


@needs_data
def test_inspect_reports_gaps_and_jitter(tmp_path, capsys):
    ts = np.concatenate([np.arange(50) / 100.0, 0.49 + 0.35 + np.arange(30) / 100.0])
    ts[10] += 0.002  # jitter
    w = LeRobotWriter(tmp_path / "gappy", fps=100)
    w.add_episode(
        0, ts, {"observation.state": np.random.default_rng(0).random((80, 3))}, ["hold still"]
    )
    w.close()
    code, out, _ = run(capsys, "inspect", tmp_path / "gappy", "--json")
    st = json.loads(out)["streams"]["observation.state"]
    k = int(np.argmax(np.diff(ts)))
    t32 = ts.astype(np.float32).astype(np.float64)  # LeRobot stores float32 timestamps
    assert st["gaps"] == [
        {
            "episode": 0,
            "sample": k,
            "t_s": pytest.approx(t32[k]),
            "duration_s": pytest.approx(t32[k + 1] - t32[k]),
        }
    ]
    assert st["jitter_s"] == pytest.approx(np.diff(t32).std())
    code, out, _ = run(capsys, "inspect", tmp_path / "gappy")
    assert (
        f"gap: observation.state episode 0 at t={t32[k]:.3f} s: "
        f"{(t32[k + 1] - t32[k]) * 1e3:.1f} ms"
    ) in out
    assert (
        json.loads(run(capsys, "inspect", tmp_path / "gappy", "--json", "--gap", "1.0")[1])[
            "streams"
        ]["observation.state"]["gaps"]
        == []
    )


@needs_data
def test_inspect_other_formats(capsys):
    code, out, _ = run(capsys, "inspect", RLDS)
    assert code == 0 and "format: rlds" in out and "episodes: 25" in out
    assert "observation.state" in out and "5.000 Hz*" in out
    assert "* timestamps derived from the declared rate" in out
    code, out, _ = run(capsys, "inspect", LIFT)
    assert (
        code == 0 and "format: robomimic" in out and "20.000 Hz*" in out and "robot: Panda" in out
    )
    code, out, _ = run(capsys, "inspect", CALVIN)
    assert code == 0 and "format: calvin" in out and "rgb_static" in out


@needs_data
def test_inspect_errors(tmp_path, capsys):
    code, _, err = run(capsys, "inspect", tmp_path / "missing")
    assert (
        code == 2
        and "robocache inspect: error:" in err
        and "missing: no such file or folder" in err
    )
    (tmp_path / "x.csv").write_text("a,b\n")
    code, _, err = run(capsys, "inspect", tmp_path)
    assert code == 2 and "unknown dataset format" in err
    code, _, err = run(capsys, "inspect", V21, "--format", "rlds")
    assert code == 2 and "no features.json" in err


# --------------------------------------------------------------------------------------- convert
def test_resample_matches_numpy_interp():
    rng = np.random.default_rng(1)
    ts = np.cumsum(rng.uniform(0.02, 0.05, 40))
    data = rng.standard_normal((40, 3)).astype(np.float32)
    (vals, grid), (v2, g2) = resample([(data, ts), (data[:7], ts[:7])], 25.0)
    assert len(grid) == grid_len(ts, 25.0) and len(g2) == grid_len(ts[:7], 25.0)
    np.testing.assert_allclose(grid, ts[0] + np.arange(len(grid)) / 25.0, rtol=0, atol=1e-12)
    for c in range(3):
        np.testing.assert_allclose(vals[:, c], np.interp(grid, ts, data[:, c]), atol=1e-5)
    with pytest.raises(ValueError, match="strictly increasing"):
        resample([(data[:3], ts[[0, 2, 1]])], 25.0)


@needs_data
def test_convert_lerobot_round_trip(tmp_path, capsys):
    dst = tmp_path / "g1_50hz"
    code, out, err = run(
        capsys, "convert", V21, dst, "--rate", 50, "--codec", "h264", "--episodes", "1"
    )
    assert code == 0, err
    assert "wrote 1 episodes" in out and "1 videos at 50 Hz" in out
    src = pq.read_table(V21 / "data" / "chunk-000" / "episode_000001.parquet")
    ts = src.column("timestamp").to_numpy().astype(np.float64)
    n = grid_len(ts, 50)
    info = json.loads((dst / "meta" / "info.json").read_text())
    assert info["fps"] == 50 and info["codebase_version"] == "v2.1" and info["total_frames"] == n
    assert info["features"][CAM]["info"]["video.codec"] == "h264"
    back = open_dataset(dst)
    assert isinstance(back, LeRobotDataset) and back.declared_rate == 50 and len(back) == 1
    ep = back.episode(0)
    grid = ts[0] + np.arange(n) / 50
    np.testing.assert_allclose(
        ep["action"].timestamps, (grid - grid[0]).astype(np.float32), atol=1e-6
    )
    np.testing.assert_allclose(np.diff(ep["action"].timestamps), 0.02, atol=1e-5)
    for key in ("observation.state", "action"):
        ref = np.array(src.column(key).to_pylist())
        want = np.stack([np.interp(grid, ts, ref[:, c]) for c in range(ref.shape[1])], 1)
        np.testing.assert_allclose(ep[key].values, want, atol=1e-5)
    assert ep.metadata.task == open_dataset(V21).episode(1).metadata.task
    out_video = dst / "videos" / "chunk-000" / CAM / "episode_000000.mp4"
    frames = all_frames(out_video)
    assert len(frames) == n == ep[CAM].video.info.num_frames
    src_frames = all_frames(V21 / "videos" / "chunk-000" / CAM / "episode_000001.mp4")
    for k in (0, n // 3, n - 1):
        nearest = int(np.argmin(np.abs(ts - grid[k])))
        assert psnr(frames[k], src_frames[nearest]) > 33
    assert (
        "observation.images.cam_high"
        in json.loads((dst / "meta" / "episodes_stats.jsonl").read_text().splitlines()[0])["stats"]
    )
    code, _, err = run(capsys, "convert", V21, dst, "--rate", 50, "--episodes", "1")
    assert code == 2 and "exists and is not empty; pass --overwrite" in err


@needs_data
def test_convert_hdf5_and_rlds(tmp_path, capsys):
    import h5py

    code, _, err = run(capsys, "convert", LIFT, tmp_path / "lift", "--rate", 50, "--no-progress")
    assert code == 0, err
    with h5py.File(LIFT, "r") as f:
        actions = f["data/demo_1/actions"][()]
    src_rate = open_dataset(LIFT).declared_rate
    ts = np.arange(len(actions)) / src_rate
    ep = open_dataset(tmp_path / "lift").episode(0)
    grid = np.arange(grid_len(ts, 50)) / 50
    assert len(ep["actions"]) == len(grid)
    want = np.stack([np.interp(grid, ts, actions[:, c]) for c in range(actions.shape[1])], 1)
    np.testing.assert_allclose(ep["actions"].values, want, atol=1e-5)

    code, _, err = run(
        capsys,
        "convert",
        RLDS,
        tmp_path / "bridge",
        "--rate",
        10,
        "--episodes",
        "0-2",
        "--no-progress",
    )
    assert code == 0, err
    back = open_dataset(tmp_path / "bridge")
    src = open_dataset(RLDS)
    assert len(back) == 3
    for i in range(3):
        s, b = src.episode(i), back.episode(i)
        n = grid_len(s["action"].timestamps, 10)
        assert len(b["action"]) == n and b.metadata.task == s.metadata.task
        assert b["observation.image_0"].kind == "video"
        frames = b["observation.image_0"].values
        assert frames.shape == (n, 64, 64, 3)
        src_imgs = s["observation.image_0"].values
        for k in (0, n - 1):
            assert psnr(frames[k], src_imgs[min(int(round(k / 2)), len(src_imgs) - 1)]) > 28
        # integer/bool streams: nearest neighbour (either neighbour on an exact tie)
        src_ts, out_ts = s["is_first"].timestamps, s["is_first"].timestamps[0] + np.arange(n) / 10
        flags, got = s["is_first"].values, b["is_first"].values.reshape(-1)
        assert b["is_first"].dtype == np.bool_
        for k, t in enumerate(out_ts):
            d = np.abs(src_ts - t)
            assert got[k] in set(flags[d <= d.min() + 1e-9].tolist())
        assert b["reward"].shape == (1,)


@needs_data
def test_convert_groot_keeps_modality(tmp_path, capsys):
    root = tmp_path / "g1"
    (root / "meta").mkdir(parents=True)
    for f in (V21 / "meta").iterdir():
        shutil.copy(f, root / "meta" / f.name)
    (root / "data").symlink_to(V21 / "data")
    (root / "videos").symlink_to(V21 / "videos")
    mod = {
        "state": {"arms": {"start": 0, "end": 14, "rotation_type": "euler_angles_rpy"}},
        "action": {"arms": {"start": 0, "end": 14, "absolute": False}},
    }
    (root / "meta" / "modality.json").write_text(json.dumps(mod))
    # the camera is dropped from the info so this test only resamples low-dimensional streams
    info = json.loads((root / "meta" / "info.json").read_text())
    del info["features"][CAM]
    (root / "meta" / "info.json").write_text(json.dumps(info))
    code, _, err = run(
        capsys, "convert", root, tmp_path / "out", "--rate", 15, "--episodes", "1", "--no-progress"
    )
    assert code == 0, err
    assert json.loads((tmp_path / "out" / "meta" / "modality.json").read_text()) == mod
    ep = open_dataset(tmp_path / "out").episode(0)
    assert set(ep.keys()) == {"state.arms", "action.arms"}
    assert ep["action.arms"].attrs["absolute"] is False
    assert ep["state.arms"].shape == (14,) and len(ep["state.arms"]) == grid_len(
        open_dataset(root).episode(1)["state.arms"].timestamps, 15
    )


@needs_data
def test_convert_errors(tmp_path, capsys):
    code, _, err = run(capsys, "convert", CALVIN, tmp_path / "c", "--rate", 50, "--no-progress")
    assert code == 2 and "nothing to convert; every episode was skipped" in err
    assert "fewer than two samples" in err and not (tmp_path / "c").exists()
    code, _, err = run(capsys, "convert", LIFT, tmp_path / "z", "--rate", 0)
    assert code == 2 and "--rate must be positive, got 0.0" in err
    code, _, err = run(capsys, "convert", LIFT, tmp_path / "z", "--rate", 10, "--episodes", "3")
    assert code == 2 and "episode 3 is out of range" in err
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "precious.txt").write_text("x")
    code, _, err = run(capsys, "convert", LIFT, tmp_path / "keep", "--rate", 10, "--overwrite")
    assert code == 2 and "is not a LeRobot dataset; refusing to overwrite it" in err
    assert (tmp_path / "keep" / "precious.txt").exists()


@needs_data
def test_module_entry_point_runs():
    env = dict(os.environ)  # the installed package (or the caller's PYTHONPATH), which holds the plugin
    r = subprocess.run(
        [sys.executable, "-m", "robocache.cli", "inspect", str(LIFT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "format: robomimic" in r.stdout
