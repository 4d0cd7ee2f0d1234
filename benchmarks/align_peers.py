"""The peers fn.robocache.align is benchmarked against (benchmarks/gpu_align.py): the same semantics
(NaN rows bridged within max_gap, valid flags, hold fill, SLERP for quaternion groups) written the
fastest way we know with PyTorch on the GPU and with numpy on one CPU core, on dense batches
(every sample of a stream has the same length; timestamps differ per sample).

Both take ``streams``: a list of ``(data [B, T, C] float32, timestamps [B, T] float64)``, the
reference clock ``q [B, K]`` float64, per-stream ``methods`` and ``max_gap`` (seconds), and
``quats``: ``{stream: [first channel, ...]}``; both return ``(fused [B, K, sum C], valid [B, K, N])``.
"""

from __future__ import annotations

import numpy as np


def _torch_slerp(torch, a, b, w):
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    dot = (a * b).sum(-1, keepdim=True)
    b = torch.where(dot < 0, -b, b)
    th = 2.0 * torch.atan2((a - b).norm(dim=-1, keepdim=True), (a + b).norm(dim=-1, keepdim=True))
    s = torch.sin(th)
    pos = s > 0
    ca = torch.where(pos, torch.sin((1 - w) * th) / s, 1 - w)
    cb = torch.where(pos, torch.sin(w * th) / s, w)
    r = ca * a + cb * b
    return r / r.norm(dim=-1, keepdim=True)


def torch_align(streams, q, methods, max_gap, quats):
    """PyTorch implementation: isnan + cummax/cummin for the nearest valid rows, searchsorted,
    gathers, lerp in float32 and SLERP in float64, per stream, on [B, K] at once."""
    import torch

    outs, valids = [], []
    for s, (d, ts) in enumerate(streams):
        b, t, c = d.shape
        k = q.shape[1]
        ok = ~torch.isnan(d).any(-1)
        idx = torch.arange(t, device=d.device).expand(b, t)
        prev = torch.where(ok, idx, -1).cummax(1).values
        nxt = torch.where(ok, idx, t).flip(1).cummin(1).values.flip(1)
        lo = torch.searchsorted(ts, q, right=True) - 1
        loc = lo.clamp(0, t - 1)
        inside = (q >= ts[:, :1]) & (q <= ts[:, -1:])
        exact = (torch.gather(ts, 1, loc) == q) & torch.gather(ok, 1, loc) & (lo >= 0)
        left = torch.where(lo >= 0, torch.gather(prev, 1, loc), torch.full_like(lo, -1))
        right = torch.where(lo + 1 <= t - 1, torch.gather(nxt, 1, (lo + 1).clamp(0, t - 1)), torch.full_like(lo, t))
        has_l, has_r = left >= 0, right < t
        lc, rc = left.clamp(0, t - 1), right.clamp(0, t - 1)
        tl, tr = torch.gather(ts, 1, lc), torch.gather(ts, 1, rc)
        valid = exact | (inside & has_l & has_r & (tr - tl <= max_gap[s]))
        w = torch.zeros_like(q)
        if methods[s] == "previous":
            i0 = i1 = lc
        elif methods[s] == "nearest":
            i0 = i1 = torch.where(q - tl <= tr - q, lc, rc)
        else:
            i0, i1 = lc, rc
            w = torch.nan_to_num((q - tl) / (tr - tl))
        i0, i1 = torch.where(exact, loc, i0), torch.where(exact, loc, i1)
        w = torch.where(exact, torch.zeros_like(w), w)
        g0 = torch.gather(d, 1, i0[..., None].expand(b, k, c))
        g1 = torch.gather(d, 1, i1[..., None].expand(b, k, c))
        val = g0 + w[..., None].float() * (g1 - g0)
        held = torch.gather(d, 1, torch.where(has_l, lc, rc)[..., None].expand(b, k, c))
        for f in quats.get(s, []):
            a, bq = g0[..., f:f + 4].double(), g1[..., f:f + 4].double()
            if methods[s] == "linear":
                val[..., f:f + 4] = _torch_slerp(torch, a, bq, w[..., None]).float()
            else:
                val[..., f:f + 4] = (a / a.norm(dim=-1, keepdim=True)).float()
            h = held[..., f:f + 4].double()
            held[..., f:f + 4] = (h / h.norm(dim=-1, keepdim=True)).float()
        outs.append(torch.where(valid[..., None], val, held))
        valids.append(valid)
    return torch.cat(outs, -1), torch.stack(valids, -1)


def _np_slerp(a, b, w):
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    b = np.where((a * b).sum(-1, keepdims=True) < 0, -b, b)
    th = 2.0 * np.arctan2(np.linalg.norm(a - b, axis=-1, keepdims=True), np.linalg.norm(a + b, axis=-1, keepdims=True))
    s = np.sin(th)
    with np.errstate(divide="ignore", invalid="ignore"):
        ca = np.where(s > 0, np.sin((1 - w) * th) / s, 1 - w)
        cb = np.where(s > 0, np.sin(w * th) / s, w)
    r = ca * a + cb * b
    return r / np.linalg.norm(r, axis=-1, keepdims=True)


def numpy_align(streams, q, methods, max_gap, quats):
    """numpy implementation, one core: the same algorithm as :func:`torch_align`, vectorised over
    the batch (one ``searchsorted`` per sample and stream: numpy's is 1-D)."""
    outs, valids = [], []
    bidx = np.arange(q.shape[0])[:, None]
    for s, (d, ts) in enumerate(streams):
        b, t, c = d.shape
        ok = ~np.isnan(d).any(-1)
        idx = np.broadcast_to(np.arange(t), (b, t))
        prev = np.maximum.accumulate(np.where(ok, idx, -1), axis=1)
        nxt = np.minimum.accumulate(np.where(ok, idx, t)[:, ::-1], axis=1)[:, ::-1]
        lo = np.stack([np.searchsorted(ts[i], q[i], side="right") for i in range(b)]) - 1
        loc = np.clip(lo, 0, t - 1)
        inside = (q >= ts[:, :1]) & (q <= ts[:, -1:])
        exact = (ts[bidx, loc] == q) & ok[bidx, loc] & (lo >= 0)
        left = np.where(lo >= 0, prev[bidx, loc], -1)
        right = np.where(lo + 1 <= t - 1, nxt[bidx, np.clip(lo + 1, 0, t - 1)], t)
        has_l, has_r = left >= 0, right < t
        lc, rc = np.clip(left, 0, t - 1), np.clip(right, 0, t - 1)
        tl, tr = ts[bidx, lc], ts[bidx, rc]
        valid = exact | (inside & has_l & has_r & (tr - tl <= max_gap[s]))
        w = np.zeros_like(q)
        if methods[s] == "previous":
            i0 = i1 = lc
        elif methods[s] == "nearest":
            i0 = i1 = np.where(q - tl <= tr - q, lc, rc)
        else:
            i0, i1 = lc, rc
            with np.errstate(divide="ignore", invalid="ignore"):
                w = np.nan_to_num((q - tl) / (tr - tl))
        i0, i1 = np.where(exact, loc, i0), np.where(exact, loc, i1)
        w = np.where(exact, 0.0, w)
        g0, g1 = d[bidx, i0], d[bidx, i1]
        val = g0 + w[..., None].astype(np.float32) * (g1 - g0)
        held = d[bidx, np.where(has_l, lc, rc)]
        for f in quats.get(s, []):
            a, bq = g0[..., f:f + 4].astype(np.float64), g1[..., f:f + 4].astype(np.float64)
            if methods[s] == "linear":
                val[..., f:f + 4] = _np_slerp(a, bq, w[..., None])
            else:
                val[..., f:f + 4] = a / np.linalg.norm(a, axis=-1, keepdims=True)
            h = held[..., f:f + 4].astype(np.float64)
            held[..., f:f + 4] = h / np.linalg.norm(h, axis=-1, keepdims=True)
        outs.append(np.where(valid[..., None], val, held))
        valids.append(valid)
    return np.concatenate(outs, -1), np.stack(valids, -1)
