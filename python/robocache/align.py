"""``robocache.align.align``: the keyword spelling of ``fn.robocache.align``'s reference clock.

DALI argument inputs are CPU tensors of one fixed type, so the operator takes per-sample reference
timestamps (float64 seconds or int64 nanoseconds, like the streams') as its last regular input
instead. This helper lets pipelines write ``reference_timestamps=cam_t``::

    from robocache.align import align

    fused, valid, t = align(imu, imu_t, joints, joints_t, reference_timestamps=cam_t,
                            methods=["linear", "previous"], max_gap=[0.02, 0.05])
"""

from __future__ import annotations


def align(*streams, reference_timestamps=None, **kwargs):
    """Calls ``fn.robocache.align`` with ``reference_timestamps`` appended as the last input.

    Args:
        *streams: ``data_0, timestamps_0, data_1, timestamps_1, ...`` DALI data nodes (1 to 8 pairs).
        reference_timestamps: a CPU data node of per-sample reference timestamps, or ``None`` (then
            ``target_rate`` or ``num_samples`` must be given).
        **kwargs: the operator's arguments (``methods``, ``max_gap``, ``quaternions``, ``fill``, ...).

    Returns:
        ``(fused, valid, timestamps)`` data nodes.

    Raises:
        ValueError: when ``streams`` is not a non-empty list of (data, timestamps) pairs.
    """
    from nvidia.dali import fn

    from . import load_plugin

    load_plugin()
    if len(streams) == 0 or len(streams) % 2:
        raise ValueError(f"robocache.align: expected (data, timestamps) pairs, got {len(streams)} inputs")
    inputs = list(streams) + ([reference_timestamps] if reference_timestamps is not None else [])
    return tuple(fn.robocache.align(*inputs, **kwargs))
