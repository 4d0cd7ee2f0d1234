"""Dataset adapters on the real samples in ../shared/data/datasets, checked against direct reads.

Every value is compared with what pyarrow, h5py, numpy, PyAV or DALI's own TFRecord reader give
for the same file; every bad input must raise a clear error naming the file, episode and problem.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
from pathlib import Path

import av
import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
from robocache.datasets import (
    CorruptDatasetError,
    DatasetNotFoundError,
    EpisodeIndexError,
    MissingKeyError,
    Stream,
    UnknownFormatError,
    detect_format,
    find_gaps,
    measure_rate,
    open_dataset,
)
from robocache.datasets.lerobot import LeRobotDataset
from robocache.datasets.rlds import RLDSDataset, parse_example
from robocache.datasets.video import VideoSource, VideoWriter, choose_backend, gpu_count

SHARED = Path(
    os.environ.get("ROBOCACHE_SHARED_DATA")
    or Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
)
DATA = SHARED / "datasets"
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"shared test data folder {DATA} is absent"
)

V21 = DATA / "lerobot_v21_unitree_g1"
V30 = DATA / "lerobot_v30_so101"
RLDS = DATA / "rlds_bridge"
ROBOSUITE = DATA / "robosuite_hdf5"
CALVIN = DATA / "calvin_frames"
CAM = "observation.images.cam_high"


def pyav_frames(path: Path, indices) -> np.ndarray:
    """Reference: decode sequentially from the start, keep the frames at ``indices``."""
    want = sorted(set(int(i) for i in indices))
    got = {}
    with av.open(str(path)) as c:
        for k, f in enumerate(c.decode(video=0)):
            if k in want:
                got[k] = f.to_ndarray(format="rgb24")
            if k >= want[-1]:
                break
    return np.stack([got[int(i)] for i in indices])


def column(table, name) -> np.ndarray:
    """A parquet column through Python lists, independent of the adapter's Arrow flattening."""
    return np.array(table.column(name).to_pylist())


def lerobot_copy(tmp_path: Path, src: Path, link=("data", "videos")) -> Path:
    """A writable LeRobot dataset: meta copied, big folders symlinked."""
    dst = tmp_path / src.name
    (dst / "meta").mkdir(parents=True)
    for f in (src / "meta").iterdir():
        if f.is_file():
            shutil.copy(f, dst / "meta" / f.name)
        else:
            shutil.copytree(f, dst / "meta" / f.name)
    for d in link:
        if (src / d).exists():
            (dst / d).symlink_to(src / d)
    return dst


# --------------------------------------------------------------------------------------- LeRobot
@needs_data
def test_lerobot_v21_values_timestamps_and_metadata():
    ds = open_dataset(V21)
    info = json.loads((V21 / "meta" / "info.json").read_text())
    present = sorted(int(p.stem.split("_")[1]) for p in (V21 / "data").glob("*/*.parquet"))
    assert ds.format == "lerobot-v2.1" and isinstance(ds, LeRobotDataset)
    assert ds.episode_indices == present and ds.declared_episodes == info["total_episodes"]
    assert ds.robot == info["robot_type"] and ds.declared_rate == info["fps"]
    tasks = {
        json.loads(x)["task_index"]: json.loads(x)["task"]
        for x in (V21 / "meta" / "tasks.jsonl").read_text().splitlines()
    }
    ep_stats = {
        json.loads(x)["episode_index"]: json.loads(x)["stats"]
        for x in (V21 / "meta" / "episodes_stats.jsonl").read_text().splitlines()
    }
    for i in present:
        t = pq.read_table(V21 / "data" / "chunk-000" / f"episode_{i:06d}.parquet")
        ep = ds.episode(i)
        for key in ("observation.state", "action"):
            np.testing.assert_array_equal(ep[key].values, column(t, key).astype(np.float32))
            assert ep[key].names == info["features"][key]["names"][0]
        ts = column(t, "timestamp").astype(np.float64)
        for s in ep.streams.values():
            assert s.timestamps.dtype == np.float64 and s.time_unit == "s"
            np.testing.assert_array_equal(s.timestamps, ts)
        np.testing.assert_allclose(ts, column(t, "frame_index") / info["fps"], atol=1e-5)
        md = ep.metadata
        assert md.task == tasks[int(column(t, "task_index")[0])]
        assert md.declared_rate == info["fps"] and md.timestamps_derived is False
        np.testing.assert_allclose(
            md.episode_stats["action"]["mean"], ep_stats[i]["action"]["mean"]
        )
        assert ep[CAM].kind == "video" and ep[CAM].shape == (480, 640, 3)
    # dataset stats aggregated from all 100 episodes' stats (no stats.json in this sample)
    n = np.array([ep_stats[i]["action"]["count"][0] for i in sorted(ep_stats)], float)
    means = np.array([ep_stats[i]["action"]["mean"] for i in sorted(ep_stats)])
    np.testing.assert_allclose(ds.stats["action"]["mean"], (n[:, None] * means).sum(0) / n.sum())
    mins = np.array([ep_stats[i]["action"]["min"] for i in sorted(ep_stats)])
    np.testing.assert_array_equal(ds.stats["action"]["min"], mins.min(0))


@needs_data
def test_lerobot_v21_video_window_equals_pyav():
    ep = open_dataset(V21).episode(1)
    cam = ep[CAM]
    path = V21 / "videos" / "chunk-000" / CAM / "episode_000001.mp4"
    assert cam.video.info.codec == "av1" and cam.video.info.num_frames == len(cam)
    # AV1: never DALI (not decodable on the GPU with DALI 2.4, nor on the CPU)
    assert cam.video.backend.name == "pyav"
    assert choose_backend("av1", gpus=1).name == "pyav"
    ts, frames = cam.window(1.0, 1.2)
    idx = np.nonzero((cam.timestamps >= 1.0) & (cam.timestamps <= 1.2))[0]
    np.testing.assert_array_equal(ts, cam.timestamps[idx])
    scattered = [len(cam) - 1, 0, 200, 201, 200]
    ref = pyav_frames(path, list(idx) + scattered)
    np.testing.assert_array_equal(frames, ref[: len(idx)])
    np.testing.assert_array_equal(cam.read(0, 0).shape, (0, 480, 640, 3))
    np.testing.assert_array_equal(cam.loader(np.array(scattered)), ref[len(idx) :])


@needs_data
def test_lerobot_v21_bad_inputs():
    ds = open_dataset(V21)
    with pytest.raises(
        DatasetNotFoundError,
        match=r"episode 0 camera 'observation\.images\.cam_high'"
        r".*episode_000000\.mp4 is missing",
    ):
        ds.episode(0)[CAM].read(0, 2)
    with pytest.raises(
        DatasetNotFoundError, match=r"episode 5: data file .*episode_000005\.parquet " r"is missing"
    ):
        ds.episode(5)
    with pytest.raises(
        EpisodeIndexError,
        match=r"episode 100 is out of range; the metadata lists "
        r"episodes 0-99, of which 0-1 have data",
    ) as e:
        ds.episode(100)
    assert isinstance(e.value, IndexError) and isinstance(e.value, KeyError)
    ep = ds.episode(1)
    with pytest.raises(
        MissingKeyError,
        match=r"episode 1 has no camera 'observation\.images\.wrist'"
        r"; cameras: observation\.images\.cam_high",
    ) as e:
        ep.camera("observation.images.wrist")
    assert isinstance(e.value, KeyError)
    with pytest.raises(KeyError, match=r"has no stream 'nope'; available: observation\.state"):
        ep["nope"]
    with pytest.raises(
        MissingKeyError, match=r"'observation\.images\.wrist' is not a video feature"
    ):
        ds.video_file(1, "observation.images.wrist")
    with pytest.raises(EpisodeIndexError, match=r"samples 390:400 are outside 0:393"):
        ep["action"].read(390, 400)


@needs_data
def test_lerobot_video_frame_count_disagrees_with_table(tmp_path):
    root = lerobot_copy(tmp_path, V21, link=("data",))
    vid = root / "videos" / "chunk-000" / CAM / "episode_000001.mp4"
    vid.parent.mkdir(parents=True)
    with VideoWriter(vid, "h264", 30, 64, 48) as w:
        w.write(np.zeros((50, 48, 64, 3), np.uint8))
    cam = open_dataset(root).episode(1)[CAM]
    with pytest.raises(
        CorruptDatasetError,
        match=r"episode 1 camera 'observation\.images\.cam_high'"
        r": video .*episode_000001\.mp4 has 50 frames but the table needs frames "
        r"0\.\.392 \(393 rows\)",
    ):
        cam.read(0, 1)
    (vid.parent / "episode_000001.mp4").write_bytes(b"not a video at all")
    with pytest.raises(CorruptDatasetError, match=r"episode_000001\.mp4 is not a readable video"):
        open_dataset(root).episode(1)[CAM].read(0, 1)


@needs_data
def test_lerobot_corrupt_and_unsupported(tmp_path):
    root = lerobot_copy(tmp_path, V21, link=("videos",))
    shutil.copytree(V21 / "data", root / "data")
    bad = root / "data" / "chunk-000" / "episode_000001.parquet"
    bad.chmod(0o644)
    bad.write_bytes(b"PAR1 garbage")
    ds = open_dataset(root)
    with pytest.raises(
        CorruptDatasetError,
        match=r"episode_000001\.parquet: episode 1 data is not a " r"readable parquet file",
    ):
        ds.episode(1)
    info = root / "meta" / "info.json"
    text = info.read_text()
    info.write_text(text.replace('"v2.1"', '"v1.6"'))
    with pytest.raises(UnknownFormatError, match=r"codebase_version 'v1\.6' is not supported"):
        open_dataset(root)
    info.write_text(text[: len(text) // 2])
    with pytest.raises(CorruptDatasetError, match=r"meta/info\.json: invalid JSON at line"):
        open_dataset(root)
    info.unlink()
    with pytest.raises(DatasetNotFoundError, match=r"info\.json: missing; a LeRobot dataset needs"):
        LeRobotDataset(root)


@needs_data
def test_lerobot_image_features_decoded_by_dali(tmp_path):
    """LeRobot ``image`` features: encoded stills in the parquet, here Bridge's real JPEGs."""
    import pyarrow as pa

    rlds = open_dataset(RLDS)
    _, _, payload = rlds._record(0)
    jpegs = parse_example(payload)["steps/observation/image_0"]
    n = len(jpegs)
    root = tmp_path / "stills"
    (root / "meta").mkdir(parents=True)
    (root / "data" / "chunk-000").mkdir(parents=True)
    feats = {
        "observation.image": {
            "dtype": "image",
            "shape": [64, 64, 3],
            "names": ["height", "width", "channel"],
        },
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    }
    info = {"codebase_version": "v2.1", "fps": 5, "features": feats, "total_episodes": 1}
    (root / "meta" / "info.json").write_text(json.dumps(info))
    (root / "meta" / "episodes.jsonl").write_text(
        json.dumps({"episode_index": 0, "tasks": ["stills"], "length": n}) + "\n"
    )
    table = pa.table(
        {
            "observation.image": pa.array(
                [{"bytes": b, "path": f"{k}.jpg"} for k, b in enumerate(jpegs)]
            ),
            "timestamp": pa.array(np.arange(n, dtype=np.float32) / 5),
            "episode_index": pa.array(np.zeros(n, np.int64)),
        }
    )
    pq.write_table(table, root / "data" / "chunk-000" / "episode_000000.parquet")
    ep = open_dataset(root).episode(0)
    cam = ep.camera("observation.image")
    assert cam.kind == "image" and not cam.is_loaded
    np.testing.assert_array_equal(cam.values, rlds.episode(0)["observation.image_0"].values)
    np.testing.assert_array_equal(cam.read(3, 5), cam.values[3:5])


@needs_data
def test_lerobot_v30_values_boundaries_and_stats():
    ds = open_dataset(V30)
    table = pq.read_table(V30 / "data" / "chunk-000" / "file-000.parquet")
    meta = pq.read_table(V30 / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    stats = json.loads((V30 / "meta" / "stats.json").read_text())
    assert ds.format == "lerobot-v3.0" and ds.episode_indices == [m["episode_index"] for m in meta]
    ep_col, idx_col = column(table, "episode_index"), column(table, "index")
    for m in meta:
        i = m["episode_index"]
        rows = np.nonzero(ep_col == i)[0]
        np.testing.assert_array_equal(
            idx_col[rows], np.arange(m["dataset_from_index"], m["dataset_to_index"])
        )
        ep = ds.episode(i)
        for key in ("action", "observation.state"):
            np.testing.assert_array_equal(
                ep[key].values, column(table, key)[rows].astype(np.float32)
            )
        np.testing.assert_array_equal(
            ep["action"].timestamps, column(table, "timestamp")[rows].astype(np.float64)
        )
        assert ep.metadata.task == m["tasks"][0]
        np.testing.assert_allclose(
            ep.metadata.episode_stats["action"]["q50"], m["stats/action/q50"]
        )
        front = ep["observation.images.front"]
        off = m["videos/observation.images.front/from_timestamp"]
        np.testing.assert_allclose(front.video.frame_times, off + ep["action"].timestamps)
    np.testing.assert_allclose(
        ds.stats["observation.state"]["std"], stats["observation.state"]["std"]
    )
    with pytest.raises(
        DatasetNotFoundError,
        match=r"episode 2 camera 'observation\.images\.top': "
        r"video file .*observation\.images\.top/chunk-000/file-000\.mp4 is missing",
    ):
        ds.episode(2)["observation.images.top"].read(0, 1)
    with pytest.raises(
        EpisodeIndexError,
        match=r"episode 4 is out of range; this lerobot-v3\.0 " r"dataset has episodes 0-3",
    ):
        ds.episode(4)


@needs_data
def test_lerobot_v30_concatenated_video_offsets(tmp_path):
    """v3.0 videos hold all episodes back to back; each episode starts at its from_timestamp."""
    root = lerobot_copy(tmp_path, V30)
    total = pq.read_metadata(V30 / "data" / "chunk-000" / "file-000.parquet").num_rows
    frames = np.zeros((total, 48, 64, 3), np.uint8)
    for k in range(total):  # a distinct pattern per frame
        frames[k, :, : (k % 64) + 1, 0] = 255
        frames[k, : (k // 64) % 48 + 1, :, 2] = 200
    for key in ("observation.images.front", "observation.images.top"):
        p = root / "videos" / key / "chunk-000" / "file-000.mp4"
        p.parent.mkdir(parents=True)
        with VideoWriter(p, "h264", 30, 64, 48) as w:
            w.write(frames)
    ds = open_dataset(root)
    ep = ds.episode(2)
    m = ds.episodes_meta[2]
    cam = ep["observation.images.front"]
    first = int(round(m["videos/observation.images.front/from_timestamp"] * 30))
    assert first == m["dataset_from_index"]
    picks = [0, 1, len(cam) // 2, len(cam) - 1]
    ref = pyav_frames(
        root / "videos" / "observation.images.front" / "chunk-000" / "file-000.mp4",
        [first + k for k in picks],
    )
    np.testing.assert_array_equal(cam.loader(np.array(picks)), ref)


@needs_data
def test_groot_modality_view(tmp_path):
    root = lerobot_copy(tmp_path, V21)
    mod = {
        "state": {
            "left_arm": {"start": 0, "end": 7},
            "right_arm": {"start": 7, "end": 14, "rotation_type": "euler_angles_rpy"},
            "hands": {"start": 14, "end": 26},
        },
        "action": {
            "arms": {"start": 0, "end": 14, "absolute": False},
            "hands": {"start": 14, "end": 26},
        },
        "video": {"ego_view": {"original_key": CAM}},
        "annotation": {"human.task_description": {"original_key": "task_index"}},
    }
    (root / "meta" / "modality.json").write_text(json.dumps(mod))
    raw = open_dataset(root, modality="raw").episode(1)
    ds = open_dataset(root)
    ep = ds.episode(1)
    assert ds.modality is not None and "observation.state" not in ep and "action" not in ep
    np.testing.assert_array_equal(
        ep["state.right_arm"].values, raw["observation.state"].values[:, 7:14]
    )
    np.testing.assert_array_equal(ep["action.arms"].values, raw["action"].values[:, :14])
    assert ep["state.right_arm"].attrs["rotation_type"] == "euler_angles_rpy"
    assert ep["action.arms"].attrs["absolute"] is False and ep["action.hands"].attrs["absolute"]
    assert ep["state.hands"].names == raw["observation.state"].names[14:26]
    np.testing.assert_array_equal(
        ep.metadata.stats["state.hands"]["mean"], ds.stats["observation.state"]["mean"][14:26]
    )
    np.testing.assert_array_equal(ep["video.ego_view"].read(3, 5), raw[CAM].read(3, 5))
    assert set(ep["annotation.human.task_description"].values) == {raw.metadata.task}
    mod["state"]["hands"]["end"] = 30
    (root / "meta" / "modality.json").write_text(json.dumps(mod))
    with pytest.raises(
        CorruptDatasetError,
        match=r"modality\.json: state\.hands slice \[14:30\] "
        r"does not fit 'observation\.state' of size 26",
    ):
        open_dataset(root)
    mod["state"]["hands"] = {"start": 14, "end": 26, "original_key": "observation.joints"}
    (root / "meta" / "modality.json").write_text(json.dumps(mod))
    with pytest.raises(
        MissingKeyError,
        match=r"state\.hands refers to 'observation\.joints', which " r"is not a feature",
    ):
        open_dataset(root)
    (root / "meta" / "modality.json").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"modality\.json: missing; modality='groot'"):
        open_dataset(root, modality="groot")


# --------------------------------------------------------------------------------------- RLDS
def _scan(path: Path) -> list:
    """Independent TFRecord framing walk: (offset, size) per record."""
    out, off, data = [], 0, path.read_bytes()
    while off < len(data):
        (n,) = struct.unpack("<Q", data[off : off + 8])
        out.append((off, 16 + n))
        off += 16 + n
    return out


@needs_data
def test_rlds_values_match_dali_tfrecord_reader(tmp_path):
    from nvidia.dali import fn, pipeline_def

    ds = open_dataset(RLDS)
    assert isinstance(ds, RLDSDataset) and ds.format == "rlds"
    info = json.loads((ds.path / "dataset_info.json").read_text())
    n_eps = int(info["splits"][0]["shardLengths"][0])
    assert len(ds) == n_eps
    kw = ds.dali_reader_kwargs(tmp_path / "idx")
    lines = Path(kw["index_path"][0]).read_text().split()
    assert [(int(a), int(b)) for a, b in zip(lines[::2], lines[1::2], strict=False)] == _scan(
        ds.shards[0]
    )
    keys = ["steps/observation/state", "steps/action", "steps/reward", "steps/is_first"]

    @pipeline_def(batch_size=n_eps, num_threads=2, device_id=None)
    def pipe():
        out = fn.readers.tfrecord(**kw, random_shuffle=False, name="r")
        return tuple(out[k] for k in keys)

    p = pipe()
    p.build()
    outs = p.run()
    for i in range(n_eps):
        ep = ds.episode(i)
        n = len(ep["action"])
        for k, o in zip(keys, outs, strict=False):
            name = k[len("steps/") :].replace("/", ".")
            ref = np.array(o[i]).reshape((n,) + ep[name].shape)
            np.testing.assert_array_equal(ep[name].values, ref.astype(ep[name].dtype))
        np.testing.assert_array_equal(ep["action"].timestamps, np.arange(n) / 5.0)
        assert ep.metadata.timestamps_derived and ep["observation.state"].timestamps_derived
        assert ep.metadata.task == ep["language_instruction"].values[0]
    assert ep.metadata.declared_rate == 5.0


@needs_data
def test_rlds_images_decoded_by_dali_match_pyav():
    ds = open_dataset(RLDS)
    ep = ds.episode(3)
    _, _, payload = ds._record(3)
    jpegs = parse_example(payload)["steps/observation/image_0"]
    cam = ep.camera("observation.image_0")
    assert cam.kind == "image" and not cam.is_loaded
    got = cam.values
    ref = np.stack(
        [
            next(av.open(io.BytesIO(b), format="jpeg_pipe").decode(video=0)).to_ndarray(
                format="rgb24"
            )
            for b in jpegs
        ]
    )
    assert got.shape == ref.shape == (len(jpegs), 64, 64, 3)
    mse = np.mean((got.astype(float) - ref) ** 2)
    assert 10 * np.log10(255**2 / mse) > 30  # two JPEG decoders: rounding differences only
    np.testing.assert_array_equal(cam.read(2, 4), got[2:4])


def _rlds_copy(tmp_path: Path) -> Path:
    src = RLDS / "bridge_dataset" / "1.0.0"
    dst = tmp_path / "bridge_dataset" / "1.0.0"
    dst.mkdir(parents=True)
    for f in src.iterdir():
        shutil.copy(f, dst / f.name)
        (dst / f.name).chmod(0o644)
    return dst


@needs_data
def test_rlds_bad_inputs(tmp_path):
    root = _rlds_copy(tmp_path)
    shard = next(root.glob("*.tfrecord*"))
    recs = _scan(shard)
    good = shard.read_bytes()
    data = bytearray(good)
    data[recs[3][0] + 2] ^= 0xFF  # length field of record 3
    shard.write_bytes(bytes(data))
    ds = open_dataset(root.parent)
    with pytest.raises(
        CorruptDatasetError, match=rf"record 3 at byte {recs[3][0]}: length checksum " r"mismatch"
    ):
        ds.episode(4)
    data = bytearray(good)
    data[recs[2][0] + 500] ^= 0xFF  # payload of record 2
    shard.write_bytes(bytes(data))
    ds = open_dataset(root.parent)
    ds.episode(1)
    with pytest.raises(
        CorruptDatasetError,
        match=rf"episode 2 \(record 2 at byte {recs[2][0]}\): " r"payload checksum mismatch",
    ):
        ds.episode(2)
    shard.write_bytes(good[: recs[-1][0] + 100])
    with pytest.raises(CorruptDatasetError, match=r"record 24 at byte \d+: truncated"):
        open_dataset(root).episode(0)
    with pytest.raises(
        EpisodeIndexError,
        match=r"episode 25 is out of range; this rlds dataset has " r"episodes 0-24",
    ):
        open_dataset(root).episode(25)
    with pytest.raises(DatasetNotFoundError, match=r"no split 'test'; splits: train, val"):
        RLDSDataset(root, split="test")
    with pytest.raises(
        DatasetNotFoundError,
        match=r"bridge_dataset-val\.tfrecord-00000-of-00001: "
        r"TFRecord shard of split 'val' is missing",
    ):
        RLDSDataset(root, split="val")
    shard.write_bytes(good)
    slow = RLDSDataset(root, rate=7.5).episode(0)
    np.testing.assert_allclose(slow["action"].timestamps, np.arange(len(slow["action"])) / 7.5)
    text = (root / "dataset_info.json").read_text()
    (root / "dataset_info.json").write_text(text.replace('"bridge_dataset"', '"my_robot_data"'))
    with pytest.raises(
        ValueError, match=r"control rate of dataset 'my_robot_data' is not known; " r"pass rate=HZ"
    ):
        RLDSDataset(root)
    (root / "dataset_info.json").write_text(text)
    shard.unlink()
    with pytest.raises(DatasetNotFoundError, match=r"TFRecord shard of split 'train' is missing"):
        RLDSDataset(root, rate=5)


# --------------------------------------------------------------------------------------- robomimic
@pytest.mark.parametrize(
    "rel", ["lift/panda/demo.hdf5", "door/panda/demo.hdf5", "SawyerLift/demo.hdf5"]
)
@needs_data
def test_robomimic_values_equal_h5py(rel):
    path = ROBOSUITE / rel
    ds = open_dataset(path)
    assert ds.format == "robomimic"
    with h5py.File(path, "r") as f:
        demos = sorted(f["data"].keys(), key=lambda s: int(s.split("_")[1]))
        env_info = json.loads(f["data"].attrs.get("env_info", "{}"))
        version = f["data"].attrs["repository_version"]
        assert len(ds) == len(demos)
        for i, name in enumerate(demos):
            ep = ds.episode(i)
            g = f["data"][name]
            expect = {k for k in g.keys() if g[k].shape[1] > 0}
            assert set(ep.keys()) == expect
            for k in expect:
                np.testing.assert_array_equal(ep[k].values, g[k][()])
            n = g["states"].shape[0]
            np.testing.assert_allclose(ep["states"].timestamps, np.arange(n) / ds.declared_rate)
            assert ep.metadata.timestamps_derived and ep.metadata.attrs["demo"] == name
            assert ep.metadata.attrs["skipped"] == sorted(set(g.keys()) - expect)
        states = np.concatenate([f["data"][d]["states"][()] for d in demos])
    stats = ds.compute_stats()
    np.testing.assert_allclose(stats["states"]["mean"], states.mean(0))
    np.testing.assert_allclose(stats["states"]["std"], states.std(0))
    assert ds.robot == (env_info.get("robots") or "Sawyer")
    assert ds.rate_source == f"robosuite {version} default"
    assert ds.declared_rate == (100.0 if version.startswith("0.") else 20.0)


@needs_data
def test_robomimic_layout_obs_groups_rate_and_masks(tmp_path):
    """robomimic's own layout (obs/ groups, env_args, masks) on a file built here."""
    rng = np.random.default_rng(0)
    path = tmp_path / "image.hdf5"
    lengths = {"demo_2": 6, "demo_10": 4}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        env = {"env_name": "Lift", "env_kwargs": {"control_freq": 15, "robots": ["Panda"]}}
        data.attrs["env_args"] = json.dumps(env)
        for name, n in lengths.items():
            g = data.create_group(name)
            g.attrs["num_samples"] = n
            g["actions"] = rng.standard_normal((n, 7))
            g["rewards"] = rng.random(n)
            g["obs/agentview_image"] = rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8)
            g["obs/eef_pos"] = rng.standard_normal((n, 3))
            g["next_obs/eef_pos"] = rng.standard_normal((n, 3))
        f["mask/train"] = np.array([b"demo_2"])
    ds = open_dataset(path)
    assert ds.demos == ["demo_2", "demo_10"] and ds.masks == {"train": ["demo_2"]}
    assert ds.declared_rate == 15.0 and ds.rate_source == "control_freq in the file"
    assert ds.robot == "Panda" and ds.env == "Lift"
    with h5py.File(path, "r") as f:
        for i, name in enumerate(ds.demos):
            ep = ds.episode(i)
            g = f["data"][name]
            assert ep.camera("obs.agentview_image").kind == "image"
            for key in (
                "actions",
                "rewards",
                "obs/agentview_image",
                "obs/eef_pos",
                "next_obs/eef_pos",
            ):
                np.testing.assert_array_equal(ep[key.replace("/", ".")].values, g[key][()])
            np.testing.assert_allclose(ep["actions"].timestamps, np.arange(lengths[name]) / 15)


@needs_data
def test_robomimic_bad_inputs(tmp_path):
    fake = tmp_path / "demo.hdf5"
    fake.write_text("not hdf5")
    with pytest.raises(CorruptDatasetError, match=r"demo\.hdf5: not a readable HDF5 file"):
        open_dataset(fake)
    other = tmp_path / "other.hdf5"
    with h5py.File(other, "w") as f:
        f.create_dataset("images", data=np.zeros((2, 2)))
    with pytest.raises(
        CorruptDatasetError,
        match=r"other\.hdf5: no 'data' group; not a "
        r"robomimic/robosuite file \(top level: images\)",
    ):
        open_dataset(other)
    with pytest.raises(
        UnknownFormatError, match=r"expected one \.hdf5 file, found demo\.hdf5, " r"other\.hdf5"
    ):
        open_dataset(tmp_path)
    with pytest.raises(
        EpisodeIndexError,
        match=r"episode 1 is out of range; this robomimic dataset " r"has episodes 0",
    ):
        open_dataset(ROBOSUITE / "lift" / "panda" / "demo.hdf5").episode(1)


# --------------------------------------------------------------------------------------- CALVIN
def _calvin_episode(tmp_path: Path, ranges=((100, 103),), ids=(100, 101, 102, 103)) -> tuple:
    frames = sorted(CALVIN.glob("episode_*.npz"))
    sources = {}
    for k, fid in enumerate(ids):
        src = frames[k % len(frames)]
        (tmp_path / f"episode_{fid:07d}.npz").symlink_to(src)
        sources[fid] = src
    np.save(tmp_path / "ep_start_end_ids.npy", np.array(ranges, dtype=np.int64))
    return sources


@needs_data
def test_calvin_episode_values_equal_numpy(tmp_path):
    sources = _calvin_episode(tmp_path, ranges=((100, 101), (102, 103)))
    (tmp_path / "lang_annotations").mkdir()
    np.save(
        tmp_path / "lang_annotations" / "auto_lang_ann.npy",
        {"info": {"indx": [(101, 102)]}, "language": {"ann": ["open the drawer"]}},
        allow_pickle=True,
    )
    ds = open_dataset(tmp_path)
    assert ds.format == "calvin" and len(ds) == 2 and ds.episodes_from == "ep_start_end_ids.npy"
    for i, (a, b) in enumerate([(100, 101), (102, 103)]):
        ep = ds.episode(i)
        refs = [np.load(sources[fid]) for fid in range(a, b + 1)]
        for key in refs[0].files:
            np.testing.assert_array_equal(ep[key].values, np.stack([r[key] for r in refs]))
        np.testing.assert_allclose(ep["robot_obs"].timestamps, np.arange(b - a + 1) / 30.0)
        assert ep.metadata.timestamps_derived and ep.metadata.language == ["open the drawer"]
        assert ep.camera("rgb_static").shape == (200, 200, 3)


@needs_data
def test_calvin_without_ids_file_and_bad_inputs(tmp_path):
    ds = open_dataset(CALVIN)
    assert len(ds) == len(list(CALVIN.glob("episode_*.npz")))
    assert ds.episodes_from.startswith("runs of consecutive frame ids")
    np.testing.assert_array_equal(
        ds.episode(0)["actions"].values[0], np.load(sorted(CALVIN.glob("*.npz"))[0])["actions"]
    )
    _calvin_episode(tmp_path, ranges=((100, 105),))
    with pytest.raises(
        DatasetNotFoundError,
        match=r"episode_0000104\.npz: episode 0 \(frames " r"100\.\.105\): frame 104 is missing",
    ):
        open_dataset(tmp_path).episode(0)
    (tmp_path / "episode_0000101.npz").unlink()
    (tmp_path / "episode_0000101.npz").write_bytes(b"PK\x03\x04 broken")
    np.save(tmp_path / "ep_start_end_ids.npy", np.array([[100, 103]]))
    with pytest.raises(
        CorruptDatasetError,
        match=r"episode_0000101\.npz: episode 0: frame 101 is " r"not a readable npz",
    ):
        open_dataset(tmp_path).episode(0)
    np.save(tmp_path / "ep_start_end_ids.npy", np.array([[103, 100]]))
    with pytest.raises(
        CorruptDatasetError,
        match=r"ep_start_end_ids\.npy: episode 0 ends \(100\) " r"before it starts \(103\)",
    ):
        open_dataset(tmp_path)


# --------------------------------------------------------------------------------------- factory
@needs_data
def test_factory_detects_every_sample_and_rejects_bad_paths(tmp_path):
    assert (
        detect_format(V21) == "lerobot" and detect_format(V30 / "meta" / "info.json") == "lerobot"
    )
    assert detect_format(RLDS) == "rlds" and detect_format(CALVIN) == "calvin"
    assert detect_format(ROBOSUITE / "door" / "panda") == "robomimic"
    with pytest.raises(DatasetNotFoundError, match=r"nowhere: no such file or folder"):
        open_dataset(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(
        UnknownFormatError, match=r"unknown dataset format; looked for meta/info\.json"
    ):
        open_dataset(tmp_path)
    with pytest.raises(UnknownFormatError, match=r"notes\.txt: unknown dataset file"):
        open_dataset(tmp_path / "notes.txt")
    with pytest.raises(UnknownFormatError, match=r"format 'parquet' is not one of lerobot, rlds"):
        open_dataset(V21, format="parquet")
    with pytest.raises(
        DatasetNotFoundError, match=r"no features\.json \(RLDS/TFDS dataset folder\)"
    ):
        open_dataset(V21, format="rlds")
    with pytest.raises(UnknownFormatError, match=r"expected one \.hdf5 file, found none"):
        open_dataset(V21, format="robomimic")


# --------------------------------------------------------------------------------------- video
@needs_data
def test_dali_cpu_video_decoder_matches_pyav(tmp_path):
    src = V21 / "videos" / "chunk-000" / CAM / "episode_000001.mp4"
    frames = pyav_frames(src, range(24))[:, ::2, ::2]
    vp9 = tmp_path / "cam.webm"
    with VideoWriter(vp9, "vp9", 30, 320, 240) as w:
        w.write(frames)
    times = np.arange(24) / 30
    dali = VideoSource(vp9, times, 30, "vp9 test", backend="dali-cpu")
    cpu = VideoSource(vp9, times, 30, "vp9 test", backend="pyav")
    assert dali.info.codec == "vp9" and dali.backend.name == "dali-cpu"
    d_all, c_all = dali.decode(), cpu.decode()
    np.testing.assert_array_equal(c_all, pyav_frames(vp9, range(24)))
    diff = np.abs(d_all.astype(int) - c_all)
    assert d_all.shape == c_all.shape and diff.mean() < 3  # YUV->RGB conversion rounding only
    np.testing.assert_array_equal(dali.decode([20, 3, 3]), d_all[[20, 3, 3]])


def test_backend_choice_rules(monkeypatch):
    assert choose_backend("h264", gpus=1).name == "dali-gpu"
    assert choose_backend("hevc", gpus=2).name == "dali-gpu"
    assert choose_backend("libdav1d", gpus=1).name == "pyav"
    assert choose_backend("h264", gpus=0).reason.startswith("no GPU")
    with pytest.raises(ValueError, match=r"'dali-gpu' needs a CUDA GPU"):
        choose_backend("h264", "dali-gpu", gpus=0)
    with pytest.raises(ValueError, match=r"'dali-cpu' cannot decode av1"):
        choose_backend("av1", "dali-cpu", gpus=0)
    monkeypatch.setenv("ROBOCACHE_VIDEO_BACKEND", "pyav")
    assert choose_backend("h264", gpus=1).name == "pyav"
    assert gpu_count() >= 0


# --------------------------------------------------------------------------------------- model
def test_stream_model_windows_units_rates_and_gaps():
    ns = np.array([0, 10, 20, 30, 530, 540], np.int64) * 1_000_000
    s = Stream.from_array("imu", ns, np.arange(12, dtype=np.float32).reshape(6, 2))
    assert s.time_unit == "ns" and s.timestamps.dtype == np.int64
    np.testing.assert_allclose(s.seconds(), ns * 1e-9)
    t, v = s.window(10_000_000, 30_000_000)
    np.testing.assert_array_equal(t, ns[1:4])
    np.testing.assert_array_equal(v, s.values[1:4])
    r = measure_rate(ns)
    dt = np.diff(ns * 1e-9)
    assert r.median_hz == pytest.approx(1 / np.median(dt)) and r.jitter_s == pytest.approx(dt.std())
    assert find_gaps(ns, 0.1) == [(3, pytest.approx(0.03), pytest.approx(0.5))]
    with pytest.raises(ValueError, match=r"stream 'bad': 2 values but 3 timestamps"):
        Stream.from_array("bad", np.arange(3.0), np.zeros((2, 1)))
