"""The hand-off of :class:`robocache.RobotDataLoader` batches to the training loop: host-computed
outputs (masks, indices, window times) to the training device, and the batches prepared a few
ahead in a thread.

A copy from pageable host memory blocks the host until the GPU has run everything queued before it
on the stream: with a training step in flight, ``next(loader)`` would wait for that step to end
and the GPU would then idle while the host prepares the next one. Here the outputs are packed into
a pinned buffer and copied with one non-blocking copy on the current stream; a few buffers are
reused round-robin, each guarded by an event recorded after its copy.

Each batch also costs Python time on the host (DALI's iterator: outputs, feeding the next
iteration; the copy and normalisation above). Done inside ``next(loader)`` that time is a gap in
which the GPU waits for the training loop's next launches; :func:`ahead_thread` does it in a thread,
``depth`` batches ahead, and ``next()`` takes a finished batch. The thread issues its GPU work on
the stream that was current where the iteration started (the training stream, as when it all ran
inside ``next()``); a caller that switches streams later gets the batch ordered by an event.
"""

from __future__ import annotations

import contextlib
import queue
import threading

import numpy as np

_END = object()


def ahead_thread(gen, device_id: int | None, depth: int = 2):
    """Iterate ``gen`` (batches: dicts of tensors) in a background thread, ``depth`` batches ahead.

    Args:
        gen: the generator; it runs, and is closed, in the thread (started on the first ``next``).
        device_id: CUDA device, or None for CPU batches.
        depth: finished batches held.

    Yields:
        the batches, in order; an exception in ``gen`` is raised here, at its place.
    """
    import torch  # noqa: PLC0415

    q: queue.Queue = queue.Queue(maxsize=max(int(depth), 1))
    stop = threading.Event()
    cuda = device_id is not None
    dev = torch.device("cuda", device_id) if cuda else None
    stream = torch.cuda.current_stream(dev) if cuda else None  # the caller's (training) stream

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            if cuda:
                torch.cuda.set_device(dev)
            with torch.cuda.stream(stream) if cuda else contextlib.nullcontext():
                for batch in gen:
                    ev = None
                    if cuda:
                        ev = torch.cuda.Event()
                        ev.record(stream)
                    if not put((batch, ev, None)):
                        return
            put((_END, None, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
            put((None, None, e))
        finally:
            gen.close()

    t = threading.Thread(target=run, name="robocache-handoff", daemon=True)
    t.start()
    try:
        while True:
            batch, ev, err = q.get()
            if err is not None:
                raise err
            if batch is _END:
                return
            if cuda:
                cur = torch.cuda.current_stream(dev)
                if cur != stream:  # the caller moved to another stream since the iteration started
                    cur.wait_event(ev)
                    for v in batch.values():
                        if isinstance(v, torch.Tensor) and v.is_cuda:
                            v.record_stream(cur)
            yield batch
    finally:
        stop.set()
        if threading.current_thread() is not t:  # (a finaliser may run anywhere)
            t.join()


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
