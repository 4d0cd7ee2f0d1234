"""Independent numpy references of the augmentation operators, for tests and benchmarks: a vectorised
Philox4x32-10 (the counter-based generator both backends use, written again from the paper), and
numpy implementations of ``temporal_jitter``, ``action_noise`` and ``points_augment`` that draw the same
random numbers from the same keys (seed, iteration, sample, element, stream). They follow the
formulas in the operators' documentation, not the Rust code."""

from __future__ import annotations

import numpy as np

from .testing import reference_resample

M32 = np.uint64(0xFFFFFFFF)
STREAM_JITTER_PARAMS = 0x544A0001
STREAM_NOISE_APPLY = 0x414E0001
STREAM_NOISE = 0x414E0002
STREAM_POINTS_PARAMS = 0x50410001
STREAM_POINTS_JITTER = 0x50410002
STREAM_POINTS_DROP = 0x50410004


def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 (Salmon et al., SC'11), vectorised over numpy arrays of 32-bit values.

    Returns:
        Four uint64 arrays holding the 32-bit output words.
    """
    c = [np.asarray(x, dtype=np.uint64) & M32 for x in (c0, c1, c2, c3)]
    c = np.broadcast_arrays(*c)
    c = [x.copy() for x in c]
    k0 = np.uint64(k0) & M32
    k1 = np.uint64(k1) & M32
    for r in range(10):
        if r:
            k0 = (k0 + np.uint64(0x9E3779B9)) & M32
            k1 = (k1 + np.uint64(0xBB67AE85)) & M32
        p0 = np.uint64(0xD2511F53) * c[0]
        p1 = np.uint64(0xCD9E8D57) * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & M32, (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & M32]
    return c


def words(seed, iteration, sample, stream, index):
    """The four words of element(s) ``index`` under (seed, iteration, sample, stream)."""
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    return philox4x32(index, sample, int(iteration) & 0xFFFFFFFF, stream, seed & 0xFFFFFFFF, seed >> 32)


def u53(a, b):
    """A float64 uniform in [0, 1) from two words (27 + 26 bits)."""
    return ((a >> np.uint64(5)).astype(np.float64) * 67108864.0 + (b >> np.uint64(6)).astype(np.float64)) / 9007199254740992.0


def u24(a):
    """A float32 uniform in [0, 1) from one word (24 bits)."""
    return (a >> np.uint64(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)


def normals_f32(a, b):
    """Two float32 standard normals from two words (Box-Muller on 24-bit uniforms)."""
    r = np.sqrt(np.float32(-2.0) * np.log(np.float32(1.0) - u24(a)))
    th = np.float32(2.0 * np.pi) * u24(b)
    return r * np.cos(th), r * np.sin(th)


def normals(w):
    """Two standard normals per set of four words (Box-Muller)."""
    r = np.sqrt(-2.0 * np.log(1.0 - u53(w[0], w[1])))
    th = 2.0 * np.pi * u53(w[2], w[3])
    return r * np.cos(th), r * np.sin(th)


# ---------------------------------------------------------------- temporal_jitter

def jitter_draw(seed, iteration, sample, speed=(0.8, 1.2), offset=(0.0, 0.0), warp_strength=0.0, warp_knots=4):
    """Speed, offset and knot speeds of one sample (arguments rounded to float32, as DALI passes them)."""
    speed, offset = np.float32(speed).astype(np.float64), np.float32(offset).astype(np.float64)
    warp_strength = float(np.float32(warp_strength))
    w = words(seed, iteration, sample, STREAM_JITTER_PARAMS, 0)
    v = speed[0] + (speed[1] - speed[0]) * u53(w[0], w[1])
    o = offset[0] + (offset[1] - offset[0]) * u53(w[2], w[3])
    knots = None
    if warp_strength > 0:
        k = warp_knots + 2
        j = np.arange(k)
        ww = words(seed, iteration, sample, STREAM_JITTER_PARAMS, 1 + j // 2)
        u = np.where(j % 2 == 0, u53(ww[0], ww[1]), u53(ww[2], ww[3]))
        knots = 1.0 + warp_strength * (2.0 * u - 1.0)
    return float(v), float(o), knots


def warp_map(knots, x):
    """The normalised integral of the piecewise-linear speed through ``knots`` at ``x`` in [0, 1]."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0, 1)
    if knots is None:
        return x
    k = len(knots)
    h = 1.0 / (k - 1)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (knots[:-1] + knots[1:]) * h)])
    j = np.minimum(np.floor(x * (k - 1)).astype(int), k - 2)
    f = (x - j * h) / h
    val = cum[j] + h * (knots[j] * f + 0.5 * (knots[j + 1] - knots[j]) * f * f)
    return np.clip(val / cum[-1], 0, 1)


def reference_temporal_jitter(data, ts, seed, iteration, sample, *, speed=(0.8, 1.2), offset=(0.0, 0.0), warp_strength=0.0, warp_knots=4, target_rate=None, num_samples=None, method="linear"):
    """numpy temporal_jitter of one sample: ``(data at the warped times [N, C], warped times [N])``."""
    v, o, knots = jitter_draw(seed, iteration, sample, speed, offset, warp_strength, warp_knots)
    ns = np.asarray(ts).dtype == np.int64
    span = float(ts[-1] - ts[0]) * (1e-9 if ns else 1.0)
    o = min(o, span)
    src = span - o
    target_rate = None if target_rate is None else float(np.float32(target_rate))
    rate = target_rate if target_rate is not None else ((len(ts) - 1) / span if span > 0 else 0.0)
    if num_samples is not None:
        n = num_samples
        dur = (n - 1) / rate if rate > 0 else 0.0
        length = v * dur
    else:
        dur = src / v
        n = int(np.floor(dur * rate + 1e-6)) + 1 if dur > 0 and rate > 0 else 1
        length = src
    tau = np.minimum(np.arange(n) / rate, dur) if rate > 0 else np.zeros(n)
    x = tau / dur if dur > 0 else np.zeros(n)
    sec = o + length * warp_map(knots, x)
    if ns:
        t = ts[0] + np.round(sec * 1e9).astype(np.int64)
    else:
        t = ts[0] + sec
    t = np.minimum(t, ts[-1])
    return reference_resample(data, ts, t, method), t


# ---------------------------------------------------------------- action_noise

def noise_applies(seed, iteration, sample, p):
    """Whether action_noise noises this sample (``u < p``)."""
    w = words(seed, iteration, sample, STREAM_NOISE_APPLY, 0)
    return bool(u53(w[0], w[1]) < float(np.float32(p)))


def reference_action_noise(x, seed, iteration, sample, sigma, *, p=1.0, distribution="gaussian", correlation_time=0.0, rate=None, low=None, high=None):
    """numpy action_noise of one float32 sample ``[T, C]``."""
    x = np.asarray(x)
    t, c = x.shape
    if not noise_applies(seed, iteration, sample, p):
        return x.copy()
    e = np.arange(t * c, dtype=np.uint64)
    w = words(seed, iteration, sample, STREAM_NOISE, e >> np.uint64(1))
    odd = (e & np.uint64(1)) == 1
    if distribution == "gaussian":
        z0, z1 = normals(w)
        z = np.where(odd, z1, z0)
    else:
        z = 2.0 * np.where(odd, u53(w[2], w[3]), u53(w[0], w[1])) - 1.0
    eps = z.reshape(t, c) * np.broadcast_to(np.asarray(sigma, dtype=np.float32).astype(np.float64), (c,))
    if correlation_time > 0:
        rate, correlation_time = float(np.float32(rate)), float(np.float32(correlation_time))
        a = np.exp(-(1.0 / rate) / correlation_time)
        b = np.sqrt(1.0 - a * a)
        noise = np.empty_like(eps)
        noise[0] = eps[0]
        for i in range(1, t):
            noise[i] = a * noise[i - 1] + b * eps[i]
    else:
        noise = eps
    out = x.astype(np.float32) + noise.astype(np.float32)
    if low is not None:
        out = np.maximum(out, np.broadcast_to(np.asarray(low, dtype=np.float32), (c,)))
    if high is not None:
        out = np.minimum(out, np.broadcast_to(np.asarray(high, dtype=np.float32), (c,)))
    return out


# ---------------------------------------------------------------- points_augment

def points_transform(seed, iteration, sample, *, rotation="z", angle=(-np.pi, np.pi), scale=(1.0, 1.0), translation=(0.0, 0.0, 0.0)):
    """The float32 ``[4, 4]`` transform of one sample."""
    ang = np.float32(angle).astype(np.float64)
    sc = np.float32(scale).astype(np.float64)
    tr = np.float32(translation).astype(np.float64)
    w = [words(seed, iteration, sample, STREAM_POINTS_PARAMS, i) for i in range(5)]
    u = [(u53(x[0], x[1]), u53(x[2], x[3])) for x in w]
    if rotation == "z":
        th = ang[0] + (ang[1] - ang[0]) * u[0][0]
        r = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1.0]])
    elif rotation == "so3":
        a, b, c = u[3][0], u[3][1], u[4][0]
        qx, qy = np.sqrt(1 - a) * np.sin(2 * np.pi * b), np.sqrt(1 - a) * np.cos(2 * np.pi * b)
        qz, qw = np.sqrt(a) * np.sin(2 * np.pi * c), np.sqrt(a) * np.cos(2 * np.pi * c)
        r = np.array([
            [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)],
            [2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)],
            [2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)],
        ])
    else:
        r = np.eye(3)
    s = sc[0] + (sc[1] - sc[0]) * u[0][1]
    t = np.array([-tr[0] + 2 * tr[0] * u[1][0], -tr[1] + 2 * tr[1] * u[1][1], -tr[2] + 2 * tr[2] * u[2][0]])
    m = np.eye(4, dtype=np.float32)
    m[:3, :3] = (s * r).astype(np.float32)
    m[:3, 3] = t.astype(np.float32)
    return m


def reference_points_augment(pts, seed, iteration, sample, *, jitter=0.0, jitter_clip=0.0, dropout=0.0, **transform_kw):
    """numpy points_augment of one cloud: ``(points, transform [4, 4], keep-mask [N] uint8)``."""
    pts = np.asarray(pts, dtype=np.float32)
    m = points_transform(seed, iteration, sample, **transform_kw)
    x, y, z = pts[:, 0], pts[:, 1], pts[:, 2]
    out = pts.copy()
    for r in range(3):
        out[:, r] = m[r, 0] * x + m[r, 1] * y + m[r, 2] * z + m[r, 3]
    n = len(pts)
    idx = np.arange(n, dtype=np.uint64)
    jit, clip = float(np.float32(jitter)), float(np.float32(jitter_clip))
    if jit > 0:
        w = words(seed, iteration, sample, STREAM_POINTS_JITTER, idx)
        a0, a1 = normals_f32(w[0], w[1])
        b0, _ = normals_f32(w[2], w[3])
        d = np.stack([a0, a1, b0], 1).astype(np.float32) * np.float32(jit)
        if clip > 0:
            d = np.clip(d, np.float32(-clip), np.float32(clip))
        out[:, :3] = out[:, :3] + d
    mask = np.ones(n, dtype=np.uint8)
    if dropout > 0:
        w = words(seed, iteration, sample, STREAM_POINTS_DROP, idx)
        mask = (u24(w[0]) >= np.float32(dropout)).astype(np.uint8)
    return out, m, mask
