"""Data-parallel training of the GR00T-style policy (benchmarks/groot_model.py) with RobotDataLoader
and DistributedDataParallel, one process per GPU, launched by ``torchrun``.

    # one host, 8 GPUs (NCCL); NVLink multicast (NVLS) off, as on the machines this was built for
    NCCL_NVLS_ENABLE=0 torchrun --nproc_per_node 8 examples/ddp_train.py --data ../shared/data --steps 200
    # two hosts of 8 GPUs (run on each; host0 is the rendezvous)
    NCCL_NVLS_ENABLE=0 torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint host0:29500 \\
        examples/ddp_train.py --data ../shared/data
    # CPU only, toy size, gloo (what CI runs)
    torchrun --nproc_per_node 2 examples/ddp_train.py --device cpu --size toy_small --steps 4

Each rank creates ``RobotDataLoader`` **without** ``shard_id``/``num_shards``/``device_id``: it finds
its global rank and the world size from ``torch.distributed`` and its GPU from ``LOCAL_RANK``, builds
its own DALI pipeline on that GPU and reads its own shard of an epoch plan every rank computes from
the seed alone (no communication, no rank waits on another's data). ``--batch-size`` is per rank;
the global batch of a step is ``batch_size * world_size`` and, for a given seed, is the same data
whatever the world size (see README, "Several GPUs").

Data: ``--dataset PATH`` (any dataset RobotDataLoader opens; ``--camera NAME=KEY`` maps cameras),
else the benchmark's GR00T-flavoured LeRobot dataset (benchmarks/groot_data.py, 26-DoF Unitree G1,
224x224 H.264 cameras) built once under ``--cache-dir`` from the real sample in ``--data``.

Checkpoints (``--checkpoint PATH``): rank 0 writes model, optimizer, step and the loader's
``state_dict()`` (the same on every rank) at the end, or after step ``--save-at``; ``--resume``
loads it on every rank and continues with the remaining batches of the saved epoch. Each step's
random draws (flow-matching times and noise) come from a generator seeded by ``(seed, step, rank)``,
so a resumed run gives the same losses as an uninterrupted one (on the CPU bit for bit). Rank 0
prints the mean loss over ranks and writes ``--out`` (JSON: losses, samples/s, each rank's shard
and GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NCCL_NVLS_ENABLE", "0")  # NVLink multicast stays off (before NCCL initialises)
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))
sys.path.insert(0, str(HERE.parent / "benchmarks"))
import groot_data  # noqa: E402
import groot_model  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from robocache import DatasetSpec, RobotDataLoader  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

FREQ, TA = 30.0, 16


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data", help="folder laid out like shared/data")
    ap.add_argument("--dataset", type=Path, action="append", default=None, help="dataset path (repeat for a mixture)")
    ap.add_argument("--camera", action="append", default=None, help="NAME=KEY camera of --dataset (repeat)")
    ap.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "robocache" / "groot_bench")
    ap.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    ap.add_argument("--size", choices=tuple(groot_model.SIZES), default=None, help="model size (default: small on GPUs, toy_small on CPU)")
    ap.add_argument("--batch-size", type=int, default=None, help="per rank (default 64 on GPUs, 4 on CPU)")
    ap.add_argument("--steps", type=int, default=100, help="optimizer steps in all (a resumed run continues to this)")
    ap.add_argument("--epoch-size", type=int, default=None, help="windows per epoch (default: all)")
    ap.add_argument("--episodes", type=int, default=None, help="episodes of the built dataset (default 240 on GPUs, 8 on CPU)")
    ap.add_argument("--cameras", type=int, default=None, choices=(1, 2, 3), help="cameras of the built dataset (default 2 GPU, 1 CPU)")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None, help="video decoding processes per rank (default: CPUs / ranks per host)")
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--save-at", type=int, default=None, help="checkpoint after this step (default: at the end)")
    ap.add_argument("--resume", action="store_true", help="continue from --checkpoint when it exists")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None, help="JSON written by rank 0")
    return ap.parse_args(argv)


def setup(device: str) -> tuple:
    """Process group (NCCL on GPUs, gloo on the CPU) from torchrun's environment; this rank's device."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if "RANK" not in os.environ:  # plain `python ddp_train.py`: a world of one
        os.environ.update({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                           "MASTER_PORT": os.environ.get("MASTER_PORT", "29511")})
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local))
        return "cuda", torch.device("cuda", local)
    dist.init_process_group("gloo")
    return "cpu", torch.device("cpu")


def dataset(a, rank: int, local: int) -> tuple:
    """``(specs, camera names)``: the user's datasets, or the GR00T-flavoured one (built by rank 0)."""
    if a.dataset:
        cams = dict(c.split("=", 1) for c in (a.camera or []))
        return [DatasetSpec(str(p), cameras=cams or None) for p in a.dataset], list(cams)
    src = a.data / "datasets" / groot_data.SOURCE
    args = (a.cache_dir, a.episodes, a.cameras, 40 if a.episodes <= 16 else 100, 224, src if src.is_dir() else None)
    if rank == 0:
        groot_data.build(*args, log=lambda *m: print(*m, flush=True))
    dist.barrier()
    if local == 0 and rank != 0:  # another host without a shared file system builds its own copy
        groot_data.build(*args, log=lambda *m: None)
    dist.barrier()
    path = groot_data.build(*args, log=lambda *m: None)
    cams = list(groot_data.CAMERA_NAMES[: a.cameras])
    return [DatasetSpec(str(path), cameras={c: f"video.{c}" for c in cams}, open_kwargs={"video_backend": "pyav"})], cams


def step_generator_seed(seed: int, step: int, rank: int) -> int:
    """Seed of a step's random draws on a rank: a resumed run draws what an uninterrupted one did."""
    return (seed * 1_000_003 + step) * 4099 + rank


def main(argv=None) -> int:
    a = parse(argv)
    kind, dev = setup(a.device)
    rank, world, local = dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    gpu = kind == "cuda"
    a.size = a.size or ("small" if gpu else "toy_small")
    a.batch_size = a.batch_size or (64 if gpu else 4)
    a.episodes = a.episodes or (240 if gpu else 8)
    a.cameras = a.cameras or (2 if gpu else 1)
    per_host = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = a.workers if a.workers is not None else max(1, cpus // per_host)
    specs, cams = dataset(a, rank, local)
    # no shard_id / num_shards / device_id: taken from torch.distributed and LOCAL_RANK
    loader = RobotDataLoader(specs, target_frequency=FREQ, observation_horizon=1, action_horizon=TA,
                             cameras={c: (224, 224) for c in cams}, augmentations=["color_jitter"] if cams else [],
                             batch_size=a.batch_size, device=kind, seed=a.seed, epoch_size=a.epoch_size,
                             last_batch_policy="DROP", num_workers=workers, num_threads=min(4, workers),
                             output_map=["state", "action", "action_mask"] + [f"images.{c}" for c in cams])
    where = loader.placement
    assert (where.shard_id, where.num_shards) == (rank, world), "the loader's shard is this rank"
    torch.manual_seed(a.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    with torch.device(dev):
        model = groot_model.GrootStylePolicy(a.size, cams, loader.state_dim, loader.action_dim, TA)
    ddp = DDP(model, device_ids=[local] if gpu else None)
    opt = torch.optim.AdamW(ddp.parameters(), lr=a.lr, weight_decay=0.01, fused=gpu)
    step = 0
    if a.resume and a.checkpoint is not None and a.checkpoint.is_file():
        ck = torch.load(a.checkpoint, map_location=dev, weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        loader.load_state_dict(ck["loader"])  # rank 0's loader state resumes every rank
        step = int(ck["step"])
        if rank == 0:
            print(f"resumed from {a.checkpoint} at step {step} (epoch {ck['loader']['epoch']}, "
                  f"{ck['loader']['batches_done']} batches done)", flush=True)

    def save() -> None:
        if rank == 0 and a.checkpoint is not None:
            a.checkpoint.parent.mkdir(parents=True, exist_ok=True)
            tmp = a.checkpoint.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "optim": opt.state_dict(), "loader": loader.state_dict(), "step": step}, tmp)
            tmp.replace(a.checkpoint)
        dist.barrier()

    if rank == 0:
        print(f"world {world} ({kind}, {dist.get_backend()}), per-rank batch {a.batch_size}, global batch {loader.global_batch_size}, "
              f"model {a.size} ({model.vit_name}), {len(loader)} steps per epoch, {workers} decoding workers per rank", flush=True)
    info = [None] * world
    dist.all_gather_object(info, {"rank": rank, "shard_id": where.shard_id, "num_shards": where.num_shards, "source": where.source,
                                  "local_rank": where.local_rank, "device_id": loader.device_id, "batches_per_epoch": len(loader)})
    if len({r["batches_per_epoch"] for r in info}) != 1:
        raise SystemExit(f"ranks disagree on batches per epoch: {info}")
    amp = groot_model.autocast("cuda" if gpu else "cpu", enabled=gpu)
    losses, t0, first = [], None, step  # losses stay on the device (no host sync per step)
    while step < a.steps:
        for batch in loader:
            torch.manual_seed(step_generator_seed(a.seed, step, rank))
            loss = groot_model.train_step(ddp, opt, batch, amp)
            step += 1
            losses.append(loss.detach().float())
            if t0 is None:
                t0, first = time.perf_counter(), step  # from the end of the first step (start-up excluded)
            if step % a.log_every == 0 or step == a.steps:  # every rank takes part in the all-reduce
                mean = losses[-1].clone()
                dist.all_reduce(mean)
                if rank == 0:
                    print(f"step {step:5d}  loss {float(mean) / world:.6f}", flush=True)
            if step == a.save_at:
                save()
            if step >= a.steps:
                break
    if gpu:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0 if t0 is not None else 0.0
    sps = (step - first) * loader.global_batch_size / dt if dt > 0 else None
    mean = torch.stack(losses) if losses else torch.zeros(0, device=dev)
    dist.all_reduce(mean)
    losses = (mean / world).tolist()
    if a.save_at is None:
        save()
    if rank == 0:
        if sps is not None:
            print(f"{step - first} steps in {dt:.1f} s: {sps:.1f} samples/s over {world} rank(s)", flush=True)
        if a.out is not None:
            a.out.parent.mkdir(parents=True, exist_ok=True)
            a.out.write_text(json.dumps({"world_size": world, "backend": dist.get_backend(), "device": kind, "model": a.size,
                                         "batch_size": a.batch_size, "global_batch_size": loader.global_batch_size,
                                         "first_step": step - len(losses), "losses": losses, "samples_per_s": sps, "ranks": info,
                                         "nccl_nvls_enable": os.environ.get("NCCL_NVLS_ENABLE")}, indent=1))
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
