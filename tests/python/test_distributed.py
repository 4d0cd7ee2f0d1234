"""RobotDataLoader under torch.distributed, on the real samples in ../shared/data/datasets: processes
launched by ``torchrun`` with the gloo backend and ``device="cpu"`` (tests/python/ddp_worker.py), each
loader created without shard arguments. Shards disjoint and complete, equal batch counts per rank
under each last-batch policy (every batch all-reduced), the same global steps for world sizes 1, 2
and 3 at one global batch, per-epoch reshuffle, resume per rank bit for bit (from rank 0's state,
and at another world size); rank and world size from the environment; the DDP training example
resumes with the same losses."""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import ddp_worker
import numpy as np
import pytest
import robocache
from conftest import shared_data
from ddp_worker import EPOCH, resume_loader, shard_loader
from robocache.loader.distributed import gpu_for

ROOT = Path(__file__).resolve().parents[2]
DATA = shared_data() / "datasets"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real data folder {DATA} is absent")
WORLD, G = 3, 12  # torchrun world size; global batch (4 per rank)
DIST_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT",
             "TORCHELASTIC_RUN_ID")


def torchrun(nproc: int, script: Path, *args, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in DIST_VARS}
    env.update({"PYTHONPATH": os.pathsep.join([str(Path(robocache.__file__).parents[1]), str(Path(__file__).parent)]),
                "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # one host: loopback, whatever the host name resolves to
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), str(script), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    p = torchrun(WORLD, Path(ddp_worker.__file__), out, shared_data(), G)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-5000:]
    return [pickle.loads((out / f"rank{r}.pkl").read_bytes()) for r in range(WORLD)]


def steps_of(policy: str) -> int:
    return EPOCH // G if policy == "DROP" else -(-EPOCH // G)


def windows(batches: list) -> dict:
    """epoch position -> (dataset, episode, anchor) over some batches."""
    out = {}
    for b in batches:
        for p, d, e, t in zip(b["index"], b["dataset_index"], b["episode_index"], b["anchor_time"]):
            out[int(p)] = (int(d), int(e), float(t))
    return out


@pytest.mark.parametrize("policy", ["PARTIAL", "DROP", "FILL"])
def test_shards_disjoint_complete_with_equal_batch_counts(ranks, policy):
    steps = steps_of(policy)
    for r in ranks:
        got = r["policies"][policy]
        assert got["placement"] == (r["rank"], WORLD, "torch.distributed") and got["len"] == steps
    full = EPOCH // G
    for e in (0, 1):
        per = [r["policies"][policy]["epochs"][e] for r in ranks]
        assert [len(x) for x in per] == [steps] * WORLD  # equal batch counts (and no rank hung in the all-reduce)
        for k in range(steps):
            sizes = {len(x[k]["index"]) for x in per}
            assert len(sizes) == 1, f"step {k}: batch sizes differ between ranks: {sizes}"
        sets = [set(np.concatenate([b["index"] for b in x]).tolist()) for x in per]
        for i in range(WORLD):
            for j in range(i + 1, WORLD):
                assert not sets[i] & sets[j], f"ranks {i} and {j} share positions {sorted(sets[i] & sets[j])[:5]}"
        union = set().union(*sets)
        assert union == set(range(full * G if policy == "DROP" else EPOCH))
        total = sum(len(b["index"]) for x in per for b in x)
        assert total == {"DROP": full * G, "FILL": steps * G, "PARTIAL": WORLD * -(-EPOCH // WORLD)}[policy]
        for k in range(steps):  # rank r's batch k: positions k*G + r + WORLD*j; step k: [k*G, (k+1)*G)
            step = np.concatenate([x[k]["index"] for x in per])
            if k < full:
                assert sorted(step.tolist()) == list(range(k * G, (k + 1) * G))
                for r, x in enumerate(per):
                    assert x[k]["index"].tolist() == [k * G + r + WORLD * j for j in range(G // WORLD)]
            else:  # the last step: the rest of the epoch, plus repeats of each rank's own first positions
                assert set(range(k * G, EPOCH)) <= set(step.tolist())
                for r, x in enumerate(per):
                    assert all(int(p) % WORLD == r for p in x[k]["index"])
    # per-epoch reshuffle, the same on every rank: epoch 1 is another permutation
    w0 = windows([b for r in ranks for b in r["policies"][policy]["epochs"][0]])
    w1 = windows([b for r in ranks for b in r["policies"][policy]["epochs"][1]])
    assert sum(w0[p] != w1[p] for p in w0) > len(w0) // 2


@pytest.mark.parametrize("policy", ["PARTIAL", "DROP", "FILL"])
def test_the_same_global_steps_for_any_world_size(ranks, policy):
    """World sizes 1 and 2 (in-process, explicit shards) against the 3 torchrun ranks, global batch 12."""
    steps, full = steps_of(policy), EPOCH // G
    runs = {WORLD: [r["policies"][policy]["epochs"] for r in ranks]}
    for world in (1, 2):
        runs[world] = []
        for s in range(world):
            ld = shard_loader(shared_data(), policy, G // world, shard_id=s, num_shards=world)
            assert len(ld) == steps and ld.global_batch_size == G
            runs[world].append([[{k: v.numpy() for k, v in b.items()} for b in ld] for _ in range(2)])
    for e in (0, 1):
        ref = windows([b for x in runs[1] for b in x[e]])
        assert sorted(ref) == list(range(full * G if policy == "DROP" else EPOCH))
        for world, per in runs.items():
            w = windows([b for x in per for b in x[e]])
            assert all(w[p] == ref[p] for p in w), f"world {world}: another window at some epoch position"  # the same plan
            for k in range(steps):
                step = sorted(np.concatenate([x[e][k]["index"] for x in per]).tolist())
                one = sorted(runs[1][0][e][k]["index"].tolist())
                if k < full or policy == "DROP":
                    assert step == one, f"world {world} epoch {e} step {k}: other positions than one process with batch {G}"
                else:  # the last step: the rest of the epoch; one process fills (FILL) from the epoch's start
                    rest = list(range(k * G, EPOCH))
                    assert one == sorted(rest + (list(range(G - len(rest))) if policy == "FILL" else []))
                    assert set(rest) <= set(step)


def test_every_sample_is_bit_identical_for_any_world_size():
    """Each sample (state, action, masks, camera frame with colour jitter) is a function of (seed, epoch,
    position) alone: world sizes 1, 2 and 3 at global batch 6 give the same bits at every position."""
    data = shared_data()
    by_world = {}
    for world in (1, 2, 3):
        got = {}
        for s in range(world):
            ld = resume_loader(data, 6 // world, shard_id=s, num_shards=world, last_batch_policy="DROP")
            ld.set_epoch(1)
            for b in ld:
                for j, p in enumerate(b["index"].tolist()):
                    got[p] = {k: v[j].numpy().copy() for k, v in b.items()}
        by_world[world] = got
    assert sorted(by_world[1]) == list(range(36))  # DROP: 6 steps of 6
    for world in (2, 3):
        assert sorted(by_world[world]) == sorted(by_world[1])
        for p, x in by_world[world].items():
            for k, v in x.items():
                np.testing.assert_array_equal(v, by_world[1][p][k], err_msg=f"world {world} position {p} {k}")


def test_resume_per_rank_bit_identical_from_rank0_state(ranks):
    for r in ranks:
        res = r["resume"]
        assert res["state"]["epoch"] == 1 and res["state"]["batches_done"] == 2 and res["state"]["shard_id"] == 0
        assert len(res["got"]) == len(res["want"]) > 2
        for k, (x, y) in enumerate(zip(res["got"], res["want"])):
            assert x.keys() == y.keys() and "images.front" in x
            for n in x:
                np.testing.assert_array_equal(x[n], y[n], err_msg=f"rank {r['rank']} batch {k} {n}")
        assert res["after"]["epoch"] == 2 and res["after"]["batches_done"] == 0
    firsts = [r["resume"]["want"][0]["index"].tolist() for r in ranks]
    assert len({tuple(f) for f in firsts}) == WORLD  # each rank resumed its own shard


def test_resume_at_another_world_size_with_the_same_global_batch():
    data = shared_data()
    two = [shard_loader(data, "FILL", 6, shard_id=s, num_shards=2) for s in range(2)]
    for ld in two:
        for k, _ in enumerate(ld):
            if k == 2:
                break
    state = json.loads(json.dumps(two[0].state_dict()))
    assert state["batches_done"] == 3 and state["global_batch_size"] == G and two[1].state_dict()["batches_done"] == 3
    three = [shard_loader(data, "FILL", 4, shard_id=s, num_shards=3) for s in range(3)]
    for ld in three:
        ld.load_state_dict(state)
    rest = [[b["index"].numpy() for b in ld] for ld in three]
    assert [len(x) for x in rest] == [steps_of("FILL") - 3] * 3
    for k in range(len(rest[0]) - 1):  # the remaining full steps: the same positions as the uninterrupted run
        assert sorted(np.concatenate([x[k] for x in rest]).tolist()) == list(range((k + 3) * G, (k + 4) * G))
    with pytest.raises(ValueError, match=r"load_state_dict: global_batch_size differs: saved 12, this loader 16"):
        shard_loader(data, "FILL", 4, shard_id=0, num_shards=4).load_state_dict(state)
    old = {k: v for k, v in state.items() if k != "global_batch_size"}  # a version-1 state (before data parallel)
    old.update(version=1, batch_size=6, num_shards=2)
    one = shard_loader(data, "FILL", 12)
    one.load_state_dict(old)
    assert one.state_dict()["batches_done"] == 3
    with pytest.raises(ValueError, match=r"batches_done must be in \[0, 9\], got 10"):
        one.load_state_dict({**state, "batches_done": 10})


def test_rank_and_world_size_from_the_environment(monkeypatch):
    data = shared_data()
    for k in DIST_VARS:
        monkeypatch.delenv(k, raising=False)
    assert shard_loader(data, "DROP", 4).placement.source == "single process"
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    ld = shard_loader(data, "DROP", 4)
    assert (ld.shard_id, ld.num_shards, ld.placement.source) == (2, 3, "environment")
    assert ld.positions().tolist() == [2 + 3 * j for j in range(len(ld) * 4)] and len(ld) == EPOCH // G
    ex = shard_loader(data, "DROP", 4, shard_id=0, num_shards=1)  # explicit values win
    assert (ex.shard_id, ex.num_shards, ex.placement.source) == (0, 1, "explicit")
    part = shard_loader(data, "DROP", 4, shard_id=1)
    assert (part.shard_id, part.num_shards, part.placement.source) == (1, 3, "explicit + environment")
    with pytest.raises(ValueError, match=r"shard_id must be in \[0, num_shards=3\), got 5 \(shard_id, num_shards from explicit \+ environment\)"):
        shard_loader(data, "DROP", 4, shard_id=5)
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(ValueError, match=r"environment variable RANK=3 must be in \[0, WORLD_SIZE=3\)"):
        shard_loader(data, "DROP", 4)
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ValueError, match=r"environment variable RANK='one' is not an integer"):
        shard_loader(data, "DROP", 4)
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(ValueError, match=r"environment variable RANK='1' is set but WORLD_SIZE is not"):
        shard_loader(data, "DROP", 4)
    with pytest.raises(ValueError, match=r"device_id must be an int >= 0 or None, got -1"):
        shard_loader(data, "DROP", 4, shard_id=0, num_shards=1, device_id=-1)
    # the GPU of a rank (pure function: no GPU here): explicit, LOCAL_RANK, one visible device per process
    assert gpu_for(None, 3, 8) == 3 and gpu_for(None, 3, 1) == 0 and gpu_for(2, 5, 8) == 2
    with pytest.raises(ValueError, match=r"LOCAL_RANK=9 but this process sees 8 CUDA devices"):
        gpu_for(None, 9, 8)
    with pytest.raises(ValueError, match=r"device_id=9 but this process sees 8 CUDA device"):
        gpu_for(9, None, 8)


def test_ddp_training_example_resumes_with_the_same_losses(tmp_path):
    script = ROOT / "examples" / "ddp_train.py"
    args = ["--device", "cpu", "--data", shared_data(), "--cache-dir", tmp_path / "cache", "--steps", 6, "--log-every", 1,
            "--checkpoint", tmp_path / "ck.pt"]
    a = torchrun(2, script, *args, "--save-at", 3, "--out", tmp_path / "a.json")
    assert a.returncode == 0, a.stdout[-3000:] + a.stderr[-5000:]
    b = torchrun(2, script, *args, "--resume", "--out", tmp_path / "b.json")
    assert b.returncode == 0, b.stdout[-3000:] + b.stderr[-5000:]
    assert "resumed from" in b.stdout and "at step 3 (epoch 0, 3 batches done)" in b.stdout
    ra, rb = json.loads((tmp_path / "a.json").read_text()), json.loads((tmp_path / "b.json").read_text())
    assert ra["world_size"] == 2 and ra["backend"] == "gloo" and ra["global_batch_size"] == 2 * ra["batch_size"]
    assert [(r["shard_id"], r["num_shards"], r["source"]) for r in ra["ranks"]] == [(0, 2, "torch.distributed"), (1, 2, "torch.distributed")]
    assert len(ra["losses"]) == 6 and all(math.isfinite(v) and v > 0 for v in ra["losses"])
    assert rb["first_step"] == 3 and rb["losses"] == ra["losses"][3:]  # bit for bit on the CPU


def test_ddp_bench_toy(tmp_path):
    out = tmp_path / "ddp_bench_cpu.json"
    env = {k: v for k, v in os.environ.items() if k not in DIST_VARS}
    env.update({"CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(Path(robocache.__file__).parents[1])})
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ddp_bench.py"), "--data", str(shared_data()), "--gpus", "1,2,8",
                        "--cache-dir", str(tmp_path / "cache"), "--out", str(out)], capture_output=True, text=True, env=env, timeout=300,
                       check=False)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "TOY SIZE" in p.stdout
    tail = p.stdout.strip().splitlines()
    hdr = next(i for i, ln in enumerate(tail) if ln.startswith("model ") and "samples/s" in ln and "scaling" in ln)
    assert [ln.split()[0] for ln in tail[hdr + 2:hdr + 6]] == ["toy_small"] * 4  # the table comes last
    res = json.loads(out.read_text())
    s = res["settings"]
    assert s["toy"] and s["device"] == "cpu" and s["gpu_counts"] == [1, 2] and s["skipped_counts"] == [8] and s["cpus_per_rank"] >= 1
    assert res["env"]["NCCL_NVLS_ENABLE"] == "0"
    rows = res["rows"]
    assert [(r["config"], r["gpus"]) for r in rows] == [("RobotDataLoader", 1), ("RobotDataLoader", 2), ("fixed batch", 1), ("fixed batch", 2)]
    for r in rows:
        assert "error" not in r, r
        for f in ("samples_per_s", "samples_per_s_per_gpu", "scaling_efficiency", "seconds_slowest_rank"):
            assert math.isfinite(r[f]) and r[f] > 0, (f, r[f])
        assert abs(r["samples_per_s"] - r["gpus"] * s["batch_size"] * s["steps"] / r["seconds_slowest_rank"]) < 1e-6 * r["samples_per_s"]
        assert len(r["gpu_util_pct_per_gpu"]) == r["gpus"] and all(u is None for u in r["gpu_util_pct_per_gpu"])  # no GPU: null
        assert all(0 <= w < 1 for w in r["wait_fraction_per_rank"]) and all(math.isfinite(x) for x in r["final_loss_per_rank"])
        if r["gpus"] == 1:
            assert r["scaling_efficiency"] == 1.0
    two = res["parts"]["2"]
    assert two["world_size"] == 2 and two["backend"] == "gloo"
    assert [(x["rank"], x["placement_source"]) for x in two["ranks"]] == [(0, "torch.distributed"), (1, "torch.distributed")]
    if all(x["pinned"] for x in two["ranks"]):  # each rank on its own CPUs (when there are enough)
        assert not set(two["ranks"][0]["cpus"]) & set(two["ranks"][1]["cpus"])
    assert two["ranks"][0]["batches_per_epoch"] == two["ranks"][1]["batches_per_epoch"]


def test_action_noise_is_independent_per_rank_and_epoch():
    from nvidia.dali import fn

    if not hasattr(fn.robocache, "action_noise"):
        pytest.skip("fn.robocache.action_noise is not in this plugin build")
    lift = str(DATA / "robosuite_hdf5" / "lift" / "panda" / "demo.hdf5")
    kw = dict(target_frequency=20.0, observation_horizon=1, action_horizon=8, batch_size=8, device="cpu", epoch_size=32, seed=5,
              normalization=None, num_shards=2, output_map=["action", "index"], num_workers=1)

    def noise(shard: int, epoch: int) -> np.ndarray:
        out = []
        for aug in ([{"name": "action_noise", "sigma": [0.1]}], []):
            ld = robocache.RobotDataLoader([lift], augmentations=aug, shard_id=shard, **kw)
            ld.set_epoch(epoch)
            out.append(np.concatenate([b["action"].numpy() for b in ld]))
        return out[0] - out[1]

    n00, n10, n01 = noise(0, 0), noise(1, 0), noise(0, 1)
    assert 0.03 < float(np.abs(n00).mean()) < 0.3
    np.testing.assert_array_equal(n00, noise(0, 0))  # deterministic per (seed, epoch, rank)
    # one seed for every rank would draw the same noise per batch slot on every rank (equal up to float32 rounding)
    assert not np.allclose(n00, n10, atol=1e-5) and not np.allclose(n00, n01, atol=1e-5)


def test_dataset_side_gpu_decoding_follows_the_local_rank(monkeypatch):
    from robocache.datasets import video

    monkeypatch.setattr(video, "gpu_count", lambda: 4)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert video.local_gpu() == 2
    monkeypatch.setattr(video, "gpu_count", lambda: 1)  # one device visible per process
    assert video.local_gpu() == 0
    monkeypatch.delenv("LOCAL_RANK")
    assert video.local_gpu() == 0


def test_drop_with_an_epoch_smaller_than_the_global_batch_is_an_error():
    with pytest.raises(ValueError, match=r"last_batch_policy DROP with epoch_size 98 smaller than the global batch 100 \(batch_size 50 x 2 shards\)"):
        shard_loader(shared_data(), "DROP", 50, shard_id=1, num_shards=2)
