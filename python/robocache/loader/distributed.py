"""Data-parallel placement of a :class:`robocache.RobotDataLoader`: which shard this process reads
(its global rank), how many shards there are (the world size) and which GPU runs its DALI pipeline
(its local rank). Pure Python, no DALI, no communication.

Resolution, for each of ``shard_id``, ``num_shards`` and ``device_id`` separately (explicit wins):

1. the value the user passed;
2. ``torch.distributed`` when a default process group is initialised: ``get_rank()``,
   ``get_world_size()`` (global, so shards are disjoint across hosts);
3. the environment: ``RANK`` and ``WORLD_SIZE`` (set by ``torchrun`` and read by
   ``init_process_group("env://")``; other launchers, e.g. ``mpirun`` or ``srun``, export them the
   same way); both or neither must be set;
4. a single process: shard 0 of 1.

The GPU (``device="cuda"`` only): ``device_id``, else ``LOCAL_RANK`` (``torchrun``), else
``torch.cuda.current_device()``. A process that sees one CUDA device (``CUDA_VISIBLE_DEVICES`` set
per process) uses it whatever its ``LOCAL_RANK``; a ``LOCAL_RANK`` beyond the devices it sees is an
error (several ranks would silently share a GPU otherwise).
"""

from __future__ import annotations

import dataclasses
import os
import sys


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a loader sits in a data-parallel job.

    Attributes:
        shard_id: this process's shard (its global data-parallel rank).
        num_shards: number of shards (the data-parallel world size).
        local_rank: ``LOCAL_RANK`` when set, else None.
        source: where ``shard_id``/``num_shards`` came from: ``"explicit"``, ``"torch.distributed"``,
            ``"environment"`` (``RANK``/``WORLD_SIZE``) or ``"single process"`` (or two of them joined by
            ``" + "`` when one value was passed and the other found).
    """

    shard_id: int
    num_shards: int
    local_rank: int | None
    source: str


def _env_int(name: str, lo: int) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        v = int(raw.strip())
    except ValueError:
        raise ValueError(f"RobotDataLoader: environment variable {name}={raw!r} is not an integer") from None
    if v < lo:
        raise ValueError(f"RobotDataLoader: environment variable {name}={v} must be >= {lo}")
    return v


def detected() -> tuple:
    """``(rank, world_size, source)`` from ``torch.distributed`` or the environment (see the module doc).

    ``torch.distributed`` is consulted only when it is already imported: a process group cannot be
    initialised otherwise, and the loader does not import it for nothing.

    Raises:
        ValueError: for ``RANK`` without ``WORLD_SIZE`` (or the reverse), non-integer values, or
            ``RANK`` outside ``[0, WORLD_SIZE)``.
    """
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return int(dist.get_rank()), int(dist.get_world_size()), "torch.distributed"
    rank, world = _env_int("RANK", 0), _env_int("WORLD_SIZE", 1)
    if (rank is None) != (world is None):
        have, miss = ("RANK", "WORLD_SIZE") if world is None else ("WORLD_SIZE", "RANK")
        raise ValueError(f"RobotDataLoader: environment variable {have}={os.environ[have]!r} is set but {miss} is not; "
                         f"set both (torchrun does) or pass shard_id= and num_shards=")
    if rank is None:
        return 0, 1, "single process"
    if rank >= world:
        raise ValueError(f"RobotDataLoader: environment variable RANK={rank} must be in [0, WORLD_SIZE={world})")
    return rank, world, "environment"


def placement(shard_id: int | None, num_shards: int | None) -> Placement:
    """Resolve the shard of this process (explicit values win; see the module doc).

    Args:
        shard_id: the user's ``shard_id`` or None.
        num_shards: the user's ``num_shards`` or None.

    Returns:
        Placement: the resolved shard, shard count and local rank (values not yet range-checked
        against each other when one was passed explicitly; the loader checks them).

    Raises:
        ValueError: as :func:`detected`.
    """
    local = _env_int("LOCAL_RANK", 0)
    if shard_id is not None and num_shards is not None:
        return Placement(shard_id, num_shards, local, "explicit")
    rank, world, src = detected()
    if shard_id is None and num_shards is None:
        return Placement(rank, world, local, src)
    return Placement(rank if shard_id is None else shard_id, world if num_shards is None else num_shards, local,
                     f"explicit + {src}")


def gpu_for(device_id: int | None, local_rank: int | None, gpus: int) -> int:
    """The CUDA device of this process's DALI pipeline (see the module doc).

    Args:
        device_id: the user's ``device_id`` or None.
        local_rank: ``LOCAL_RANK`` or None.
        gpus: CUDA devices this process sees.

    Returns:
        int: the device index.

    Raises:
        ValueError: for a ``device_id`` or ``LOCAL_RANK`` outside the devices this process sees.
    """
    if device_id is not None:
        if gpus and not 0 <= device_id < gpus:
            raise ValueError(f"RobotDataLoader: device_id={device_id} but this process sees {gpus} CUDA device(s)")
        return int(device_id)
    if local_rank is not None:
        if gpus == 1:
            return 0
        if local_rank >= gpus:
            raise ValueError(f"RobotDataLoader: LOCAL_RANK={local_rank} but this process sees {gpus} CUDA devices: run at most "
                             f"{gpus} processes per host, or pass device_id=")
        return int(local_rank)
    try:
        import torch  # noqa: PLC0415

        return int(torch.cuda.current_device())
    except Exception:  # noqa: BLE001 - torch without CUDA: DALI's default device
        return 0
