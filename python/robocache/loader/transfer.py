"""Host-computed batch outputs (masks, indices, window times) to the training device for
:class:`robocache.RobotDataLoader`.

A copy from pageable host memory blocks the host until the GPU has run everything queued before it
on the stream: with a training step in flight, ``next(loader)`` would wait for that step to end
and the GPU would then idle while the host prepares the next one. Here the outputs are packed into
a pinned buffer and copied with one non-blocking copy on the current stream; a few buffers are
reused round-robin, each guarded by an event recorded after its copy.
"""

from __future__ import annotations

import numpy as np


def host_to_device(device: str, device_id: int | None, slots: int = 4):
    """``move(dict of numpy arrays) -> dict of torch tensors`` on the loader's device.

    Args:
        device: ``"cuda"`` or ``"cpu"`` (CPU: zero-copy ``torch.from_numpy``).
        device_id: CUDA device.
        slots: pinned buffers reused round-robin.
    """
    import torch  # noqa: PLC0415

    if device != "cuda":
        return lambda d: {n: torch.from_numpy(v) for n, v in d.items()}
    return _PinnedCopy(torch.device("cuda", device_id), slots)


class _PinnedCopy:
    def __init__(self, dev, slots: int) -> None:
        self.dev, self.k = dev, 0
        self.bufs: list = [None] * max(int(slots), 1)
        self.events: list = [None] * len(self.bufs)

    def _slot(self, n: int):
        import torch  # noqa: PLC0415

        k = self.k
        self.k = (k + 1) % len(self.bufs)
        if self.events[k] is not None:
            self.events[k].synchronize()  # its previous copy is done (long ago, in practice)
        if self.bufs[k] is None or self.bufs[k].numel() < n:
            try:
                self.bufs[k] = torch.empty(max(n, 4096), dtype=torch.uint8, pin_memory=True)
            except RuntimeError:  # no pinned memory to be had: pageable (correct, slower)
                self.bufs[k] = torch.empty(max(n, 4096), dtype=torch.uint8)
        return k, self.bufs[k]

    def __call__(self, d: dict) -> dict:
        import torch  # noqa: PLC0415

        if not d:
            return {}
        offs, n = [], 0
        for v in d.values():
            offs.append(n)
            n += -(-v.nbytes // 8) * 8
        k, buf = self._slot(max(n, 8))
        host = buf.numpy()
        for o, v in zip(offs, d.values()):
            host[o:o + v.nbytes] = np.ascontiguousarray(v).reshape(-1).view(np.uint8)
        g = buf[:max(n, 8)].to(self.dev, non_blocking=buf.is_pinned())
        ev = torch.cuda.Event()
        ev.record(torch.cuda.current_stream(self.dev))
        self.events[k] = ev
        out = {}
        for o, (name, v) in zip(offs, d.items()):
            t = torch.from_numpy(np.empty(0, v.dtype)).dtype
            out[name] = g[o:o + v.nbytes].view(t).view(v.shape) if v.size else torch.empty(v.shape, dtype=t, device=self.dev)
        return out
