"""PyTorch side of RoboCache's outputs."""

from __future__ import annotations


def as_bfloat16(t):
    """Views a uint16 tensor of bfloat16 bit patterns (what ``dtype="bfloat16"`` operators output) as
    ``torch.bfloat16``, without a copy.

    Args:
        t: a ``torch.uint16`` or ``torch.int16`` tensor (or already ``torch.bfloat16``).

    Returns:
        The same memory as a ``torch.bfloat16`` tensor.

    Raises:
        TypeError: for any other dtype.
    """
    import torch

    if t.dtype == torch.bfloat16:
        return t
    if t.dtype not in (torch.uint16, torch.int16):
        raise TypeError(f"robocache: expected uint16 bfloat16 bits, got {t.dtype}")
    return t.view(torch.bfloat16)
