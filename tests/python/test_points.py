"""fn.robocache.voxel_downsample / voxelize / normalize inside real DALI pipelines (CPU backend here;
benchmarks/gpu_points.py checks the GPU backend against this one on a GPU machine), against an
independent numpy reference and Open3D, on fresh random clouds and on real scans (KITTI, nuScenes,
PCL organised Kinect clouds with NaN rows), plus every documented error."""

from __future__ import annotations

import numpy as np
import pytest

import robocache  # noqa: F401  (loads the plugin)
from nvidia.dali import fn, pipeline_def
from robocache.pointclouds import (
    lzf_decompress,
    read_bin,
    read_pcd,
    reference_normalize,
    reference_voxel_downsample,
    reference_voxelize,
)

try:
    import open3d as o3d
except (ImportError, OSError):  # pinned in requirements.txt; needs libGL where it is imported
    o3d = None


def run(op, clouds, voxel_input=None, num_threads=2, **kw):
    """One batch through fn.robocache.<op> (CPU backend); returns a list (per output) of lists of arrays."""
    n = len(clouds)

    @pipeline_def(batch_size=n, num_threads=num_threads, device_id=None, prefetch_queue_depth=1)
    def pipe():
        x = fn.external_source(source=lambda: clouds, batch=True)
        if voxel_input is not None:
            kw["voxel_size"] = fn.external_source(source=lambda: voxel_input, batch=True)
        out = getattr(fn.robocache, op)(x, **kw)
        return tuple(out) if isinstance(out, (list, tuple)) else (out,)

    p = pipe()
    p.build()
    outs = p.run()
    return [[np.array(o[i]) for i in range(n)] for o in outs]


def random_cloud(rng, n, c, nan_frac=0.05, scale=None):
    scale = scale if scale is not None else float(rng.choice([0.5, 3.0, 40.0]))
    p = (rng.standard_normal((n, c)) * scale + rng.uniform(-5, 5, c)).astype(np.float32)
    if n and nan_frac:
        bad = rng.random(n) < nan_frac
        col = rng.integers(0, 3, n)
        vals = rng.choice([np.nan, np.inf, -np.inf], n)
        p[bad, col[bad]] = vals[bad]
    return p


def assert_means(got, ref, what=""):
    assert got.shape == ref.shape, f"{what}: {got.shape} vs {ref.shape}"
    scale = max(1.0, float(np.nanmax(np.abs(ref)))) if ref.size else 1.0
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=2e-7 * scale, err_msg=what)


# ---------------- voxel_downsample ----------------


@pytest.mark.parametrize("c", [3, 4, 6])
def test_downsample_random_ragged_vs_numpy(rng, c):
    for _ in range(3):
        clouds = [random_cloud(rng, int(rng.integers(0, 4000)), c) for _ in range(int(rng.integers(1, 7)))]
        voxel = float(rng.choice([0.05, 0.2, 1.0, 3.0]))
        per_axis = bool(rng.integers(0, 2))
        vs = [voxel, voxel * 2, voxel * 0.5] if per_axis else voxel
        origin = [float(x) for x in rng.uniform(-1, 1, 3)]
        minp = int(rng.integers(1, 4))
        pts, cnt = run("voxel_downsample", clouds, voxel_size=vs, origin=origin, min_points_per_voxel=minp, return_counts=True)
        for i, cl in enumerate(clouds):
            m, k, _ = reference_voxel_downsample(cl, vs, origin=origin, min_points=minp)
            np.testing.assert_array_equal(cnt[i], k.astype(np.int32))
            assert_means(pts[i], m, f"sample {i}")


def test_voxels_sorted_by_coordinate_whatever_the_input_order(data_dir):
    """Output order: lexicographic by (ix, iy, iz) of floor((p - origin) / voxel); a shuffled cloud
    gives the same voxels in the same order (means equal to float32 rounding: the sums follow the
    input order)."""
    kitti = read_bin(sorted((data_dir / "pointclouds" / "kitti_full").glob("*.bin"))[0])
    perm = np.random.default_rng(5).permutation(len(kitti))
    v, origin = 0.1, [0.013, -0.02, 0.031]
    pts, cnt = run("voxel_downsample", [kitti, kitti[perm]], voxel_size=v, origin=origin, return_counts=True)
    _, k, q = reference_voxel_downsample(kitti, v, origin=origin)
    assert np.all(np.diff(q[:, 0]) >= 0) and len(q) == len(pts[0])
    flat = (q[:, 0] - q[:, 0].min()) * 2**42 + (q[:, 1] - q[:, 1].min()) * 2**21 + (q[:, 2] - q[:, 2].min())
    assert np.all(np.diff(flat) > 0)  # the reference itself is strictly increasing
    np.testing.assert_array_equal(cnt[0], k)
    np.testing.assert_array_equal(cnt[1], k)
    assert_means(pts[1], pts[0], "shuffled input")
    o = np.asarray(origin, np.float32).astype(np.float64)
    inside = np.floor((pts[0][:, :3].astype(np.float64) - o) / np.float64(np.float32(v))).astype(np.int64)
    assert (inside == q).mean() > 0.999  # a mean lies in its voxel (but for float32 rounding at faces)
    rng_ = [-40.0, -40.0, -3.0, 40.0, 40.0, 1.0]
    coords, _, _ = run("voxelize", [kitti[perm]], voxel_size=[0.2, 0.2, 0.5], range=rng_, mode="sparse")
    c = coords[0].astype(np.int64)
    assert len(c) > 1000 and np.all(np.diff((c[:, 0] << 42) | (c[:, 1] << 21) | c[:, 2]) > 0)


def test_downsample_per_sample_voxel_argument_input(rng):
    clouds = [random_cloud(rng, 2000, 4, scale=2.0) for _ in range(4)]
    sizes = [np.array([0.1], np.float32), np.array([0.5, 0.25, 1.0], np.float32), np.array([0.3], np.float32), np.array([2.0, 2.0, 2.0], np.float32)]
    pts, cnt = run("voxel_downsample", clouds, voxel_input=sizes, return_counts=True)
    for i, cl in enumerate(clouds):
        m, k, _ = reference_voxel_downsample(cl, sizes[i] if sizes[i].size == 3 else sizes[i][0])
        np.testing.assert_array_equal(cnt[i], k)
        assert_means(pts[i], m)


def test_downsample_max_points_pads_and_counts(rng):
    clouds = [random_cloud(rng, n, 4, scale=1.0) for n in (0, 50, 3000)]
    pts, cnt, num = run("voxel_downsample", clouds, voxel_size=0.4, max_points=64, return_counts=True)
    for i, cl in enumerate(clouds):
        m, k, _ = reference_voxel_downsample(cl, 0.4)
        kept = min(len(k), 64)
        assert num[i].shape == () and int(num[i]) == kept
        assert pts[i].shape == (64, 4) and cnt[i].shape == (64,)
        assert_means(pts[i][:kept], m[:kept])
        np.testing.assert_array_equal(cnt[i][:kept], k[:kept])
        assert not pts[i][kept:].any() and not cnt[i][kept:].any()


def test_downsample_tiny_voxels_over_a_large_scene(rng):
    # 1 cm voxels over a 200 m scene: no dense grid (2e4 x 2e4 x 2e3 cells).
    p = np.concatenate([rng.uniform([-100, -100, -5], [100, 100, 15], (20000, 3)), rng.uniform(0, 0.05, (5000, 3))]).astype(np.float32)
    pts, cnt = run("voxel_downsample", [p], voxel_size=0.01, return_counts=True)
    m, k, _ = reference_voxel_downsample(p, 0.01)
    np.testing.assert_array_equal(cnt[0], k)
    assert_means(pts[0], m)


@pytest.mark.skipif(o3d is None, reason="open3d-cpu is not installed")
def test_downsample_matches_open3d_voxel_down_sample(rng):
    for _ in range(3):
        p = random_cloud(rng, int(rng.integers(100, 20000)), 3, nan_frac=0.0)
        v = float(np.float32(rng.choice([0.05, 0.1, 0.37, 1.0])))
        (ours,) = run("voxel_downsample", [p], voxel_size=v, anchor="min_bound")
        compare_open3d(p, ours[0], v)


def compare_open3d(p, ours, v):
    """Open3D's voxel_down_sample (float64 means, unordered) vs ours: the same voxels, means to
    float32 rounding. Voxels are matched by the voxel coordinate of their mean (a mean lies inside
    its voxel), in Open3D's grid (min bound - voxel / 2)."""
    finite = p[np.isfinite(p[:, :3]).all(1)]
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(finite[:, :3].astype(np.float64)))
    ref = np.asarray(pc.voxel_down_sample(v).points)
    o = finite[:, :3].astype(np.float64).min(0) - v * 0.5
    assert len(ref) == len(ours)

    def keyed(x):
        q = np.floor((x[:, :3].astype(np.float64) - o) / v).astype(np.int64)
        idx = np.lexsort(q.T[::-1])
        return q[idx], x[idx, :3]

    qr, mr = keyed(ref)
    qo, mo = keyed(ours)
    np.testing.assert_array_equal(qo, qr)
    assert_means(mo.astype(np.float64), mr.astype(np.float32).astype(np.float64))


def real_clouds(data_dir):
    pc = data_dir / "pointclouds"
    kitti = [read_bin(f) for f in sorted((pc / "kitti_full").glob("*.bin"))]
    crop = read_bin(pc / "mmdet3d" / "kitti_000008.bin")
    nus = read_bin(pc / "mmdet3d" / "nuscenes_LIDAR_TOP_1532402927647951.pcd.bin", 5)
    pcl = {f.stem: read_pcd(f)[0] for f in sorted((pc / "pcl").glob("*.pcd"))}
    return kitti, crop, nus, pcl


def test_downsample_real_scans_vs_numpy_and_open3d(data_dir):
    kitti, crop, nus, pcl = real_clouds(data_dir)
    assert len(kitti) == 4 and all(100_000 < len(k) < 140_000 for k in kitti)
    for v in (0.05, 0.2):
        pts, cnt = run("voxel_downsample", kitti + [crop], voxel_size=v, return_counts=True, num_threads=4)
        for i, cl in enumerate(kitti + [crop]):
            m, k, _ = reference_voxel_downsample(cl, v)
            np.testing.assert_array_equal(cnt[i], k)
            assert_means(pts[i], m, f"kitti {i} voxel {v}")
    pts, cnt = run("voxel_downsample", [nus], voxel_size=[0.1, 0.1, 0.2], return_counts=True)
    m, k, _ = reference_voxel_downsample(nus, [0.1, 0.1, 0.2])
    np.testing.assert_array_equal(cnt[0], k)
    assert_means(pts[0], m)
    organised = [pcl[k] for k in ("five_people", "office1", "table_scene_mug_stereo_textured")]
    assert all(len(x) == 307200 and 0.15 < np.isnan(x[:, 0]).mean() < 0.35 for x in organised)
    pts, cnt = run("voxel_downsample", organised, voxel_size=0.01, return_counts=True, num_threads=4)
    for i, cl in enumerate(organised):
        m, k, _ = reference_voxel_downsample(cl, 0.01)
        np.testing.assert_array_equal(cnt[i], k)
        assert_means(pts[i], m, f"pcl {i}")
    bun = pcl["bun0"]  # ascii PCD, 7 columns (xyz, normals, curvature)
    pts, cnt = run("voxel_downsample", [bun], voxel_size=0.005, return_counts=True)
    m, k, _ = reference_voxel_downsample(bun, 0.005)
    np.testing.assert_array_equal(cnt[0], k)
    assert_means(pts[0], m, "bun0")
    if o3d is not None:
        (ours,) = run("voxel_downsample", [kitti[0]], voxel_size=0.1, anchor="min_bound")
        compare_open3d(kitti[0], ours[0], float(np.float32(0.1)))
        (ours,) = run("voxel_downsample", [organised[1]], voxel_size=0.02, anchor="min_bound")
        compare_open3d(organised[1], ours[0], float(np.float32(0.02)))


@pytest.mark.skipif(o3d is None, reason="open3d-cpu is not installed")
def test_pcd_reader_matches_open3d(data_dir):
    for f in sorted((data_dir / "pointclouds" / "pcl").glob("*.pcd")):
        ours, names = read_pcd(f)
        ref = np.asarray(o3d.io.read_point_cloud(str(f), remove_nan_points=True).points)
        fin = ours[np.isfinite(ours[:, :3]).all(1), :3]
        np.testing.assert_array_equal(fin, ref.astype(np.float32), err_msg=f.name)  # ascii: Open3D parses float64


def test_lzf_round_trip_of_overlapping_references():
    # "abc" then a back reference of length 9 at distance 3 (overlapping copy).
    comp = bytes([2]) + b"abc" + bytes([(7 << 5) | 0, 0, 2])
    assert lzf_decompress(comp, 3 + 7 + 2) == b"abc" * 4


# ---------------- voxelize ----------------

RANGE = [-4.0, -3.0, -2.0, 4.0, 3.0, 2.0]


@pytest.mark.parametrize("mode", ["occupancy", "count", "mean"])
def test_voxelize_dense_vs_numpy(rng, mode):
    c = int(rng.choice([3, 4]))
    clouds = [random_cloud(rng, int(rng.integers(0, 5000)), c, scale=3.0) for _ in range(4)]
    v = [0.5, 0.25, 0.4]
    (grid,) = run("voxelize", clouds, voxel_size=v, range=RANGE, mode=mode)
    for i, cl in enumerate(clouds):
        ref = reference_voxelize(cl, v, RANGE, mode)
        assert grid[i].shape == ref.shape and grid[i].dtype == ref.dtype
        if mode == "mean":
            assert_means(grid[i], ref)
        else:
            np.testing.assert_array_equal(grid[i], ref)


def test_voxelize_range_edges_and_outside_points():
    p = np.array([[-4, -3, -2], [3.999, 2.999, 1.999], [4, 0, 0], [0, 3, 0], [-4.001, 0, 0], [np.nan, 0, 0], [0.1, 0.1, 0.1]], np.float32)
    (g,) = run("voxelize", [p], voxel_size=1.0, range=RANGE, mode="count")
    assert g[0].shape == (8, 6, 4) and g[0].sum() == 3
    assert g[0][0, 0, 0] == 1 and g[0][7, 5, 3] == 1 and g[0][4, 3, 2] == 1


def test_voxelize_sparse_max_voxels_keeps_most_populated(rng):
    for _ in range(4):
        clouds = [random_cloud(rng, int(rng.integers(0, 3000)), 4, scale=2.0) for _ in range(3)]
        kmax = int(rng.integers(1, 60))
        minp = int(rng.integers(1, 3))
        coords, feats, cnt = run("voxelize", clouds, voxel_size=0.7, range=RANGE, mode="sparse", max_voxels=kmax, min_points_per_voxel=minp)
        for i, cl in enumerate(clouds):
            rc, rf, rn = reference_voxelize(cl, 0.7, RANGE, "sparse", min_points=minp, max_voxels=kmax)
            np.testing.assert_array_equal(coords[i], rc)
            np.testing.assert_array_equal(cnt[i], rn)
            assert_means(feats[i], rf)
            assert len(rn) <= kmax


def test_voxelize_sparse_padded_and_real_scan(data_dir):
    kitti = read_bin(sorted((data_dir / "pointclouds" / "kitti_full").glob("*.bin"))[0])
    rng_ = [0.0, -39.68, -3.0, 69.12, 39.68, 1.0]  # PointPillars' KITTI range
    v = [0.16, 0.16, 4.0]
    coords, feats, cnt, num = run("voxelize", [kitti], voxel_size=v, range=rng_, mode="sparse", max_points=12000, max_voxels=12000)
    rc, rf, rn = reference_voxelize(kitti, v, rng_, "sparse", max_voxels=12000)
    k = int(num[0])
    assert k == len(rn) and coords[0].shape == (12000, 3)
    np.testing.assert_array_equal(coords[0][:k], rc)
    np.testing.assert_array_equal(cnt[0][:k], rn)
    assert_means(feats[0][:k], rf)
    assert not cnt[0][k:].any()
    (occ,) = run("voxelize", [kitti], voxel_size=v, range=rng_)
    np.testing.assert_array_equal(occ[0], reference_voxelize(kitti, v, rng_, "occupancy"))


# ---------------- normalize ----------------


@pytest.mark.parametrize("mode", ["center", "unit_sphere", "unit_cube"])
def test_normalize_vs_numpy(rng, mode):
    clouds = [random_cloud(rng, n, 5) for n in (0, 1, 7, 3000)]
    clouds.append(np.full((4, 5), np.nan, np.float32))
    out, centre, scale = run("normalize", clouds, mode=mode)
    for i, cl in enumerate(clouds):
        ro, rc, rs = reference_normalize(cl, mode)
        np.testing.assert_allclose(centre[i], rc.astype(np.float32), rtol=1e-6, atol=1e-6)
        assert scale[i].shape == () and float(scale[i]) == pytest.approx(rs, rel=1e-6)
        np.testing.assert_array_equal(np.isfinite(out[i]), np.isfinite(ro))
        np.testing.assert_allclose(np.nan_to_num(out[i]), np.nan_to_num(ro), rtol=1e-5, atol=1e-5)
        fin = np.isfinite(out[i][:, :3]).all(1)
        if mode == "unit_sphere" and fin.sum() > 1:
            assert np.linalg.norm(out[i][fin, :3], axis=1).max() == pytest.approx(1.0, abs=1e-5)
        if mode == "unit_cube" and fin.sum() > 1:
            assert np.abs(out[i][fin, :3]).max() <= 0.5 + 1e-6
        np.testing.assert_array_equal(out[i][:, 3:], cl[:, 3:])


def test_normalize_real_organised_cloud_inverts(data_dir):
    p, _ = read_pcd(data_dir / "pointclouds" / "pcl" / "office1.pcd")
    out, c, s = run("normalize", [p], mode="unit_sphere")
    fin = np.isfinite(p[:, :3]).all(1)
    back = out[0][fin, :3].astype(np.float64) * float(s[0]) + c[0]
    np.testing.assert_allclose(back, p[fin, :3], atol=1e-5 * float(s[0]))


# ---------------- errors ----------------


def expect_error(match, op, clouds, voxel_input=None, **kw):
    with pytest.raises(RuntimeError, match=match):
        run(op, clouds, voxel_input=voxel_input, **kw)


def test_errors_name_the_operator_and_sample(rng):
    good = random_cloud(rng, 100, 4, scale=1.0)
    ds = "robocache.voxel_downsample"
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        expect_error(rf"{ds}: invalid argument `voxel_size`.*finite and > 0", "voxel_downsample", [good], voxel_size=bad)
    expect_error("1 or 3 values", "voxel_downsample", [good], voxel_size=[1.0, 2.0])
    sizes = [np.array([0.1], np.float32), np.array([0.1], np.float32), np.array([-0.5], np.float32)]
    expect_error(rf"{ds}: sample 2: voxel_size must be finite and > 0", "voxel_downsample", [good] * 3, voxel_input=sizes)
    far = good.copy()
    far[np.flatnonzero(np.isfinite(far[:, :3]).all(axis=1))[0], 0] = 1e6  # a kept (finite) row
    expect_error(rf"{ds}: sample 1: .*2\^31 cells", "voxel_downsample", [good, far], voxel_size=1e-4)
    expect_error(rf"{ds}: sample 0: .*2\^63 cells", "voxel_downsample", [np.array([[-1e5, -1e5, -1e5], [1e5, 1e5, 1e5]], np.float32)], voxel_size=1e-4)
    expect_error(rf"{ds}: sample 1: points must have at least 3 columns", "voxel_downsample", [np.ascontiguousarray(good[:, :3]), np.ascontiguousarray(good[:, :2])], voxel_size=0.1)
    expect_error(rf"{ds}: sample 0: points must be 2-D", "voxel_downsample", [np.ascontiguousarray(good[:, 0])], voxel_size=0.1)
    expect_error(rf"{ds}: unsupported dtype for points", "voxel_downsample", [good.astype(np.float64)], voxel_size=0.1)
    expect_error(rf"{ds}: sample 1: points have 3 columns but sample 0 has 4", "voxel_downsample", [good, np.ascontiguousarray(good[:, :3])], voxel_size=0.1)
    expect_error(rf"{ds}: invalid argument `anchor`", "voxel_downsample", [good], voxel_size=0.1, anchor="center")
    expect_error(rf"{ds}: invalid argument `origin`", "voxel_downsample", [good], voxel_size=0.1, origin=[0.0, 1.0])
    expect_error(rf"{ds}: invalid argument `min_points_per_voxel`", "voxel_downsample", [good], voxel_size=0.1, min_points_per_voxel=0)
    vx = "robocache.voxelize"
    expect_error(rf"{vx}: invalid argument `range`.*empty range", "voxelize", [good], voxel_size=0.1, range=[0, 0, 0, 1, 0, 1])
    expect_error(rf"{vx}: invalid argument `range`", "voxelize", [good], voxel_size=0.1, range=[0, 0, 0, 1, 1])
    expect_error(rf"{vx}: sample 0: the dense grid .* more than 2\^31 - 1", "voxelize", [good], voxel_size=0.001, range=[-10, -10, -10, 10, 10, 10])
    expect_error(rf"{vx}: sample 0: the grid has .* cells along axis 0, more than 2\^31 - 1", "voxelize", [good], voxel_size=1e-9, range=[-10, 0, 0, 10, 1, 1], mode="sparse")
    expect_error(rf"{vx}: invalid argument `voxel_size`", "voxelize", [good], voxel_size=float("nan"), range=RANGE)
    expect_error(rf"{vx}: invalid argument `mode`", "voxelize", [good], voxel_size=0.1, range=RANGE, mode="pillars")
    expect_error(rf"{vx}: sample 0: points must have at least 3 columns", "voxelize", [np.ascontiguousarray(good[:, :2])], voxel_size=0.1, range=RANGE)
    nm = "robocache.normalize"
    expect_error(rf"{nm}: invalid argument `mode`", "normalize", [good], mode="unit_ball")
    expect_error(rf"{nm}: sample 0: points must be 2-D", "normalize", [np.zeros((2, 3, 1), np.float32)])


# ---------------- the GPU kernels, emulated on the CPU ----------------


@pytest.fixture(scope="module")
def points_kernels_on_cpu(tmp_path_factory):
    """kernels/points.cu built for the CPU (tests/emulate/points_emulator.cc: every CUDA thread a
    fiber, blocks in launch order), driven by the GPU backend's own host code (Exec::Emulate)."""
    import ctypes
    import shutil
    import subprocess
    from pathlib import Path

    cxx = shutil.which("g++") or shutil.which("c++")
    assert cxx, "a C++ compiler is needed (it also builds the plugin)"
    src = Path(__file__).resolve().parents[1] / "emulate" / "points_emulator.cc"
    lib = tmp_path_factory.mktemp("emu") / "points_emulator.so"
    subprocess.run([cxx, "-std=c++17", "-O1", "-ffp-contract=off", "-shared", "-fPIC", "-Wno-unknown-pragmas", "-o", str(lib), str(src)], check=True)
    return ctypes.cast(ctypes.CDLL(str(lib)).emulate_points, ctypes.c_void_p).value


def emulated(addr, op, clouds, **kw):
    """The GPU path (poisoned outputs) on emulated kernels; ``[output][sample]`` numpy arrays."""
    from robocache._raw_points import PointsBatch

    if "voxel_size" in kw:
        kw["voxel_size"] = list(np.atleast_1d(kw["voxel_size"]))
    if "min_points_per_voxel" in kw:
        kw["min_points"] = kw.pop("min_points_per_voxel")
    return PointsBatch(op, clouds, emulator=addr, **kw).run()


def assert_bitwise(got, ref, what):
    assert len(got) == len(ref), what
    for k, (g, r) in enumerate(zip(got, ref)):
        for i, (a, b) in enumerate(zip(g, r)):
            assert a.shape == b.shape and a.dtype == b.dtype, f"{what}: output {k} sample {i}: {a.shape} vs {b.shape}"
            assert a.tobytes() == b.tobytes(), f"{what}: output {k} sample {i} differs at {np.flatnonzero(a.reshape(-1) != b.reshape(-1))[:5]}"


# Kernel variants (ROBOCACHE_POINTS_VARIANT, src/ops/points_gpu.rs): the v5b kernels, the default,
# and two halves of it.
POINTS_VARIANTS = ("none", None, "passw4,runs48,fin4,bounds4,sleep", "lookw,dist,noinit,hist4,fin2,passw2", "local,aggonly")


@pytest.mark.parametrize("variant", POINTS_VARIANTS)
def test_gpu_kernels_emulated_match_cpu_backend_bitwise(rng, points_kernels_on_cpu, monkeypatch, variant):
    """Sort passes with look-back over several tiles, NaN rows, min_points, max_points, anchors,
    per-axis voxels, wide keys (1 cm over 200 m: 41 bits), voxels of > 32 points (a warp each),
    ragged and empty samples: the emulated GPU path equals the CPU backend bit for bit."""
    if variant is None:
        monkeypatch.delenv("ROBOCACHE_POINTS_VARIANT", raising=False)
    else:
        monkeypatch.setenv("ROBOCACHE_POINTS_VARIANT", variant)
    addr = points_kernels_on_cpu
    for c in (3, 5):
        for kw in (
            dict(voxel_size=0.3, return_counts=True),
            dict(voxel_size=[0.2, 0.5, 0.1], min_points_per_voxel=2, return_counts=True, origin=[0.1, -0.2, 0.3]),
            dict(voxel_size=0.4, anchor="min_bound", max_points=700, return_counts=True),
            dict(voxel_size=1.5, max_points=64),
        ):
            clouds = [random_cloud(rng, n, c) for n in (int(rng.integers(2000, 7000)), 0, int(rng.integers(1, 300)), 4100)]
            ref = run("voxel_downsample", clouds, **kw)
            assert_bitwise(emulated(addr, "voxel_downsample", clouds, **kw), ref, f"downsample C={c} {kw}")
    wide = np.concatenate([rng.uniform([-100, -100, -5], [100, 100, 15], (3000, 3)), rng.uniform(0, 0.01, (200, 3))]).astype(np.float32)
    dense = rng.uniform(0, 1, (5000, 4)).astype(np.float32)  # ~600 points per voxel at 0.5
    # Points on voxel boundaries (x / voxel an exact integer) and just off them.
    grid = (rng.integers(-40, 40, (3000, 3)) * 0.25).astype(np.float32)
    # A clump of 6000 points in a few voxels next to a spread sample.
    clump = np.concatenate([rng.normal(0, 0.002, (6000, 3)), rng.uniform(-10, 10, (500, 3))]).astype(np.float32)
    spread = rng.uniform(-10, 10, (7000, 3)).astype(np.float32)
    # local: a top-8-bit bucket of more than 8192 rows (the LSD passes) next to samples that fit.
    big_clump = np.concatenate([rng.normal(0, 0.01, (9000, 3)), rng.uniform(-10, 10, (800, 3))]).astype(np.float32)
    # [wide, narrow]: the wide sample finishes its passes in one block of the last pass launch.
    for cl, v in (([wide, np.ascontiguousarray(dense[:3000, :3])], 0.01), ([dense, dense[:40]], 0.5), ([grid], 0.25),
                  ([grid, grid[:500] + np.float32(0.1)], 0.5), ([clump, spread], 0.05), ([spread], 0.02), ([spread, big_clump, clump], 0.05)):
        ref = run("voxel_downsample", cl, voxel_size=v, return_counts=True)
        assert_bitwise(emulated(addr, "voxel_downsample", cl, voxel_size=v, return_counts=True), ref, f"v={v}")
    rng_ = [-4.0, -3.0, -2.0, 4.0, 3.0, 2.0]
    clouds = [random_cloud(rng, int(rng.integers(0, 5000)), 4, scale=3.0) for _ in range(3)]
    for kw in (dict(), dict(max_voxels=50), dict(max_voxels=30, max_points=40, min_points_per_voxel=2)):
        kw = dict(voxel_size=0.5, range=rng_, mode="sparse", **kw)
        assert_bitwise(emulated(addr, "voxelize", clouds, **kw), run("voxelize", clouds, **kw), f"sparse {kw}")
    for mode in ("occupancy", "count", "mean"):
        kw = dict(voxel_size=[0.5, 0.25, 1.0], range=rng_, mode=mode)
        got = emulated(addr, "voxelize", clouds, **kw)
        ref = run("voxelize", clouds, **kw)
        if mode == "mean":  # float64 atomics in the dense grid: to float32 rounding
            for a, b in zip(got[0], ref[0]):
                assert_means(a, b, mode)
        else:
            assert_bitwise(got, ref, mode)
    far = random_cloud(rng, 100, 4, scale=1.0)
    far[np.flatnonzero(np.isfinite(far[:, :3]).all(1))[0], 0] = 1e6
    pts, num = emulated(addr, "voxel_downsample", [far], voxel_size=1e-4, max_points=10)
    assert int(num[0]) == -1 and not pts[0].any()
    with pytest.raises(RuntimeError, match=r"robocache.voxel_downsample: sample 1: .*2\^31 cells"):
        emulated(addr, "voxel_downsample", [random_cloud(rng, 50, 4, scale=1.0), far], voxel_size=1e-4)


def test_gpu_kernels_emulated_learned_pass_launches(rng, points_kernels_on_cpu, monkeypatch):
    """voxel_downsample launches as many radix passes as the instance's earlier batches needed
    (PassHint): a local sample needs one (pass 0, then points_local); a batch needing more than were
    launched finishes in the last launch and raises the count; results equal the CPU backend for
    every count, including a local sample whose pass 0 is the only launch."""
    from robocache._raw_points import PointsBatch

    monkeypatch.delenv("ROBOCACHE_POINTS_VARIANT", raising=False)
    addr = points_kernels_on_cpu
    spread = rng.uniform(-10, 10, (7000, 3)).astype(np.float32)  # 0.5: 18-bit keys, sorted locally
    spread4 = random_cloud(rng, 6000, 4, scale=10.0)  # NaN rows too
    wide = np.concatenate([rng.uniform([-100, -100, -5], [100, 100, 15], (3000, 3)), rng.uniform(0, 0.01, (200, 3))]).astype(np.float32)
    empty = np.zeros((0, 3), np.float32)

    def learned(cl, v, hint):
        pb = PointsBatch("voxel_downsample", cl, emulator=addr, voxel_size=[v], return_counts=True, pass_hint=hint)
        got = pb.run()
        assert_bitwise(got, run("voxel_downsample", cl, voxel_size=v, return_counts=True), f"hint {hint} v={v} {[len(c) for c in cl]}")
        return pb.pass_hint

    assert learned([spread], 0.5, 0) == 1
    assert learned([spread, empty, spread[:100]], 0.5, 0) == 1
    cases = (([spread], 0.5), ([spread, spread[:3000] * np.float32(3)], 0.02), ([spread4[:, :3].copy(), empty, spread[:900]], 0.05),
             ([wide, spread], 0.01), ([spread, wide[:1000]], 0.1))
    for cl, v in cases:
        need = learned(cl, v, 0)  # from the default 5 launches
        assert 1 <= need <= 5
        for hint in range(1, 6):
            assert learned(cl, v, hint) == max(hint, need), f"hint {hint} v={v}"
    # One instance's batches: it keeps the most any batch needed.
    pb = PointsBatch("voxel_downsample", [spread], emulator=addr, voxel_size=[0.5])
    pb.run()
    pb.run()
    assert pb.pass_hint == 1


@pytest.mark.parametrize("variant", POINTS_VARIANTS)
def test_gpu_kernels_emulated_long_look_back(rng, points_kernels_on_cpu, monkeypatch, variant):
    """Samples of 20-37 tiles whose tiles publish only aggregates ("aggonly"): every look-back (radix
    passes per digit, voxel ids) walks back to the sample's first tile, over windows of 16 tiles / a
    warp's 32 and the sample's start, as blocks that run ahead of their predecessors do on a GPU."""
    variant = "aggonly" if variant is None else f"{variant},aggonly"
    monkeypatch.setenv("ROBOCACHE_POINTS_VARIANT", variant)
    addr = points_kernels_on_cpu
    big = rng.uniform(-2, 2, (int(rng.integers(68000, 76000)), 4)).astype(np.float32)
    cases = (
        ("voxel_downsample", [big, random_cloud(rng, 3000, 4)], dict(voxel_size=0.1, return_counts=True)),
        ("voxel_downsample", [big[:40000, :3].copy()], dict(voxel_size=0.3, min_points_per_voxel=2, return_counts=True)),
        ("voxelize", [big[:40000]], dict(voxel_size=0.05, range=[-2.0, -2.0, -2.0, 2.0, 2.0, 2.0], mode="sparse")),
    )
    for op, cl, kw in cases:
        assert_bitwise(emulated(addr, op, cl, **kw), run(op, cl, **kw), f"{variant} {op} {kw}")
