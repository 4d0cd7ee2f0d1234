"""One rank of tests/python/test_distributed.py, launched by ``torchrun`` (gloo, ``device="cpu"``).

Every loader here is created without shard_id/num_shards: it must take them from torch.distributed.
Per last-batch policy the rank iterates two epochs and all-reduces once per batch (a rank with more
batches than another would hang in the all-reduce; the process group's timeout turns that into an
error). Then resume: two batches, rank 0's ``state_dict()`` broadcast to every rank, a fresh loader
loads it and yields the rest. Everything goes to ``<out>/rank<r>.pkl`` for the test to check.

    torchrun --standalone --nproc_per_node 3 ddp_worker.py <out dir> <data dir> <global batch>
"""

from __future__ import annotations

import datetime
import pickle
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from robocache import DatasetSpec, RobotDataLoader

KEYS = ["index", "dataset_index", "episode_index", "anchor_time"]
EPOCH = 98  # 33, 33, 32 positions per rank at world size 3: without repeats PARTIAL would give 9, 9, 8 batches of 4


def shard_loader(data: Path, policy: str, batch_size: int, **kw) -> RobotDataLoader:
    """The loader of the sharding checks (the test builds the same one in-process as the reference)."""
    ds = data / "datasets"
    return RobotDataLoader([str(ds / "rlds_bridge"), str(ds / "robosuite_hdf5" / "lift" / "panda" / "demo.hdf5")],
                           target_frequency=20.0, observation_horizon=1, action_horizon=4, batch_size=batch_size, device="cpu",
                           seed=3, epoch_size=EPOCH, last_batch_policy=policy, output_map=KEYS, num_workers=1, **kw)


def resume_loader(data: Path, batch_size: int = 3, **kw) -> RobotDataLoader:
    """Camera frames (JPEG, decoded by DALI) and colour jitter: the resume check compares images too."""
    specs = [DatasetSpec(str(data / "datasets" / "rlds_bridge"), cameras={"front": "observation.image_0"})]
    return RobotDataLoader(specs, target_frequency=15.0, observation_horizon=2, action_horizon=6, batch_size=batch_size, device="cpu",
                           seed=11, epoch_size=40, cameras={"front": (32, 48)}, augmentations=[{"name": "color_jitter", "brightness": 0.4}],
                           num_workers=1, **kw)


def epoch(loader) -> list:
    out = []
    for b in loader:
        out.append({k: v.numpy().copy() for k, v in b.items()})
        one = torch.ones(1)
        dist.all_reduce(one)  # the training step's gradient all-reduce: every rank must get here equally often
        assert int(one) == dist.get_world_size()
    return out


def main() -> int:
    out, data, global_batch = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    rank, world = dist.get_rank(), dist.get_world_size()
    res: dict = {"rank": rank, "world": world, "policies": {}}
    for policy in ("PARTIAL", "DROP", "FILL"):
        ld = shard_loader(data, policy, global_batch // world)
        p = ld.placement
        res["policies"][policy] = {"placement": (p.shard_id, p.num_shards, p.source), "len": len(ld),
                                   "epochs": [epoch(ld), epoch(ld)]}
    # resume with camera frames and colour jitter (drawn per epoch position): rank 0's state resumes every rank
    ref = resume_loader(data)
    ref.set_epoch(1)
    want = epoch(ref)
    a = resume_loader(data)
    a.set_epoch(1)
    got = []
    for b in a:
        got.append({k: v.numpy().copy() for k, v in b.items()})
        if len(got) == 2:
            break
    state = [a.state_dict() if rank == 0 else None]
    dist.broadcast_object_list(state, src=0)
    b = resume_loader(data)
    b.load_state_dict(state[0])
    got += epoch(b)
    res["resume"] = {"want": want, "got": got, "state": state[0], "after": b.state_dict()}
    (out / f"rank{rank}.pkl").write_bytes(pickle.dumps(res))
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
