"""Property-based tests (hypothesis) of the point-cloud operators fn.robocache.voxel_downsample,
voxelize and normalize through real DALI pipelines, on the CPU backend (and the GPU backend where a
GPU is present): ragged clouds with N=0 and N=1, C=3 and wide C, all-NaN clouds, NaN rows and NaN
features, duplicated points, extreme coordinates (1e30, subnormals), per-axis voxel sizes and
``max_points`` truncation. Each case matches the numpy references of ``robocache.pointclouds`` or
raises the documented error.

Voxel order is not asserted (first appearance today, sorted by voxel coordinate once the new point
kernels land): outputs are matched to the reference voxel by voxel, as sets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from prop_common import BACKENDS, assert_error, fill_values, run_error, run_op
from robocache.pointclouds import reference_normalize, reference_voxel_downsample, reference_voxelize

MAX_CELLS = 2.0**31


@st.composite
def clouds(draw, max_n=400):
    """A ragged batch of float32 clouds ``[N, C]`` sharing C; sometimes with duplicated rows."""
    c = draw(st.sampled_from([3, 3, 4, 9]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    out = []
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.sampled_from([0, 1, 1, 2, 30, max_n]))
        kind = draw(st.sampled_from(["normal", "normal", "extreme", "all_nan", "some_nan", "const"]))
        p = fill_values(rng, (n, c), kind, np.float32).astype(np.float32)
        if kind == "normal" and n > 1 and draw(st.booleans()):
            p[rng.integers(0, n, n // 2)] = p[rng.integers(0, n, n // 2)]  # duplicated points
        out.append(np.ascontiguousarray(p))
    return out


def grid_error(p, v, origin, anchor):
    """The documented error fragment when the voxel coordinates of ``p`` do not fit (or None)."""
    pv = p[np.isfinite(p[:, :3]).all(1), :3].astype(np.float64)
    if not len(pv):
        return None
    o = pv.min(0) - v * 0.5 if anchor == "min_bound" else np.asarray(origin, np.float32).astype(np.float64)
    q = np.floor((pv - o) / v)
    lo, hi = q.min(0), q.max(0)
    if (lo < -MAX_CELLS).any() or (hi >= MAX_CELLS).any():
        return "the grid spans voxel coordinates"
    bits = sum(int(h - l).bit_length() for l, h in zip(lo, hi))
    return "the grid spans more than 2^63 cells" if bits > 63 else None


def match_voxels(means, counts, ref_means, ref_counts, ref_coords, v, o, exact_set=True):
    """Matches output voxels to reference voxels by grid coordinate of the output mean (a voxel's
    mean lies in the voxel; a neighbour is tried when float32 rounding moved it across a face)."""
    index = {tuple(q): k for k, q in enumerate(ref_coords)}
    used = set()
    offsets = [np.array([a, b, c]) for a in (0, -1, 1) for b in (0, -1, 1) for c in (0, -1, 1)]
    for r in range(len(means)):
        q = np.floor((means[r, :3].astype(np.float64) - o) / v).astype(np.int64)
        cands = [index[tuple(q + d)] for d in offsets if tuple(q + d) in index and index[tuple(q + d)] not in used]
        assert cands, f"output voxel {r} (mean {means[r, :3]}) matches no reference voxel"
        k = min(cands, key=lambda j: np.nansum(np.abs(ref_means[j, :3].astype(np.float64) - means[r, :3])))
        used.add(k)
        if counts is not None:
            assert counts[r] == ref_counts[k], (r, counts[r], ref_counts[k])
        scale = np.maximum(1.0, np.abs(np.nan_to_num(ref_means[k].astype(np.float64))))
        np.testing.assert_array_equal(np.isnan(means[r]), np.isnan(ref_means[k]))
        np.testing.assert_allclose(np.nan_to_num(means[r]), np.nan_to_num(ref_means[k]), rtol=2e-6, atol=float(scale.max()) * 2e-6)
    if exact_set:
        assert len(used) == len(ref_coords)


@pytest.mark.parametrize("backend", BACKENDS)
@given(pts=clouds(), voxel=st.sampled_from([0.05, 0.5, 3.0, 1e-30, 1e25]), per_axis=st.booleans(), anchor=st.sampled_from(["origin", "min_bound"]), minp=st.sampled_from([1, 1, 2]), max_points=st.sampled_from([0, 0, 1, 5]), data=st.data())
def test_voxel_downsample_matches_reference_as_sets(backend, pts, voxel, per_axis, anchor, minp, max_points, data):
    vs = [voxel, voxel * 2, voxel * 0.5] if per_axis else [voxel]
    origin = [float(np.float32(x)) for x in data.draw(st.tuples(*[st.floats(-2, 2)] * 3))]
    kw = dict(voxel_size=vs, anchor=anchor, min_points_per_voxel=minp, return_counts=True, max_points=max_points)
    if anchor == "origin":
        kw["origin"] = origin
    v = np.broadcast_to(np.asarray(vs, np.float32).astype(np.float64), (3,))
    bad = [(i, e) for i, p in enumerate(pts) if (e := grid_error(p, v, origin, anchor))]
    if bad and backend == "gpu" and max_points:
        # Documented: with max_points the GPU backend never synchronises, so a grid error cannot be
        # raised; the sample gets num_points = -1 and no rows (the CPU backend raises it).
        outs, = run_op("voxel_downsample", backend, [pts], **kw)
        for i, _ in bad:
            assert int(outs[2][i]) == -1 and not outs[0][i].any() and not outs[1][i].any()
        return
    if bad:
        msg = run_error("voxel_downsample", backend, [pts], **kw)
        # Samples are computed in parallel: the error names one of the failing samples. CPU and GPU
        # word the grid errors differently after "the grid spans".
        assert any(f"robocache.voxel_downsample: sample {i}: the grid spans" in msg for i, _ in bad), msg
        return
    outs, = run_op("voxel_downsample", backend, [pts], **kw)
    for i, p in enumerate(pts):
        ref_m, ref_k, ref_q = reference_voxel_downsample(p, vs if per_axis else voxel, origin=origin if anchor == "origin" else None, anchor=anchor, min_points=minp)
        pv = p[np.isfinite(p[:, :3]).all(1), :3].astype(np.float64)
        o = (pv.min(0) - v * 0.5 if len(pv) else np.zeros(3)) if anchor == "min_bound" else np.asarray(origin, np.float32).astype(np.float64)
        m, k = outs[0][i], outs[1][i]
        if max_points:
            num = int(outs[2][i])
            assert num == min(len(ref_k), max_points) and m.shape == (max_points, p.shape[1]) and k.shape == (max_points,)
            assert not m[num:].any() and not k[num:].any()  # zero padding
            m, k = m[:num], k[:num]
        assert m.shape == (len(k), p.shape[1])
        match_voxels(m, k, ref_m, ref_k, ref_q, v, o, exact_set=not max_points)


@pytest.mark.parametrize("backend", BACKENDS)
@given(pts=clouds(), voxel=st.sampled_from([0.25, 1.0, 1e-30]), mode=st.sampled_from(["occupancy", "count", "mean", "sparse"]), minp=st.sampled_from([1, 2]), max_voxels=st.sampled_from([0, 0, 1, 3]), lo=st.floats(-3, 0), width=st.floats(0.3, 4))
def test_voxelize_matches_reference(backend, pts, voxel, mode, minp, max_voxels, lo, width):
    rng_ = [float(np.float32(x)) for x in (lo, lo, lo, lo + width, lo + width * 0.5, lo + width)]
    kw = dict(voxel_size=[voxel], range=rng_, mode=mode, min_points_per_voxel=minp, max_voxels=max_voxels)
    if voxel < 1e-10:
        msg = run_error("voxelize", backend, [pts], **kw)
        assert_error(msg, "robocache.voxelize: sample 0: the ", "more than 2^31 - 1")
        return
    outs, = run_op("voxelize", backend, [pts], **kw)
    for i, p in enumerate(pts):
        ref = reference_voxelize(p, voxel, rng_, mode=mode, min_points=minp, max_voxels=0)
        if mode != "sparse":
            got = outs[0][i]
            assert got.shape == ref.shape and got.dtype == ref.dtype
            np.testing.assert_allclose(got, ref, rtol=2e-6, atol=2e-6 * max(1.0, float(np.abs(ref).max(initial=0))))
            continue
        coords, feats, counts = (o[i] for o in outs)
        rq, rf, rk = ref
        if max_voxels and len(rk) > max_voxels:  # the most populated are kept: the multiset of counts is fixed
            assert len(counts) == max_voxels
            np.testing.assert_array_equal(np.sort(counts)[::-1], np.sort(rk)[::-1][:max_voxels])
        else:
            assert len(counts) == len(rk)
        index = {tuple(q): k for k, q in enumerate(rq)}
        assert len({tuple(q) for q in coords}) == len(coords)
        for r, q in enumerate(coords):
            k = index[tuple(q)]
            assert counts[r] == rk[k]
            np.testing.assert_array_equal(np.isnan(feats[r]), np.isnan(rf[k]))
            np.testing.assert_allclose(np.nan_to_num(feats[r]), np.nan_to_num(rf[k]), rtol=2e-6, atol=2e-6 * max(1.0, float(np.nanmax(np.abs(rf[k]), initial=0))))


@pytest.mark.parametrize("backend", BACKENDS)
@given(pts=clouds(), mode=st.sampled_from(["center", "unit_sphere", "unit_cube"]))
def test_normalize_matches_reference(backend, pts, mode):
    (out, centre, scale), = run_op("normalize", backend, [pts], mode=mode)
    for i, p in enumerate(pts):
        ro, rc, rs = reference_normalize(p, mode)
        np.testing.assert_allclose(np.asarray(centre[i], np.float64), rc, rtol=1e-6, atol=1e-6 * max(1.0, float(np.abs(rc).max())))
        assert float(scale[i]) == pytest.approx(rs, rel=1e-6)
        if np.finfo(np.float32).tiny <= rs <= np.finfo(np.float32).max:
            assert np.isfinite(scale[i]) and float(scale[i]) > 0
        # else: the float64 scale is outside float32's normal range and the float32 `scale` output
        # rounds to 0 or inf (p = out * scale + centre no longer holds): see README, "What bad input gets".
        np.testing.assert_array_equal(np.isnan(out[i]), np.isnan(ro))
        np.testing.assert_allclose(np.nan_to_num(out[i]), np.nan_to_num(ro), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(out[i][:, 3:], p[:, 3:])


@pytest.mark.parametrize("backend", BACKENDS)
@given(case=st.sampled_from([
    ("voxel_downsample", dict(voxel_size=[0.0]), "invalid argument `voxel_size`"),
    ("voxel_downsample", dict(voxel_size=[float("nan")]), "invalid argument `voxel_size`"),
    ("voxel_downsample", dict(voxel_size=[float("inf")]), "invalid argument `voxel_size`"),
    ("voxel_downsample", dict(voxel_size=[-1e-30]), "invalid argument `voxel_size`"),
    ("voxel_downsample", dict(voxel_size=[1.0, 1.0]), "invalid argument `voxel_size`"),
    ("voxel_downsample", dict(voxel_size=[1.0], origin=[float("nan"), 0.0, 0.0]), "invalid argument `origin`"),
    ("voxel_downsample", dict(voxel_size=[1.0], max_points=-1), "invalid argument `max_points`"),
    ("voxel_downsample", dict(voxel_size=[1.0], min_points_per_voxel=0), "invalid argument `min_points_per_voxel`"),
    ("voxelize", dict(voxel_size=[1.0], range=[0, 0, 0, 1, 1, float("inf")]), "invalid argument `range`"),
    ("voxelize", dict(voxel_size=[1.0], range=[0, 0, 0, 1, 1, float("nan")]), "invalid argument `range`"),
    ("voxelize", dict(voxel_size=[1.0], range=[1, 0, 0, 0, 1, 1]), "invalid argument `range`"),
    ("voxelize", dict(voxel_size=[1.0], range=[0, 0, 0, 1, 1, 1], max_voxels=-2), "invalid argument `max_voxels`"),
    ("voxelize", dict(voxel_size=[1e-3], range=[-1e3, -1e3, -1e3, 1e3, 1e3, 1e3]), "sample 0: the dense grid"),
    ("normalize", dict(mode="l2"), "invalid argument `mode`"),
]), shape=st.sampled_from([(4, 3), (4, 2), (4,), (0, 2), (2, 2, 3)]))
def test_bad_arguments_and_shapes_give_the_documented_error(backend, case, shape):
    op, kw, want = case
    msg = run_error(op, backend, [[np.zeros(shape, np.float32)]], **kw)
    if len(shape) != 2:
        alt = f"robocache.{op}: sample 0: points must be 2-D"
    elif shape[1] < 3:
        alt = f"robocache.{op}: sample 0: points must have at least 3 columns"
    else:
        alt = None
    if alt is not None and alt in msg:
        return  # the shape check may come first: either documented error is right
    assert_error(msg, f"robocache.{op}: {want}")
