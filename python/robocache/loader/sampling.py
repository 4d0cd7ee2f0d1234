"""Epoch plans for :class:`robocache.RobotDataLoader`: which window goes at which position.

Pure numpy, no DALI: a plan is a function of ``(seed, epoch)`` and the window counts only, so every
data-parallel rank computes the same plan and takes its own shard of it.

Definitions (the loader's documentation repeats them):

* A **window** is ``(dataset, row)``: ``row`` indexes that dataset's window table (episode and anchor
  time).
* An **epoch** is ``epoch_size`` windows, positions ``0 .. epoch_size - 1``. Dataset ``d`` gets
  exactly ``quota[d]`` of them: ``weight[d] * epoch_size`` rounded by largest remainder.
* ``shuffle=True``: the dataset of each position is a seeded permutation of the quotas; within a
  dataset, windows are drawn without replacement from seeded permutations of its table (a dataset
  drawn more often than it has windows starts a fresh permutation). ``shuffle=False``: the datasets
  are interleaved as evenly as their quotas allow and windows come in table order, cycling.
* **Shards**: shard ``s`` of ``S`` owns the positions ``p`` with ``p % S == s``: disjoint, and
  together the whole epoch.
"""

from __future__ import annotations

import numpy as np


def quotas(weights: np.ndarray, epoch_size: int) -> np.ndarray:
    """Windows per dataset in an epoch: ``weights * epoch_size`` by largest remainder.

    Args:
        weights: ``[D]`` non-negative, summing to 1.
        epoch_size: windows per epoch.

    Returns:
        np.ndarray: ``[D]`` int64 summing to ``epoch_size``.
    """
    raw = np.asarray(weights, np.float64) * epoch_size
    q = np.floor(raw).astype(np.int64)
    rest = epoch_size - int(q.sum())
    if rest > 0:
        order = np.argsort(-(raw - q), kind="stable")
        order = order[np.asarray(weights)[order] > 0]
        q[order[:rest]] += 1
    return q


def _generator(seed: int, epoch: int, stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(epoch), stream])))


def epoch_plan(counts, weights, epoch_size: int, seed: int, epoch: int, shuffle: bool) -> tuple:
    """The windows of one epoch.

    Args:
        counts: windows in each dataset's table.
        weights: ``[D]`` mixture weights summing to 1.
        epoch_size: positions in the epoch.
        seed: user seed.
        epoch: epoch number.
        shuffle: shuffle datasets and windows (see module doc).

    Returns:
        tuple: ``(dataset [N] int64, row [N] int64)``.
    """
    counts = [int(c) for c in counts]
    q = quotas(weights, epoch_size)
    ds = np.empty(epoch_size, np.int64)
    row = np.empty(epoch_size, np.int64)
    if shuffle:
        ds[:] = np.repeat(np.arange(len(q)), q)
        ds = _generator(seed, epoch, 0).permutation(ds)
    else:
        # interleave: item j of dataset d sits at "time" (j + 0.5) / q[d]; stable merge
        keys = np.concatenate([(np.arange(n) + 0.5) / n for n in q if n > 0]) if epoch_size else np.zeros(0)
        ids = np.repeat(np.arange(len(q)), q)
        ds[:] = ids[np.lexsort((ids, keys))]
    for d, n in enumerate(q):
        if n == 0:
            continue
        if shuffle:
            g = _generator(seed, epoch, 1 + d)
            reps = -(-int(n) // counts[d])
            rows = np.concatenate([g.permutation(counts[d]) for _ in range(reps)])[:n]
        else:
            rows = np.arange(n) % counts[d]
        row[ds == d] = rows
    return ds, row


def shard_positions(epoch_size: int, batch_size: int, shard_id: int, num_shards: int, policy: str) -> np.ndarray:
    """Epoch positions a shard yields, in order, after the last-batch policy.

    ``"partial"``: the shard's own positions, the last batch possibly short. ``"drop"``: every shard
    yields ``floor(floor(N / S) / B)`` full batches. ``"fill"``: every shard yields
    ``ceil(ceil(N / S) / B)`` full batches, the tail filled by wrapping around to the shard's first
    positions (DALI's ``FILL``). With ``"drop"`` and ``"fill"`` all shards yield the same number of
    batches, which data-parallel training needs.

    Args:
        epoch_size: positions in the epoch.
        batch_size: samples per batch.
        shard_id: this shard.
        num_shards: number of shards.
        policy: ``"partial"``, ``"drop"`` or ``"fill"``.

    Returns:
        np.ndarray: int64 positions.
    """
    own = np.arange(shard_id, epoch_size, num_shards, dtype=np.int64)
    if policy == "partial":
        return own
    if policy == "drop":
        n = (epoch_size // num_shards) // batch_size * batch_size
        return own[:n]
    per_shard = -(-epoch_size // num_shards)
    n = -(-per_shard // batch_size) * batch_size
    if len(own) == 0:
        return own
    return own[np.arange(n) % len(own)]
