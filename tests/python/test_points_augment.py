"""fn.robocache.points_augment inside real DALI pipelines (CPU backend; the GPU backend is checked
against it by benchmarks/gpu_augment.py): against an independent numpy reference drawing the same
Philox numbers, distribution checks (uniform SO(3), scale, translation, jitter, dropout ratio), the
4x4 transform output, real KITTI scans, determinism and every error."""

from __future__ import annotations

import numpy as np
import pytest

import robocache  # noqa: F401  (loads the plugin)
from nvidia.dali import fn, pipeline_def
from robocache.testing_augment import reference_points_augment

SEED = 4242


def _const(v):
    return lambda: v


def run(clouds, iterations=1, arg_inputs=None, seed=SEED, **kw):
    """`iterations` batches through the CPU backend; list of (points, transforms, masks) lists."""
    arg_inputs = arg_inputs or {}

    @pipeline_def(batch_size=len(clouds), num_threads=2, device_id=None, prefetch_queue_depth=1)
    def pipe():
        c = fn.external_source(source=_const(clouds), batch=True)
        extra = {k: fn.external_source(source=_const(v), batch=True) for k, v in arg_inputs.items()}
        return tuple(fn.robocache.points_augment(c, seed=seed, **kw, **extra))

    p = pipe()
    p.build()
    res = []
    for _ in range(iterations):
        o = p.run()
        res.append(tuple([np.array(x[i]) for i in range(len(clouds))] for x in o))
    return res


def clouds_of(rng, b, f=1, n=(0, 3000)):
    return [(rng.standard_normal((int(rng.integers(n[0], n[1] + 1)), 3 + f)) * 10).astype(np.float32) for _ in range(b)]


@pytest.mark.parametrize("rotation", ["z", "so3", "none"])
def test_matches_numpy_reference(rng, rotation):
    clouds = clouds_of(rng, 6, f=int(rng.integers(0, 3)))
    kw = dict(rotation=rotation, angle=[-0.5, 2.0], scale=[0.8, 1.25], translation=[1.0, 2.0, 0.25], jitter=0.02, jitter_clip=0.03, dropout=0.3)
    for it, (pts, tfs, masks) in enumerate(run(clouds, iterations=2, **kw)):
        for i, c in enumerate(clouds):
            ref, ref_m, ref_mask = reference_points_augment(c, SEED, it, i, **kw)
            np.testing.assert_allclose(tfs[i], ref_m, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(pts[i], ref, rtol=1e-5, atol=1e-5)
            np.testing.assert_array_equal(masks[i], ref_mask)
            np.testing.assert_array_equal(pts[i][:, 3:], c[:, 3:])


def test_transform_output_maps_input_to_output_without_jitter(rng):
    clouds = clouds_of(rng, 8, f=2)
    ((pts, tfs, masks),) = run(clouds, rotation="so3", scale=[0.5, 2.0], translation=[3.0, 3.0, 3.0])
    for c, p, m, k in zip(clouds, pts, tfs, masks):
        h = np.concatenate([c[:, :3], np.ones((len(c), 1), np.float32)], 1)
        np.testing.assert_allclose(p[:, :3], (h @ m.T)[:, :3], rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(m[3], [0, 0, 0, 1])
        s = np.cbrt(np.linalg.det(m[:3, :3]))
        assert 0.5 - 1e-5 <= s <= 2.0 + 1e-5
        np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T / s**2, np.eye(3), atol=1e-5)
        assert np.all(np.abs(m[:3, 3]) <= 3.0) and np.all(k == 1)


def test_rotation_distributions_over_many_samples():
    b = 400
    clouds = [np.zeros((1, 3), np.float32)] * b
    ((_, tfs, _),) = run(clouds, rotation="so3")
    r = np.stack(tfs)[:, :3, :3]
    # uniform on SO(3): E[R] = 0 and E[R_ij^2] = 1/3
    assert np.abs(r.mean(0)).max() < 4 / np.sqrt(3 * b)
    assert np.abs((r**2).mean(0) - 1 / 3).max() < 0.06
    ((_, tfs, _),) = run(clouds, rotation="z", angle=[0.0, 1.0])
    m = np.stack(tfs)
    ang = np.arctan2(m[:, 1, 0], m[:, 0, 0])
    assert ang.min() >= 0 and ang.max() <= 1.0 + 1e-6 and abs(ang.mean() - 0.5) < 4 / np.sqrt(12 * b)
    np.testing.assert_allclose(m[:, 2, :3], np.tile([0, 0, 1], (b, 1)), atol=1e-7)


def test_jitter_clip_and_dropout_statistics(rng):
    c = [rng.uniform(-5, 5, (200_000, 4)).astype(np.float32)]
    ((pts, _, masks),) = run(c, rotation="none", jitter=0.01)
    d = pts[0][:, :3] - c[0][:, :3]
    assert abs(d.mean()) < 1e-4 and abs(d.std() / 0.01 - 1) < 0.01
    ((pts, _, masks),) = run(c, rotation="none", jitter=0.01, jitter_clip=0.015, dropout=0.25)
    d = pts[0][:, :3] - c[0][:, :3]
    assert np.abs(d).max() <= 0.015 + 1e-5 and np.mean(np.abs(d) > 0.0149) > 0.1
    assert abs(masks[0].mean() - 0.75) < 0.005


def test_determinism_iterations_and_per_sample_arguments(rng):
    clouds = clouds_of(rng, 4)
    kw = dict(jitter=0.01, dropout=0.1)
    a = run(clouds, iterations=2, **kw)
    b = run(clouds, iterations=2, **kw)
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            for i in range(4):
                np.testing.assert_array_equal(u[i], v[i])
    assert not np.array_equal(a[0][1][0], a[1][1][0])
    scales = [np.array([s, s], np.float32) for s in (1.0, 2.0, 3.0, 0.5)]
    drops = [np.float32(x) for x in (0.0, 0.5, 0.0, 0.9)]
    ((pts, tfs, masks),) = run(clouds, rotation="none", arg_inputs={"scale": scales, "dropout": drops})
    for i in range(4):
        np.testing.assert_allclose(np.diag(tfs[i])[:3], [scales[i][0]] * 3)
        ref = reference_points_augment(clouds[i], SEED, 0, i, rotation="none", scale=tuple(scales[i]), dropout=float(drops[i]))
        np.testing.assert_array_equal(masks[i], ref[2])


def test_real_kitti_scans(data_dir):
    files = sorted((data_dir / "pointclouds" / "kitti_full").glob("*.bin"))[:2]
    clouds = [np.fromfile(f, np.float32).reshape(-1, 4) for f in files]
    kw = dict(rotation="z", scale=[0.95, 1.05], translation=[0.2, 0.2, 0.0], jitter=0.01, jitter_clip=0.05, dropout=0.1)
    ((pts, tfs, masks),) = run(clouds, **kw)
    for i, c in enumerate(clouds):
        assert len(c) > 100_000
        ref, ref_m, ref_mask = reference_points_augment(c, SEED, 0, i, **kw)
        np.testing.assert_allclose(pts[i], ref, rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(masks[i], ref_mask)
        # the radial range distribution is kept up to the scale
        s = np.cbrt(np.linalg.det(tfs[i][:3, :3]))
        r0 = np.linalg.norm(c[:, :2], axis=1)
        r1 = np.linalg.norm(pts[i][:, :2] - tfs[i][:2, 3], axis=1)
        assert abs(np.median(r1) / (s * np.median(r0)) - 1) < 0.01


@pytest.mark.parametrize(
    "kw, text",
    [
        (dict(jitter=-0.1), "sample 0: jitter is -0.10000000149011612; expected sigma >= 0 (negative sigma)"),
        (dict(scale=[1.2, 0.8]), "scale range [1.2000000476837158, 0.800000011920929] is empty"),
        (dict(angle=[1.0, 0.0]), "angle range [1, 0] is empty"),
        (dict(translation=[0.0, -1.0, 0.0]), "translation -1"),
        (dict(dropout=1.0), "dropout is 1; expected a probability in [0, 1)"),
        (dict(jitter_clip=-1.0), "jitter_clip is -1"),
        (dict(rotation="x"), "`rotation`"),
    ],
)
def test_errors(kw, text):
    with pytest.raises(RuntimeError, match="robocache.points_augment") as e:
        run([np.zeros((5, 4), np.float32)], **kw)
    assert text in str(e.value), str(e.value)


def test_shape_and_dtype_errors():
    with pytest.raises(RuntimeError, match=r"robocache.points_augment: sample 0: points must be \[N, 3 \+ F\]"):
        run([np.zeros((5, 2), np.float32)])
    with pytest.raises(RuntimeError, match="robocache.points_augment: unsupported dtype for points: got float64"):
        run([np.zeros((5, 3), np.float64)])
    with pytest.raises(RuntimeError, match="sample 1: points have 5 columns but sample 0 has 4"):
        run([np.zeros((5, 4), np.float32), np.zeros((5, 5), np.float32)])
