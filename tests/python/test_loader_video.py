"""RobotDataLoader with camera video decoded inside its DALI pipeline (``fn.decoders.video`` on the
encoded file plus the window's frame index; NVDEC on a GPU, DALI's CPU decoder for VP9 here, so CI
runs the same graph): frames equal PyAV's decode of the same file within YUV-to-RGB rounding, every
other output is unchanged, resume is exact, the path is chosen per camera, and a file that goes
bad after the loader was built is reported by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from robocache import DatasetSpec, RobotDataLoader
from robocache.datasets import CorruptDatasetError, DatasetNotFoundError
from robocache.datasets.video import BackendChoice, VideoWriter
from robocache.loader.frames import host_video
from robocache.loader.video import EncodedFiles, camera_devices, decode_device, window_devices

from conftest import shared_data

DATA = shared_data() / "datasets"
G1, BRIDGE = DATA / "lerobot_v21_unitree_g1", DATA / "rlds_bridge"
CAM = "observation.images.cam_high"
VIDEO = Path("videos") / "chunk-000" / CAM / "episode_000001.mp4"
pytestmark = pytest.mark.skipif(not G1.is_dir(), reason=f"real data folder {DATA} is absent")


@pytest.fixture(scope="module")
def vp9(tmp_path_factory) -> Path:
    """The real G1 sample with its AV1 camera re-encoded as VP9 (160x128, GOP 2, in the same .mp4 path)."""
    out = tmp_path_factory.mktemp("g1_vp9") / "g1"
    shutil.copytree(G1, out, ignore=shutil.ignore_patterns("*.mp4"))
    (out / VIDEO).parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(G1 / VIDEO)) as c, VideoWriter(out / VIDEO, "vp9", 30, 160, 128, gop=2) as w:
        w.write(f.reformat(width=160, height=128, format="rgb24").to_ndarray() for f in c.decode(video=0))
    return out


def spec(path, backend, **kw):
    return DatasetSpec(str(path), episodes=[1], cameras={"front": CAM}, open_kwargs={"video_backend": backend}, **kw)


def run(loader, limit=None):
    out = []
    for k, b in enumerate(loader):
        out.append({n: v.numpy() for n, v in b.items()})
        if limit is not None and k + 1 >= limit:
            break
    return {n: np.concatenate([b[n] for b in out]) for n in out[0]}


def pyav_frames(path: Path, indices) -> dict:
    want, got = set(int(i) for i in indices), {}
    with av.open(str(path)) as c:
        for k, f in enumerate(c.decode(video=0)):
            if k in want:
                got[k] = f.to_ndarray(format="rgb24")
            if k >= max(want):
                break
    return got


KW = dict(target_frequency=30.0, observation_horizon=2, action_horizon=4, batch_size=8, device="cpu", epoch_size=32, seed=4)


def test_frames_decoded_in_the_pipeline_equal_pyav(vp9):
    dali = RobotDataLoader([spec(vp9, "dali-cpu")], cameras={"front": (128, 160)}, **KW)
    ref = RobotDataLoader([spec(vp9, "pyav")], cameras={"front": (128, 160)}, **KW)
    assert dali.cfg["video"] == {"front": "cpu"} and ref.cfg["video"] == {}
    a, b = run(dali), run(ref)
    assert set(a) == set(b) and len(a["index"]) == 32
    for k in a:
        if k != "images.front":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
            assert a[k].dtype == b[k].dtype
    # the frame nearest each window's anchor, decoded by PyAV straight from the file
    ts = pq.read_table(vp9 / "data" / "chunk-000" / "episode_000001.parquet", columns=["timestamp"]).column(0).to_numpy()
    idx = [int(np.argmin(np.abs(ts - ts[0] - t))) for t in a["anchor_time"]]
    frames = pyav_frames(vp9 / VIDEO, idx)
    want = np.stack([frames[j] for j in idx])
    np.testing.assert_array_equal(b["images.front"], want)  # the host path is PyAV itself
    diff = np.abs(a["images.front"].astype(int) - want)
    assert a["images.front"].shape == (32, 128, 160, 3) and a["images.front"].dtype == np.uint8
    assert diff.mean() < 2.0 and np.percentile(diff, 99) <= 12, (diff.mean(), np.percentile(diff, 99))  # YUV->RGB rounding
    # a frame DALI decoded is the right frame: closer to its own PyAV frame than to its neighbours
    for img, j in zip(a["images.front"][:4], idx[:4]):
        near = pyav_frames(vp9 / VIDEO, [max(j - 3, 0), j + 3])
        own = np.abs(img.astype(int) - frames[j]).mean()
        assert all(own < np.abs(img.astype(int) - f).mean() for f in near.values())


def test_resize_jitter_float_images_and_resume_with_in_pipeline_decode(vp9):
    kw = {**KW, "cameras": {"front": (64, 80)}, "augmentations": ["color_jitter"], "image_dtype": "float32",
          "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "num_workers": 3}
    dali = RobotDataLoader([spec(vp9, "dali-cpu")], **kw)
    ref = RobotDataLoader([spec(vp9, "pyav")], **kw)  # frames from PyAV worker processes
    a, b = run(dali), run(ref)
    assert ref._frame_pool is not None and dali._frame_pool is None  # no host decoding on the in-pipeline path
    for k in a:
        if k != "images.front":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    d = np.abs(a["images.front"] - b["images.front"]) * 0.25 * 255  # back to 0..255 units
    assert a["images.front"].shape == (32, 64, 80, 3) and d.mean() < 2.0 and np.percentile(d, 99) < 12
    # resume mid-epoch: the remaining batches are the ones a full epoch gives
    again = RobotDataLoader([spec(vp9, "dali-cpu")], **kw)
    it = iter(again)
    next(it), next(it)
    state = again.state_dict()
    del it
    resumed = RobotDataLoader([spec(vp9, "dali-cpu")], **kw)
    resumed.load_state_dict(state)
    rest = run(resumed)
    for k in rest:
        np.testing.assert_array_equal(rest[k], a[k][16:], err_msg=k)


def test_decode_path_is_chosen_per_camera(vp9):
    av1 = RobotDataLoader([spec(G1, "auto")], cameras={"front": (32, 32)}, **KW)
    assert av1.cfg["video"] == {}  # AV1 (and no GPU here): PyAV
    s = av1._table["episodes"][0].cameras["front"][0]
    assert decode_device(s, "cpu") is None and decode_device(s, "cuda") is None
    cpu_vp9 = RobotDataLoader([spec(vp9, "dali-cpu")], cameras={"front": (32, 32)}, **KW)
    v = cpu_vp9._table["episodes"][0].cameras["front"][0]
    assert decode_device(v, "cpu") == "cpu" and decode_device(v, "cuda") == "cpu"
    assert window_devices(cpu_vp9._table["episodes"], {"front": "cpu"}) == {"front": "cpu"}
    object.__setattr__(v.video, "_choice", BackendChoice("dali-gpu", "test"))  # what 'auto' picks for VP9 with a GPU
    assert decode_device(v, "cuda") == "mixed" and decode_device(v, "cpu") is None
    # NVDEC per window only when asked for by name; 'auto' without a frame cache: PyAV workers
    eps = cpu_vp9._table["episodes"]
    cfg = {"encoded": {"front": False}, "video": {"front": "mixed"}}
    for requested, window in (("auto", {}), ("dali-gpu", {"front": "mixed"})):
        object.__setattr__(v.video, "requested_backend", requested)
        assert window_devices(eps, {"front": "mixed"}) == window
        cfg["video_window"] = window
        assert host_video(cfg, "front", v) == (not window) and not host_video(cfg, "front", v, cached=("front",))
    object.__setattr__(v.video, "requested_backend", "dali-cpu")
    object.__setattr__(v.video, "_choice", BackendChoice("dali-cpu", "requested"))
    # a camera whose episodes need different decoders stays on the host path (here: VP9 video + JPEG stills)
    mixed = RobotDataLoader([spec(vp9, "dali-cpu"), DatasetSpec(str(BRIDGE), cameras={"front": "observation.image_0"})],
                            cameras={"front": (32, 32)}, **{**KW, "action_horizon": 2, "target_frequency": 10.0})
    assert mixed.cfg["video"] == {}
    eps = mixed._table["episodes"]
    assert camera_devices(eps[:1], {"front": None}, "cpu") == {"front": "cpu"}
    b = run(mixed, limit=2)
    assert b["images.front"].shape == (16, 32, 32, 3) and set(np.unique(b["dataset_index"])) <= {0, 1}


@pytest.mark.parametrize("clips", ["1", "0"])
def test_a_video_file_gone_bad_after_the_loader_was_built_is_named(vp9, tmp_path, monkeypatch, clips):
    monkeypatch.setenv("ROBOCACHE_VIDEO_CLIPS", clips)  # GOP clips (default) or whole files
    path = tmp_path / "g1"
    shutil.copytree(vp9, path)
    gone = RobotDataLoader([spec(path, "dali-cpu")], cameras={"front": (32, 32)}, **KW)
    (path / VIDEO).unlink()
    with pytest.raises(DatasetNotFoundError, match=r"RobotDataLoader: video file .*episode_000001\.mp4 cannot be read"):
        run(gone)
    (path / VIDEO).write_bytes(b"\x00\x00\x01" * 4000)  # same name, no longer a video
    bad = RobotDataLoader([spec(vp9, "dali-cpu")], cameras={"front": (32, 32)}, **KW)
    bad._table["episodes"][0].cameras["front"][0].video.path = path / VIDEO
    if clips == "1":  # the clip is cut on the host: the demux names the file
        with pytest.raises(CorruptDatasetError, match=r"RobotDataLoader: video file .*episode_000001\.mp4 cannot be demuxed"):
            run(bad)
    else:  # the whole file goes to DALI: its failure comes back naming the batch's files
        with pytest.raises(RuntimeError, match=r"(?s)RobotDataLoader: the DALI pipeline failed on batch 0 of epoch 0 .*"
                                               r"episode_000001\.mp4.*decoders\.video"):
            run(bad)
    files = EncodedFiles(max_bytes=1)
    a = files.get(str(vp9 / VIDEO))
    assert not a.flags.writeable and a.size == (vp9 / VIDEO).stat().st_size
    assert files.get(str(vp9 / VIDEO)) is a


@pytest.mark.parametrize("codec,gop", [("h264", 2), ("h264", 6), ("vp9", 2), ("vp9", 5)])
def test_gop_clips_decode_to_the_files_frames(tmp_path, codec, gop):
    # the clip (IVF, Annex-B for H.264/HEVC) of every frame, decoded by FFmpeg through PyAV, gives exactly
    # the frame PyAV decodes from the file; x264's B-frames (GOP 6) reorder frames inside a clip
    from robocache.loader.clips import ClipIndex, clip_codec

    assert clip_codec(codec) and not clip_codec("hevc") and not clip_codec("av1")  # those go in as whole files

    with av.open(str(G1 / VIDEO)) as c:
        frames = [f.reformat(width=96, height=64, format="rgb24").to_ndarray() for _, f in zip(range(30), c.decode(video=0))]
    path = tmp_path / f"cam_{codec}.mp4"
    try:
        with VideoWriter(path, codec, 30, 96, 64, gop=gop) as w:
            w.write(frames)
    except ValueError as e:  # this PyAV build has no encoder for the codec
        pytest.skip(str(e))
    ref = pyav_frames(path, range(30))
    ci = ClipIndex(str(path))
    assert ci.codec == codec and len(ci.gop_start) >= 30 // max(gop, 1)
    ranks = ci.frame_at(np.arange(30) / 30, 0.5 / 30)
    np.testing.assert_array_equal(ranks, np.arange(30))
    assert ci.frame_at(np.array([5.0]), 0.5 / 30)[0] == -1  # no frame there
    for j in range(30):
        clip, i = ci.clip(j)
        with av.open(__import__("io").BytesIO(clip.tobytes()), format="ivf") as c:
            got = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert len(got) <= gop and 0 <= i < len(got)
        np.testing.assert_array_equal(got[i], ref[j], err_msg=f"{codec} frame {j}")


def test_frame_cache_gives_the_per_window_batches(vp9):
    kw = {**KW, "cameras": {"front": (64, 80)}, "augmentations": ["color_jitter"], "epoch_size": 48}
    window = RobotDataLoader([spec(vp9, "dali-cpu")], **kw)
    cached = RobotDataLoader([spec(vp9, "dali-cpu")], frame_cache=0.5, **kw)
    a, b = run(window), run(cached)
    st = cached.frame_cache_stats
    assert window.frame_cache_stats is None and st["cameras"] == ["front"] and st["device"] == "cpu"
    assert st["frames"] == 393 and st["bytes"] == 393 * 64 * 80 * 3 and st["fill_seconds"] > 0
    for k in a:  # the same frames (resized once when filled, with the same operator), the same everything else
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    np.testing.assert_array_equal(run(cached)["images.front"], run(window)["images.front"])  # next epoch too
    # a budget the frames do not fit: a warning, then per-window decoding with the same batches
    small = RobotDataLoader([spec(vp9, "dali-cpu")], frame_cache=0.001, **kw)
    with pytest.warns(UserWarning, match=r"frame_cache: the decoded frames of cameras \['front'\] take 0\.01 GiB, more than "
                                         r"frame_cache=0\.001 GiB; decoding per window"):
        c = run(small)
    assert small.frame_cache_stats is None
    np.testing.assert_array_equal(c["images.front"], a["images.front"])
    with pytest.raises(ValueError, match=r"frame_cache must be 'auto', a positive number of GiB or None, got -1"):
        RobotDataLoader([spec(vp9, "dali-cpu")], frame_cache=-1, **kw)
    # no camera DALI decodes (PyAV here): nothing to cache, per-window PyAV as before
    pyav = RobotDataLoader([spec(vp9, "pyav")], frame_cache=0.5, **kw)
    np.testing.assert_array_equal(run(pyav)["images.front"], run(RobotDataLoader([spec(vp9, "pyav")], **kw))["images.front"])
    assert pyav.frame_cache_stats is None


def test_ahead_thread_keeps_order_raises_in_place_and_stops_when_left():
    import threading

    import torch

    from robocache.loader.transfer import ahead_thread

    closed = []

    def gen(n, fail_at=None):
        try:
            for k in range(n):
                if k == fail_at:
                    raise KeyError(f"batch {k}")
                yield {"x": torch.full((2,), k)}
        finally:
            closed.append(threading.current_thread().name)

    assert [int(b["x"][0]) for b in ahead_thread(gen(7), None, depth=2)] == list(range(7))
    got = []
    with pytest.raises(KeyError, match="batch 3"):
        for b in ahead_thread(gen(7, fail_at=3), None):
            got.append(int(b["x"][0]))
    assert got == [0, 1, 2]
    it = ahead_thread(gen(100), None, depth=2)
    assert int(next(it)["x"][0]) == 0
    it.close()  # left early: the thread stops and closes the generator (in the thread)
    assert closed == ["robocache-handoff"] * 3
    assert not [t for t in threading.enumerate() if t.name == "robocache-handoff"]
