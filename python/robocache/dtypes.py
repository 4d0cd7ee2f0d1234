"""bfloat16 without a bfloat16 dtype: DALI 2.4 (and numpy) have none, so bfloat16 data travels as
uint16 bit patterns. These helpers convert on the host; on the GPU side use
:func:`robocache.torch.as_bfloat16` (a zero-copy view)."""

from __future__ import annotations

import numpy as np


def float_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Rounds float values to bfloat16 (nearest even; NaN stays NaN) and returns the uint16 bits.

    Args:
        x: any float array.

    Returns:
        A uint16 array of the same shape holding bfloat16 bit patterns.
    """
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def bf16_bits_to_float(b: np.ndarray) -> np.ndarray:
    """Widens bfloat16 bit patterns (uint16) to float32 exactly.

    Args:
        b: a uint16 array of bfloat16 bit patterns.

    Returns:
        A float32 array of the same shape.

    Raises:
        TypeError: when ``b`` is not uint16.
    """
    b = np.asarray(b)
    if b.dtype != np.uint16:
        raise TypeError(f"robocache: bfloat16 bits must be uint16, got {b.dtype}")
    return (b.astype(np.uint32) << 16).view(np.float32)
