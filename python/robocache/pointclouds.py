"""Point-cloud readers and independent numpy references for the point-cloud operators.

Readers: KITTI / nuScenes ``.bin`` files (float32 rows of 4 or 5 values) and PCL ``.pcd`` files
(``ascii``, ``binary`` and ``binary_compressed``, whose LZF compression is decoded here in Python).
References: ``floor(p / voxel)`` + ``np.unique`` + float64 means, written without the plugin, used by
the tests and by ``benchmarks/gpu_points.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "read_bin",
    "read_pcd",
    "lzf_decompress",
    "reference_voxel_downsample",
    "reference_voxelize",
    "reference_normalize",
]


def read_bin(path: str | Path, columns: int = 4) -> np.ndarray:
    """Reads a KITTI (4 columns: x, y, z, intensity) or nuScenes (5: ..., ring) ``.bin`` scan.

    Args:
        path: the file.
        columns: float32 values per point.

    Returns:
        ``[N, columns]`` float32.
    """
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size % columns:
        raise ValueError(f"{path}: {raw.size} float32 values are not a multiple of {columns}")
    return raw.reshape(-1, columns)


def lzf_decompress(data: bytes, size: int) -> bytes:
    """Decompresses LZF (liblzf's format, as PCL's ``binary_compressed`` uses).

    Args:
        data: compressed bytes.
        size: the uncompressed size.

    Returns:
        ``size`` bytes.

    Raises:
        ValueError: on corrupt input.
    """
    out = bytearray(size)
    ip, op, n = 0, 0, len(data)
    while ip < n:
        ctrl = data[ip]
        ip += 1
        if ctrl < 32:  # literal run of ctrl + 1 bytes
            ln = ctrl + 1
            if op + ln > size or ip + ln > n:
                raise ValueError("lzf: literal run past the end")
            out[op : op + ln] = data[ip : ip + ln]
            op += ln
            ip += ln
            continue
        ln = ctrl >> 5
        ref = op - ((ctrl & 0x1F) << 8) - 1
        if ln == 7:
            ln += data[ip]
            ip += 1
        ref -= data[ip]
        ip += 1
        ln += 2
        if ref < 0 or op + ln > size:
            raise ValueError("lzf: back reference out of range")
        if ref + ln <= op:
            out[op : op + ln] = out[ref : ref + ln]
        else:  # overlapping copy: repeat the period
            for k in range(ln):
                out[op + k] = out[ref + k]
        op += ln
    if op != size:
        raise ValueError(f"lzf: decompressed {op} bytes, expected {size}")
    return bytes(out)


_PCD_TYPES = {("F", 4): np.float32, ("F", 8): np.float64, ("U", 1): np.uint8, ("U", 2): np.uint16, ("U", 4): np.uint32, ("I", 1): np.int8, ("I", 2): np.int16, ("I", 4): np.int32}


def read_pcd(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """Reads a PCL ``.pcd`` file (``DATA ascii``, ``binary`` or ``binary_compressed``).

    Packed colour fields (``rgb``/``rgba``, float or uint32) become three float32 columns
    ``r, g, b`` (0-255); every other field becomes float32 columns (``COUNT`` > 1 gives several).

    Args:
        path: the file.

    Returns:
        ``(points [N, C] float32, column names)``, x, y, z first when present. NaN rows of organised
        clouds are kept.
    """
    raw = Path(path).read_bytes()
    header: dict[str, list[str]] = {}
    pos = 0
    while True:
        end = raw.index(b"\n", pos)
        line = raw[pos:end].decode("ascii").strip()
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, *vals = line.split()
        header[key.upper()] = vals
        if key.upper() == "DATA":
            break
    fields = header["FIELDS"]
    sizes = [int(x) for x in header["SIZE"]]
    types = header["TYPE"]
    counts = [int(x) for x in header.get("COUNT", ["1"] * len(fields))]
    n = int(header["POINTS"][0])
    dts = [np.dtype(_PCD_TYPES[(t, s)]) for t, s in zip(types, sizes)]
    mode = header["DATA"][0]
    cols: list[np.ndarray] = []
    if mode == "ascii":
        txt = np.loadtxt(raw[pos:].decode("ascii").splitlines(), dtype=np.float64, ndmin=2)
        k = 0
        for dt, c in zip(dts, counts):
            cols.append(txt[:, k : k + c].astype(dt))
            k += c
    elif mode == "binary":
        rec = np.dtype([(f"f{i}", dt, (c,)) for i, (dt, c) in enumerate(zip(dts, counts))])
        arr = np.frombuffer(raw, dtype=rec, count=n, offset=pos)
        cols = [arr[f"f{i}"].reshape(n, -1) for i in range(len(fields))]
    elif mode == "binary_compressed":
        csize, usize = np.frombuffer(raw, dtype=np.uint32, count=2, offset=pos)
        body = lzf_decompress(raw[pos + 8 : pos + 8 + int(csize)], int(usize))
        off = 0
        for dt, c in zip(dts, counts):  # column-major: each field for every point
            nb = n * c * dt.itemsize
            cols.append(np.frombuffer(body, dtype=dt, count=n * c, offset=off).reshape(n, c))
            off += nb
    else:
        raise ValueError(f"{path}: unsupported PCD DATA {mode!r}")
    names: list[str] = []
    out: list[np.ndarray] = []
    for f, col in zip(fields, cols):
        if f in ("rgb", "rgba"):
            bits = col[:, 0].astype(col.dtype).view(np.uint32) if col.dtype.itemsize == 4 else col[:, 0].astype(np.uint32)
            for name, sh in (("r", 16), ("g", 8), ("b", 0)):
                out.append(((bits >> sh) & 0xFF).astype(np.float32)[:, None])
                names.append(name)
        elif f == "_":
            continue
        else:
            out.append(col.astype(np.float32))
            names += [f] if col.shape[1] == 1 else [f"{f}{i}" for i in range(col.shape[1])]
    pts = np.concatenate(out, axis=1)
    if names[:3] != ["x", "y", "z"] and all(a in names for a in "xyz"):
        order = [names.index(a) for a in "xyz"] + [i for i, nm in enumerate(names) if nm not in "xyz"]
        pts, names = pts[:, order], [names[i] for i in order]
    return np.ascontiguousarray(pts), names


def _group(q: np.ndarray, vals: np.ndarray):
    """Groups rows by integer coordinates q: (coords, first index, counts, float64 sums), sorted by
    coordinate, lexicographically (x, then y, then z), as ``np.unique(axis=0)`` gives them."""
    if len(q) == 0:
        return np.zeros((0, 3), np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, vals.shape[1]))
    uq, first, inv, cnt = np.unique(q, axis=0, return_index=True, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    sums = np.zeros((len(uq), vals.shape[1]))
    for j in range(vals.shape[1]):
        sums[:, j] = np.bincount(inv, weights=vals[:, j], minlength=len(uq))
    return uq, first, cnt, sums


def reference_voxel_downsample(points, voxel_size, origin=None, anchor="origin", min_points=1):
    """Voxel-grid downsampling with numpy: ``floor((p - origin) / voxel)`` + ``np.unique`` + means.

    Args:
        points: ``[N, C]`` float32.
        voxel_size: scalar or 3 values (taken as float32, computed in float64).
        origin: grid origin (default 0); ignored with ``anchor="min_bound"``.
        anchor: ``"origin"`` or ``"min_bound"`` (Open3D's grid: min bound - voxel / 2).
        min_points: drop voxels with fewer points.

    Returns:
        ``(means [M, C] float32, counts [M] int64, coords [M, 3] int64)`` sorted by voxel coordinate
        ``(ix, iy, iz)``, lexicographically.
    """
    p = np.asarray(points)
    v = np.broadcast_to(np.asarray(voxel_size, dtype=np.float32).astype(np.float64), (3,))
    valid = np.isfinite(p[:, :3]).all(axis=1)
    pv = p[valid].astype(np.float64)
    if anchor == "min_bound":
        o = pv[:, :3].min(axis=0) - v * 0.5 if len(pv) else np.zeros(3)
    else:
        o = np.zeros(3) if origin is None else np.asarray(origin, np.float32).astype(np.float64)
    q = np.floor((pv[:, :3] - o) / v).astype(np.int64)
    coords, _, cnt, sums = _group(q, pv)
    keep = cnt >= min_points
    coords, cnt, sums = coords[keep], cnt[keep], sums[keep]
    return (sums / np.maximum(cnt, 1)[:, None]).astype(np.float32), cnt, coords


def reference_voxelize(points, voxel_size, rng_, mode="occupancy", min_points=1, max_voxels=0):
    """Voxelization over a range with numpy.

    Args:
        points: ``[N, C]`` float32.
        voxel_size: scalar or 3 values.
        rng_: ``[xmin, ymin, zmin, xmax, ymax, zmax]``.
        mode: ``"occupancy"``, ``"count"``, ``"mean"`` or ``"sparse"``.
        min_points: sparse: drop voxels with fewer points.
        max_voxels: sparse: keep the most populated (ties: the earlier in coordinate order), 0 for all.

    Returns:
        The dense grid, or ``(coords [M, 3] int32, features [M, C] float32, counts [M] int32)``.
    """
    p = np.asarray(points)
    v = np.broadcast_to(np.asarray(voxel_size, dtype=np.float32).astype(np.float64), (3,))
    r = np.asarray(rng_, np.float32).astype(np.float64)
    dims = np.ceil((r[3:] - r[:3]) / v).astype(np.int64)
    p64 = p.astype(np.float64)
    with np.errstate(invalid="ignore"):
        inside = np.isfinite(p[:, :3]).all(axis=1) & (p64[:, :3] >= r[:3]).all(axis=1) & (p64[:, :3] < r[3:]).all(axis=1)
    pv = p64[inside]
    q = np.minimum(np.floor((pv[:, :3] - r[:3]) / v).astype(np.int64), dims - 1)
    if mode == "sparse":
        coords, _, cnt, sums = _group(q, pv)
        keep = np.nonzero(cnt >= min_points)[0]
        if max_voxels and len(keep) > max_voxels:
            ranked = sorted(keep, key=lambda k: (-cnt[k], k))[:max_voxels]
            keep = np.sort(np.asarray(ranked, dtype=np.int64))
        return coords[keep].astype(np.int32), (sums[keep] / cnt[keep][:, None]).astype(np.float32), cnt[keep].astype(np.int32)
    flat = (q[:, 0] * dims[1] + q[:, 1]) * dims[2] + q[:, 2]
    cells = int(np.prod(dims))
    cnt = np.bincount(flat, minlength=cells)
    if mode == "occupancy":
        return (cnt > 0).astype(np.uint8).reshape(tuple(dims))
    if mode == "count":
        return cnt.astype(np.int32).reshape(tuple(dims))
    out = np.zeros((cells, p.shape[1]))
    for j in range(p.shape[1]):
        out[:, j] = np.bincount(flat, weights=pv[:, j], minlength=cells)
    out = np.where(cnt[:, None] > 0, out / np.maximum(cnt, 1)[:, None], 0.0)
    return out.astype(np.float32).reshape(tuple(dims) + (p.shape[1],))


def reference_normalize(points, mode="center"):
    """Centre and scale with numpy (float64), like ``fn.robocache.normalize``.

    Returns:
        ``(points [N, C] float32, centre [3] float64, scale float)``.
    """
    p = np.asarray(points)
    valid = np.isfinite(p[:, :3]).all(axis=1)
    x = p[valid, :3].astype(np.float64)
    if len(x) == 0:
        c, s = np.zeros(3), 1.0
    elif mode == "unit_cube":
        c = (x.min(0) + x.max(0)) * 0.5
        s = float((x.max(0) - x.min(0)).max())
    else:
        c = x.mean(0)
        s = float(np.sqrt(((x - c) ** 2).sum(1).max())) if mode == "unit_sphere" else 1.0
    if not (s > 0 and np.isfinite(s)):
        s = 1.0
    out = p.copy()
    with np.errstate(invalid="ignore"):
        out[:, :3] = ((p[:, :3].astype(np.float64) - c) / s).astype(np.float32)
    return out, c, s
