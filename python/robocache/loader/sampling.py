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
  together the whole epoch. Batch ``k`` of shard ``s`` holds its positions ``k*B .. k*B + B - 1``,
  so the ``k``-th batches of all shards together are the positions ``[k*G, (k+1)*G)`` with
  ``G = S*B``: the global batch of a data-parallel step is a contiguous slice of the epoch, the same
  for any ``S`` with the same ``G`` (see :func:`shard_positions` for the last step).
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

    Every policy gives every shard the same number of batches (data-parallel training needs it:
    a rank with one batch more would wait forever in the gradient all-reduce). With ``N`` positions,
    ``S`` shards, ``B`` samples per batch and ``G = S*B``:

    * ``"drop"``: ``floor(N / G)`` full batches per shard; the steps cover the positions
      ``[0, floor(N / G) * G)``, the rest of the epoch is dropped (as one process with batch ``G``).
    * ``"partial"``: every shard yields ``ceil(N / S)`` positions, its own, and a shard one short
      repeats its first position (at most ``S - 1`` repeats per epoch, as
      ``torch.utils.data.DistributedSampler``), so the last batch has the same size
      ``ceil(N / S) - (steps - 1) * B`` on every shard; ``ceil(N / G)`` batches. ``S = 1``: exactly
      the epoch, the last batch short.
    * ``"fill"``: ``ceil(N / G)`` full batches per shard, the tail filled by wrapping around to the
      shard's own first positions (DALI's ``FILL``); a shard never yields another shard's position.

    In every case step ``k < floor(N / G)`` covers exactly the positions ``[k*G, (k+1)*G)``; the last
    step of ``"partial"``/``"fill"`` covers ``[k*G, N)`` plus repeats that depend on ``S``.

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
    if len(own) == 0:
        return own
    if policy == "drop":
        n = epoch_size // (num_shards * batch_size) * batch_size
    elif policy == "partial":
        n = -(-epoch_size // num_shards)
    else:
        n = -(-epoch_size // (num_shards * batch_size)) * batch_size
    return own[np.arange(n) % len(own)]
