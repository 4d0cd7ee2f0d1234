"""RobotDataLoader on a mixture of the real samples in ../shared/data/datasets (DALI CPU pipelines):
window contents against a direct computation from the source files (pyarrow, h5py, DALI's own
TFRecord reader, PyAV) interpolated with numpy, rates, masks, normalisation, dimension padding,
sharding, resume, augmentations, and every bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

import robocache
from robocache import DatasetSpec, RobotDataLoader
from robocache.datasets import CorruptDatasetError, DatasetNotFoundError, MissingKeyError, open_dataset

from conftest import shared_data

DATA = shared_data() / "datasets"
G1, SO101, BRIDGE = DATA / "lerobot_v21_unitree_g1", DATA / "lerobot_v30_so101", DATA / "rlds_bridge"
LIFT = DATA / "robosuite_hdf5" / "lift" / "panda" / "demo.hdf5"
SAWYER = DATA / "robosuite_hdf5" / "SawyerLift" / "demo.hdf5"
CAM = "observation.images.cam_high"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real data folder {DATA} is absent")
MIX = [str(G1), str(SO101), str(BRIDGE), str(LIFT)]


def batches(loader, limit=None):
    out = []
    for k, b in enumerate(loader):
        out.append({n: v.numpy() for n, v in b.items()})
        if limit is not None and k + 1 >= limit:
            break
    return out


def cat(bs):
    return {k: np.concatenate([b[k] for b in bs]) for k in bs[0]}


# --------------------------------------------------------------------------------------- references
def pooled(stats_rows):
    """Dataset mean/std from per-episode stats (count-weighted mean, pooled variance)."""
    n = np.array([float(np.sum(r["count"])) for r in stats_rows])
    mu = np.stack([np.asarray(r["mean"], float) for r in stats_rows])
    sd = np.stack([np.asarray(r["std"], float) for r in stats_rows])
    m = (n[:, None] * mu).sum(0) / n.sum()
    var = (n[:, None] * (sd**2 + (mu - m) ** 2)).sum(0) / n.sum()
    return {"mean": m, "std": np.sqrt(var), "min": np.min([r["min"] for r in stats_rows], 0), "max": np.max([r["max"] for r in stats_rows], 0)}


def g1_reference():
    eps = {}
    for i in (0, 1):
        t = pq.read_table(G1 / "data" / "chunk-000" / f"episode_{i:06d}.parquet").to_pydict()
        ts = np.asarray(t["timestamp"], np.float32).astype(np.float64)
        eps[i] = (ts - ts[0], np.asarray(t["observation.state"], np.float64), ts - ts[0], np.asarray(t["action"], np.float64))
    rows = [json.loads(line)["stats"] for line in (G1 / "meta" / "episodes_stats.jsonl").read_text().splitlines() if line.strip()]
    return eps, {g: pooled([r[k] for r in rows]) for g, k in (("state", "observation.state"), ("action", "action"))}


def so101_reference():
    t = pq.read_table(SO101 / "data" / "chunk-000" / "file-000.parquet").to_pydict()
    e = np.asarray(t["episode_index"])
    eps = {}
    for i in np.unique(e):
        sel = e == i
        ts = np.asarray(t["timestamp"], np.float32)[sel].astype(np.float64)
        eps[int(i)] = (ts - ts[0], np.asarray(t["observation.state"], np.float64)[sel], ts - ts[0], np.asarray(t["action"], np.float64)[sel])
    st = json.loads((SO101 / "meta" / "stats.json").read_text())
    return eps, {g: {s: np.asarray(st[k][s], float) for s in ("mean", "std", "min", "max")} for g, k in (("state", "observation.state"), ("action", "action"))}


def computed(eps):
    out = {}
    for g, j in (("state", 1), ("action", 3)):
        v = np.concatenate([e[j] for e in eps.values()])
        out[g] = {"mean": v.mean(0), "std": v.std(0), "min": v.min(0), "max": v.max(0)}
    return out


def bridge_reference(tmp_path):
    """Bridge steps through DALI's own TFRecord reader (not robocache's parser); timestamps k / 5 Hz."""
    from nvidia.dali import fn, pipeline_def

    ds = open_dataset(BRIDGE)
    kw = ds.dali_reader_kwargs(tmp_path / "idx")
    keys = ["steps/observation/state", "steps/action"]

    @pipeline_def(batch_size=len(ds), num_threads=2, device_id=None)
    def pipe():
        out = fn.readers.tfrecord(**kw, random_shuffle=False, name="r")
        return tuple(out[k] for k in keys)

    p = pipe()
    p.build()
    s, a = p.run()
    eps = {}
    for i in range(len(ds)):
        sv, avals = np.array(s[i]).reshape(-1, 7).astype(np.float64), np.array(a[i]).reshape(-1, 7).astype(np.float64)
        ts = np.arange(len(sv)) / 5.0
        eps[i] = (ts, sv, ts, avals)
    return eps, computed(eps)


def lift_reference():
    with h5py.File(LIFT, "r") as f:
        s, a = f["data/demo_1/states"][()], f["data/demo_1/actions"][()]
    ts = np.arange(len(s)) / 20.0
    eps = {0: (ts, s, ts, a)}
    return eps, computed(eps)


def interp(ts, v, t):
    return np.stack([np.interp(t, ts, v[:, c]) for c in range(v.shape[1])], axis=1)


def check_against_reference(b, refs, f, to, ta, norm="mean_std"):
    """Every sample of a batch dict equals the direct computation; returns samples checked per dataset."""
    seen = np.zeros(len(refs), int)
    for k in range(len(b["index"])):
        d, ep, t0 = int(b["dataset_index"][k]), int(b["episode_index"][k]), float(b["anchor_time"][k])
        eps, st = refs[d]
        sts, sv, ats, av_ = eps[ep]
        assert np.any(np.abs(sts - t0) < 1e-9), "anchors are recorded state samples"
        obs_t = t0 + (np.arange(to) - (to - 1)) / f
        act_t = t0 + np.arange(ta) / f
        for g, tt, ts, v in (("state", obs_t, sts, sv), ("action", act_t, ats, av_)):
            ref = interp(ts, v, tt)
            if norm == "mean_std":
                sd = np.asarray(st[g]["std"])
                ref = (ref - st[g]["mean"]) / np.where(sd > 1e-8, sd, 1.0)
            elif norm == "min_max":
                lo, hi = np.asarray(st[g]["min"]), np.asarray(st[g]["max"])
                ref = np.where(hi - lo > 1e-8, 2 * (ref - lo) / np.where(hi - lo > 1e-8, hi - lo, 1) - 1, ref - (lo + hi) / 2)
            dim = v.shape[1]
            got = b[g][k]
            np.testing.assert_allclose(got[:, :dim], ref, rtol=2e-5, atol=2e-5 * max(1.0, float(np.abs(ref).max())))
            assert np.all(got[:, dim:] == 0) and b[g + "_dim_mask"][k].sum() == dim and b[g + "_dim_mask"][k][:dim].all()
            np.testing.assert_array_equal(b[g + "_mask"][k], (tt >= ts[0] - 1e-9) & (tt <= ts[-1] + 1e-9))
            np.testing.assert_allclose(b[g + "_timestamps"][k], tt - obs_t[0], atol=1e-5)
        seen[d] += 1
    return seen


# --------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("norm", ["mean_std", "min_max", None])
def test_mixture_windows_equal_direct_computation(tmp_path, rng, norm):
    f, to, ta = 50.0, 3, 25
    loader = RobotDataLoader(MIX, target_frequency=f, observation_horizon=to, action_horizon=0.5, batch_size=16, device="cpu",
                             seed=int(rng.integers(1 << 30)), normalization=norm, epoch_size=96)
    assert (loader.observation_steps, loader.action_steps) == (to, ta)
    assert loader.state_dim == 32 and loader.action_dim == 26  # robosuite states (32), G1 actions (26)
    refs = [g1_reference(), so101_reference(), bridge_reference(tmp_path), lift_reference()]
    b = cat(batches(loader))
    assert b["state"].shape == (96, to, 32) and b["action"].shape == (96, ta, 26) and b["state"].dtype == np.float32
    seen = check_against_reference(b, refs, f, to, ta, norm)
    assert seen.tolist() == loader.quotas().tolist()
    # windows at both episode ends are padded: masks say so, values hold the edge sample
    assert (~b["action_mask"]).any() and b["action_mask"][:, 0].all() and b["state_mask"][:, -1].all()
    assert [loader.tasks[t] for t in b["task"][b["dataset_index"] == 3]] == ["Lift"] * int((b["dataset_index"] == 3).sum())
    if norm == "mean_std":
        assert loader.stats(0)["state"]["source"] == ["dataset"] and loader.stats(2)["state"]["source"] == ["computed"]


def test_rates_layout_and_epoch_definition():
    loader = RobotDataLoader(MIX + [str(SAWYER)], target_frequency=10.0, observation_horizon=0.2, action_horizon=1.0,
                             batch_size=64, device="cpu", pad=False, output_map=["state_timestamps", "action_timestamps",
                                                                                  "dataset_index", "episode_index", "index", "anchor_time"])
    assert (loader.observation_steps, loader.action_steps) == (2, 10)
    # windows per dataset: recorded state samples whose whole window (0.1 s before, 0.9 s after) fits
    g1, _ = g1_reference()
    expect0 = sum(int(np.sum((e[0] >= 0.1 - 1e-9) & (e[0] <= e[0][-1] - 0.9 + 1e-9))) for e in g1.values())
    a = np.arange(10) / 5.0
    assert loader.num_windows[0] == expect0 and loader.num_windows[2] == 25 * int(np.sum((a >= 0.1 - 1e-9) & (a + 0.9 <= 1.8 + 1e-9)))
    assert loader.layout(4)["action"] == ["joint_velocities", "gripper_actuations"] and loader.layout(4)["action_dim"] == 8
    assert loader.epoch_size == sum(loader.num_windows) and len(loader) == -(-loader.epoch_size // 64)
    b = cat(batches(loader))
    np.testing.assert_allclose(np.diff(b["state_timestamps"], axis=1), 0.1, atol=1e-6)
    np.testing.assert_allclose(np.diff(b["action_timestamps"], axis=1), 0.1, atol=1e-6)
    # default weights: every window exactly once per epoch (FILL repeats the first ones at the end)
    n = loader.epoch_size
    assert sorted(set(b["index"].tolist())) == list(range(n))
    _, first = np.unique(b["index"], return_index=True)
    assert len(set(zip(b["dataset_index"][first].tolist(), b["episode_index"][first].tolist(), b["anchor_time"][first].tolist()))) == n
    assert len(b["index"]) == len(loader) * 64


def test_weights_quotas_shuffle_and_seed():
    kw = dict(target_frequency=20.0, observation_horizon=1, action_horizon=4, batch_size=50, device="cpu",
              output_map=["dataset_index", "episode_index", "anchor_time", "index"], epoch_size=200)
    a = RobotDataLoader([str(SO101), str(BRIDGE), str(LIFT)], weights=[5, 3, 2], seed=7, **kw)
    assert a.quotas().tolist() == [100, 60, 40]
    ea = cat(batches(a))
    assert np.bincount(ea["dataset_index"], minlength=3).tolist() == [100, 60, 40]
    same = cat(batches(RobotDataLoader([str(SO101), str(BRIDGE), str(LIFT)], weights=[5, 3, 2], seed=7, **kw)))
    for k in ea:
        np.testing.assert_array_equal(ea[k], same[k])
    e1 = cat(batches(a))  # the next epoch: another permutation
    assert not np.array_equal(e1["anchor_time"], ea["anchor_time"])
    other = cat(batches(RobotDataLoader([str(SO101), str(BRIDGE), str(LIFT)], weights=[5, 3, 2], seed=8, **kw)))
    assert not np.array_equal(other["dataset_index"], ea["dataset_index"])
    # bridge has 250 windows and gets 60: drawn without replacement
    br = ea["dataset_index"] == 1
    assert len(set(zip(ea["episode_index"][br].tolist(), ea["anchor_time"][br].tolist()))) == 60
    ordered = cat(batches(RobotDataLoader([str(SO101), str(BRIDGE), str(LIFT)], weights=[5, 3, 2], shuffle=False, **kw)))
    even = sorted(((j + 0.5) / q, d) for d, q in enumerate([100, 60, 40]) for j in range(q))  # evenly interleaved
    assert ordered["dataset_index"].tolist() == [d for _, d in even]
    lift = ordered["dataset_index"] == 2
    np.testing.assert_allclose(ordered["anchor_time"][lift], np.arange(40) / 20.0)  # table order


@pytest.mark.parametrize("policy", ["PARTIAL", "DROP", "FILL"])
def test_sharding_disjoint_and_complete(policy):
    from nvidia.dali.plugin.base_iterator import LastBatchPolicy

    kw = dict(target_frequency=20.0, observation_horizon=1, action_horizon=4, batch_size=8, device="cpu", seed=3, epoch_size=101,
              last_batch_policy=getattr(LastBatchPolicy, policy), output_map=["index", "dataset_index", "anchor_time"])
    full = cat(batches(RobotDataLoader([str(BRIDGE), str(LIFT)], **kw)))
    shards = [cat(batches(RobotDataLoader([str(BRIDGE), str(LIFT)], shard_id=s, num_shards=3, **kw))) for s in range(3)]
    sets = [set(s["index"].tolist()) for s in shards]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    lens = [len(s["index"]) for s in shards]
    if policy == "PARTIAL":  # 34, 34, 33 own positions: shard 2 repeats its first one, so every shard has 5 batches
        assert set().union(*sets) == set(range(101)) and lens == [34, 34, 34] and shards[2]["index"][-1] == 2
    elif policy == "DROP":
        assert lens == [32, 32, 32]
    else:
        assert lens == [40, 40, 40] and set().union(*sets) == set(range(101))
    pos_to = {int(p): (int(d), float(t)) for p, d, t in zip(full["index"], full["dataset_index"], full["anchor_time"])}
    for s in shards:  # a shard's window at a position is the full run's window there
        for p, d, t in zip(s["index"], s["dataset_index"], s["anchor_time"]):
            if int(p) in pos_to:
                assert pos_to[int(p)] == (int(d), float(t))


def test_resume_gives_the_same_remaining_batches():
    kw = dict(target_frequency=15.0, observation_horizon=2, action_horizon=6, batch_size=6, device="cpu", seed=11, epoch_size=40,
              cameras={"front": (32, 48)}, augmentations=[{"name": "color_jitter", "brightness": 0.4}], num_workers=3)
    specs = [DatasetSpec(str(BRIDGE), cameras={"front": "observation.image_0"}), DatasetSpec(str(BRIDGE), cameras={"front": "observation.image_2"}, name="bridge2")]
    ref = RobotDataLoader(specs, **kw)
    ref.set_epoch(2)
    want = batches(ref)
    a = RobotDataLoader(specs, **kw)
    a.set_epoch(2)
    got = batches(a, limit=3)
    state = a.state_dict()
    assert state["epoch"] == 2 and state["batches_done"] == 3
    b = RobotDataLoader(specs, **kw)
    b.load_state_dict(json.loads(json.dumps(state)))
    got += batches(b)
    assert len(got) == len(want) == len(a)
    for x, y in zip(got, want):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert b.state_dict()["epoch"] == 3 and b.state_dict()["batches_done"] == 0
    with pytest.raises(ValueError, match=r"load_state_dict: seed differs: saved 11, this loader 12"):
        RobotDataLoader(specs, **{**kw, "seed": 12}).load_state_dict(state)


def test_cameras_video_and_jpeg_frames_at_the_observation_time():
    g1 = DatasetSpec(str(G1), episodes=[1], cameras={"front": CAM})
    br = DatasetSpec(str(BRIDGE), cameras={"front": "observation.image_1"})
    loader = RobotDataLoader([g1], target_frequency=30.0, observation_horizon=1, action_horizon=2, batch_size=3, device="cpu",
                             cameras={"front": (480, 640)}, epoch_size=3, seed=5)
    b = cat(batches(loader))
    assert b["images.front"].shape == (3, 480, 640, 3) and b["images.front"].dtype == np.uint8
    ts = pq.read_table(G1 / "data" / "chunk-000" / "episode_000001.parquet", columns=["timestamp"]).column(0).to_numpy().astype(np.float64)
    want = {int(np.argmin(np.abs(ts - ts[0] - t))) for t in b["anchor_time"]}
    frames = {}
    with av.open(str(G1 / "videos" / "chunk-000" / CAM / "episode_000001.mp4")) as c:
        for k, fr in enumerate(c.decode(video=0)):
            if k in want:
                frames[k] = fr.to_ndarray(format="rgb24")
            if k >= max(want):
                break
    for img, t in zip(b["images.front"], b["anchor_time"]):
        np.testing.assert_array_equal(img, frames[int(np.argmin(np.abs(ts - ts[0] - t)))])
    # JPEG stills decoded inside the pipeline (fn.decoders.image), mixed with the AV1 video
    mixed = RobotDataLoader([g1, br], target_frequency=10.0, observation_horizon=1, action_horizon=2, batch_size=4, device="cpu",
                            cameras={"front": (64, 64)}, epoch_size=8, weights=[1, 3], image_dtype="float32",
                            image_mean=[0.5, 0.5, 0.5], image_std=[0.25, 0.25, 0.25])
    assert mixed.cfg["encoded"] == {"front": False}
    m = cat(batches(mixed))
    assert m["images.front"].dtype == np.float32 and m["images.front"].shape == (8, 64, 64, 3)
    ds = open_dataset(BRIDGE)
    for img, d, ep, t in zip(m["images.front"], m["dataset_index"], m["episode_index"], m["anchor_time"]):
        if d == 1:
            ref = ds.episode(int(ep))["observation.image_1"].read(int(round(t * 5)), int(round(t * 5)) + 1)[0]
            np.testing.assert_allclose(img, (ref / 255.0 - 0.5) / 0.25, atol=1e-5)
    only_jpeg = RobotDataLoader([br], target_frequency=10.0, batch_size=4, action_horizon=2, device="cpu", cameras={"front": (64, 64)}, epoch_size=4)
    assert only_jpeg.cfg["encoded"] == {"front": True}
    j = cat(batches(only_jpeg))
    for img, ep, t in zip(j["images.front"], j["episode_index"], j["anchor_time"]):
        np.testing.assert_array_equal(img, ds.episode(int(ep))["observation.image_1"].read(int(round(t * 5)), int(round(t * 5)) + 1)[0])


def test_color_jitter_changes_images_deterministically():
    br = DatasetSpec(str(BRIDGE), cameras={"front": "observation.image_0"})
    kw = dict(target_frequency=5.0, batch_size=8, action_horizon=2, device="cpu", cameras={"front": (64, 64)}, epoch_size=8, seed=1)
    plain = cat(batches(RobotDataLoader([br], **kw)))
    jit = cat(batches(RobotDataLoader([br], augmentations=["color_jitter"], **kw)))
    again = cat(batches(RobotDataLoader([br], augmentations=["color_jitter"], **kw)))
    np.testing.assert_array_equal(plain["index"], jit["index"])
    assert not np.array_equal(plain["images.front"], jit["images.front"])
    np.testing.assert_array_equal(jit["images.front"], again["images.front"])


def test_gaps_are_masked_and_groot_modality_gives_the_layout(tmp_path):
    from robocache.datasets.lerobot import LeRobotWriter

    w = LeRobotWriter(tmp_path / "gap", fps=10.0)
    ts = np.concatenate([np.arange(20), np.arange(40, 60)]) / 10.0  # 2 s hole after 1.9 s
    v = np.stack([np.sin(ts), np.cos(ts), ts], axis=1).astype(np.float32)
    w.add_episode(0, ts, {"observation.state": v, "action": v[:, :2]}, ["reach"])
    w.close()
    mod = {"state": {"a": {"start": 2, "end": 3}, "b": {"start": 0, "end": 2}}, "action": {"x": {"start": 0, "end": 2}}}
    (tmp_path / "gap" / "meta" / "modality.json").write_text(json.dumps(mod))
    loader = RobotDataLoader([str(tmp_path / "gap")], target_frequency=10.0, observation_horizon=1, action_horizon=8, batch_size=40,
                             device="cpu", shuffle=False, normalization=None)
    assert loader.layout(0)["state"] == ["state.a", "state.b"]
    b = cat(batches(loader))
    rec = ts.astype(np.float32).astype(np.float64)  # LeRobot stores float32 timestamps
    for k in range(len(b["index"])):
        act_t = b["anchor_time"][k] + np.arange(8) / 10.0
        in_gap = (act_t > rec[19] + 1e-9) & (act_t < rec[20] - 1e-9)
        np.testing.assert_array_equal(b["action_mask"][k], ~in_gap & (act_t <= rec[-1] + 1e-9))
        np.testing.assert_allclose(b["state"][k, 0], v[np.argmin(np.abs(ts - b["anchor_time"][k])), [2, 0, 1]], atol=1e-6)
    wide = RobotDataLoader([str(tmp_path / "gap")], target_frequency=10.0, action_horizon=8, batch_size=40, device="cpu",
                           shuffle=False, max_gap=3.0, output_map=["action_mask", "anchor_time"])
    bw = cat(batches(wide))
    np.testing.assert_array_equal(bw["action_mask"], (bw["anchor_time"][:, None] + np.arange(8) / 10.0) <= rec[-1] + 1e-9)


def _has(op):
    from nvidia.dali import fn

    return hasattr(fn.robocache, op)


@pytest.mark.skipif(not (_has("temporal_jitter") and _has("action_noise")), reason="fn.robocache.temporal_jitter / action_noise "
                    "are not in this plugin build (their absence is tested in test_bad_inputs_fail_before_the_first_batch)")
def test_temporal_jitter_and_action_noise_operators():
    from robocache.loader.pipeline import augment_rng

    kw = dict(target_frequency=20.0, observation_horizon=3, action_horizon=8, batch_size=16, device="cpu", epoch_size=48, seed=3,
              normalization=None, shuffle=False)
    base = cat(batches(RobotDataLoader([str(LIFT)], **kw)))
    jit = cat(batches(RobotDataLoader([str(LIFT)], augmentations=[{"name": "temporal_jitter", "speed": (0.5, 1.5)}], **kw)))
    np.testing.assert_array_equal(jit["anchor_time"], base["anchor_time"])
    (ts, s, _, a), = lift_reference()[0].values()
    for k, p in enumerate(jit["index"]):
        v = augment_rng(3, 0, int(p), 2).uniform(0.5, 1.5)
        t0 = jit["anchor_time"][k]
        for g, tt, ref in (("state", t0 + v * (np.arange(3) - 2) / 20.0, s), ("action", t0 + v * np.arange(8) / 20.0, a)):
            np.testing.assert_allclose(jit[g][k], interp(ts, ref, tt), rtol=1e-5, atol=1e-5)
            np.testing.assert_array_equal(jit[g + "_mask"][k], (tt >= -1e-9) & (tt <= ts[-1] + 1e-9))
    assert not jit["state_mask"][0, 0] and jit["state_mask"][0, -1]  # the first window starts before the episode
    noisy = cat(batches(RobotDataLoader([str(LIFT)], augmentations=[{"name": "action_noise", "sigma": [0.1]}], **kw)))
    np.testing.assert_array_equal(noisy["state"], base["state"])
    assert 0.03 < float(np.abs(noisy["action"] - base["action"]).mean()) < 0.3


def test_bad_inputs_fail_before_the_first_batch(tmp_path):
    kw = dict(device="cpu", target_frequency=10.0, action_horizon=4)
    with pytest.raises(DatasetNotFoundError, match=r"datasets\[1\]: .*nope: no such file or folder"):
        RobotDataLoader([str(BRIDGE), str(tmp_path / "nope")], **kw)
    bad = tmp_path / "corrupt"
    shutil.copytree(SO101, bad)
    (bad / "meta" / "info.json").write_text("{ not json")
    with pytest.raises(CorruptDatasetError, match=r"datasets\[0\]: .*info\.json: invalid JSON"):
        RobotDataLoader([str(bad)], **kw)
    (bad / "meta" / "info.json").write_text((SO101 / "meta" / "info.json").read_text())
    (bad / "data" / "chunk-000" / "file-000.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(CorruptDatasetError, match=r"datasets\[0\] \(corrupt.*not a readable parquet file"):
        RobotDataLoader([str(bad)], **kw)
    with pytest.raises(MissingKeyError, match=r"datasets\[0\] \(bridge_dataset.*unknown camera key 'wrist': no camera matches it; cameras: "):
        RobotDataLoader([str(BRIDGE)], cameras={"wrist": (64, 64)}, **kw)
    with pytest.raises(MissingKeyError, match=r"camera 'front' is mapped to 'observation.image_9', which is not a camera"):
        RobotDataLoader([DatasetSpec(str(BRIDGE), cameras={"front": "observation.image_9"})], cameras={"front": (64, 64)}, **kw)
    with pytest.raises(DatasetNotFoundError, match=r"lerobot_v21_unitree_g1.*episode 0: camera 'cam_high' .*episode_000000\.mp4 is missing"):
        RobotDataLoader([str(G1)], cameras={"cam_high": (64, 64)}, **kw)
    with pytest.raises(ValueError, match=r"datasets\[0\] \(bridge_dataset.*25 episode\(s\) shorter than a window of 1\.900 s "
                       r"\(1 observation \+ 20 action steps at 10 Hz\): episode 0 \(1\.800 s\)"):
        RobotDataLoader([str(BRIDGE), str(LIFT)], **{**kw, "action_horizon": 2.0})
    with pytest.warns(UserWarning, match=r"lerobot_v21_unitree_g1.*1 episode\(s\) shorter than a window of 13\.900 s.*episode 1 .*skipped"):
        ok = RobotDataLoader([str(G1)], short_episodes="skip", **{**kw, "action_horizon": 14.0})
    assert [e.index for e in ok.hosts[0].episodes] == [0]
    with pytest.raises(ValueError, match=r"weights has 3 entries but there are 2 datasets \(bridge_dataset, lift/panda\)"):
        RobotDataLoader([str(BRIDGE), str(LIFT)], weights=[1, 2, 3], **kw)
    with pytest.raises(ValueError, match=r"weights must be finite, >= 0 and not all 0"):
        RobotDataLoader([str(BRIDGE), str(LIFT)], weights=[1, -2], **kw)
    with pytest.raises(ValueError, match=r"weights must be finite, >= 0 and not all 0"):
        RobotDataLoader([str(BRIDGE), str(LIFT)], weights=[0, 0], **kw)
    with pytest.raises(ValueError, match=r"unknown augmentation 'mixup'"):
        RobotDataLoader([str(BRIDGE)], augmentations=["mixup"], **kw)
    for op in ("temporal_jitter", "action_noise"):
        if not hasattr(__import__("nvidia.dali.fn", fromlist=["fn"]).robocache, op):
            with pytest.raises(ValueError, match=rf"augmentation '{op}' needs the operator fn\.robocache\.{op}"):
                RobotDataLoader([str(BRIDGE)], augmentations=[op], **kw)
    with pytest.raises(ValueError, match=r"color_jitter needs cameras="):
        RobotDataLoader([str(BRIDGE)], augmentations=["color_jitter"], **kw)
    with pytest.raises(ValueError, match=r"shard_id must be in \[0, num_shards=2\), got 2"):
        RobotDataLoader([str(BRIDGE)], shard_id=2, num_shards=2, **kw)
    with pytest.raises(ValueError, match=r"target_frequency must be a positive number of Hz, got 0"):
        RobotDataLoader([str(BRIDGE)], **{**kw, "target_frequency": 0})
    with pytest.raises(ValueError, match=r"action_horizon must be a number of steps"):
        RobotDataLoader([str(BRIDGE)], **{**kw, "action_horizon": "1s"})
    with pytest.raises(ValueError, match=r"last_batch_policy must be"):
        RobotDataLoader([str(BRIDGE)], last_batch_policy="SOMETIMES", **kw)
    with pytest.raises(ValueError, match=r"output_map has unknown keys \['pixels'\]"):
        RobotDataLoader([str(BRIDGE)], output_map=["state", "pixels"], **kw)
    with pytest.raises(MissingKeyError, match=r"state key 'observation.joints' is not a stream of episode 0"):
        RobotDataLoader([DatasetSpec(str(BRIDGE), state_keys=["observation.joints"])], **kw)
    with pytest.raises(ValueError, match=r"give weights= or DatasetSpec.weight, not both"):
        RobotDataLoader([DatasetSpec(str(BRIDGE), weight=1.0)], weights=[1.0], **kw)
    with pytest.raises(ValueError, match=r"datasets must be a non-empty list"):
        RobotDataLoader([], **kw)
    from robocache.datasets.video import gpu_count

    if gpu_count() == 0:
        with pytest.raises(ValueError, match=r"device='cuda' but DALI sees no CUDA device"):
            RobotDataLoader([str(BRIDGE)], **{**kw, "device": "cuda"})


def test_import_is_light_and_loader_is_lazy():
    code = ("import sys, robocache; assert 'torch' not in sys.modules and 'robocache.loader' not in sys.modules; "
            "L = robocache.RobotDataLoader; assert 'robocache.loader' in sys.modules; print(L.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(Path(robocache.__file__).parents[1])})
    assert out.stdout.strip() == "RobotDataLoader"


def test_demo_loader_runs():
    out = subprocess.run([sys.executable, "-m", "robocache.demo_loader", "--batches", "3", "--device", "cpu"], capture_output=True,
                         text=True, env={**__import__("os").environ, "PYTHONPATH": str(Path(robocache.__file__).parents[1])})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "state" in out.stdout and "samples/s" in out.stdout



# --------------------------------------------------------------------------------------- throughput machinery
def test_padded_windows_hold_each_window_slice_and_pad_past_the_targets():
    """The dense [B, L, D] inputs of the resample operator: each window's recorded slice appears
    unchanged and contiguous; extra samples are neighbours from the same episode, or the last
    sample repeated past every target (which resamples to the same values)."""
    from robocache.loader.pipeline import padded_slices

    loader = RobotDataLoader(MIX, target_frequency=50.0, observation_horizon=3, action_horizon=1.0, batch_size=32, device="cpu",
                             seed=3, epoch_size=256)
    tb = loader._table
    d, r = loader.plan(0)
    gr = tb["row_offset"][d] + r
    epi = tb["episode"][gr]
    short = 0
    for g, off in (("state", loader.cfg["offsets"][0]), ("action", loader.cfg["offsets"][1])):
        sl = tb[g + "_slice"][gr]
        vals, ts = padded_slices(tb, g, epi, sl)
        assert vals.dtype == np.float32 and ts.dtype == np.float64 and vals.shape[:2] == ts.shape
        for k in range(len(gr)):
            e = tb["episodes"][epi[k]]
            v, t = getattr(e, g), getattr(e, g + "_ts")
            a, b = sl[k]
            x = int(np.nonzero(ts[k] == t[a])[0][0])
            np.testing.assert_array_equal(ts[k, x:x + b - a], t[a:b])
            np.testing.assert_array_equal(vals[k, x:x + b - a], v[a:b])
            assert np.all(np.diff(ts[k]) > 0)
            real = ts[k] <= t[-1]
            if not real.all():
                short += 1
                assert np.all(vals[k, ~real] == v[-1]) and ts[k, ~real].min() > tb["anchor"][gr[k]] + off[-1] + 1.0
    assert short > 0  # the 5 Hz Bridge episodes are shorter than a batch's longest 50 Hz slice


def test_video_frames_from_worker_processes_equal_in_process_decoding():
    g1 = DatasetSpec(str(G1), episodes=[1], cameras={"front": CAM})
    br = DatasetSpec(str(BRIDGE), cameras={"front": "observation.image_0"})
    kw = dict(target_frequency=10.0, observation_horizon=1, action_horizon=2, batch_size=8, device="cpu",
              cameras={"front": (48, 64)}, epoch_size=24, seed=9, augmentations=["color_jitter"])
    one = RobotDataLoader([g1, br], num_workers=1, **kw)
    assert one._frames() is None
    procs = RobotDataLoader([g1, br], num_workers=3, **kw)
    a, b = cat(batches(one)), cat(batches(procs))
    assert procs._frame_pool is not None and set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert a[k].dtype == b[k].dtype
    # an iteration left early leaves no frame files behind
    it = iter(procs)
    next(it)
    del it
    import gc
    import time

    gc.collect()
    time.sleep(1.0)
    assert not list(Path("/dev/shm").glob("robocache-frames-*")) if Path("/dev/shm").is_dir() else True


def test_worker_video_decoding_with_an_open_container_gives_stream_read_frames():
    import robocache.loader.frames as F

    loader = RobotDataLoader([DatasetSpec(str(G1), episodes=[1], cameras={"front": CAM})], device="cpu", cameras={"front": (32, 32)})
    s = loader._table["episodes"][0].cameras["front"][0]
    n = len(s.video.frame_times)
    idx = np.random.default_rng(7).integers(0, n, 40).tolist() + [0, n - 1, 5, 4, 3]  # random, ends, backwards
    for j in idx:
        np.testing.assert_array_equal(F._frame(s, j), s.read(j, j + 1)[0])
    assert len(F._OPEN) == 1
    F._close(str(s.video.path))
