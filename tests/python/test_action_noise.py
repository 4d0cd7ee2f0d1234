"""fn.robocache.action_noise inside real DALI pipelines (CPU backend; the GPU backend is checked
against it by benchmarks/gpu_augment.py): against an independent numpy reference drawing the same
Philox numbers, distribution checks with fixed seeds over large samples (mean, variance, bounds,
correlation time), determinism, clipping, p = 0 identity, real robosuite actions, and every error."""

from __future__ import annotations

import numpy as np
import pytest

import robocache  # noqa: F401  (loads the plugin)
from nvidia.dali import fn, pipeline_def
from robocache.dtypes import bf16_bits_to_float, float_to_bf16_bits
from robocache.testing_augment import noise_applies, reference_action_noise

SEED = 77


def _const(v):
    return lambda: v


def run(acts, iterations=1, arg_inputs=None, seed=SEED, **kw):
    """`iterations` batches of the same actions through the CPU backend; list of numpy lists."""
    arg_inputs = arg_inputs or {}

    @pipeline_def(batch_size=len(acts), num_threads=2, device_id=None, prefetch_queue_depth=1)
    def pipe():
        a = fn.external_source(source=_const(acts), batch=True)
        extra = {k: fn.external_source(source=_const(v), batch=True) for k, v in arg_inputs.items()}
        return fn.robocache.action_noise(a, seed=seed, **kw, **extra)

    p = pipe()
    p.build()
    return [[np.array(o[i]) for i in range(len(acts))] for o in (p.run()[0] for _ in range(iterations))]


@pytest.mark.parametrize("distribution", ["gaussian", "uniform"])
@pytest.mark.parametrize("tau", [0.0, 0.2])
def test_matches_numpy_reference(rng, distribution, tau):
    c = int(rng.integers(1, 9))
    acts = [rng.standard_normal((int(rng.integers(1, 90)), c)).astype(np.float32) for _ in range(7)]
    sigma = list(rng.uniform(0.0, 0.5, c).astype(np.float32))
    kw = dict(sigma=sigma, distribution=distribution, p=0.7, low=[-1.5], high=list(np.full(c, 1.2, np.float32)))
    if tau:
        kw.update(correlation_time=tau, rate=50.0)
    for it, out in enumerate(run(acts, iterations=2, **kw)):
        for i, a in enumerate(acts):
            ref = reference_action_noise(a, SEED, it, i, **kw)
            assert out[i].dtype == np.float32 and out[i].shape == a.shape
            np.testing.assert_allclose(out[i], ref, rtol=1e-6, atol=1e-6)


def test_gaussian_white_noise_moments_fixed_seed():
    sigma = [0.05, 0.5, 2.0]
    acts = [np.zeros((2000, 3), np.float32) for _ in range(20)]
    (out,) = run(acts, sigma=sigma)
    x = np.concatenate(out)  # 40000 x 3
    for c, s in enumerate(sigma):
        assert abs(x[:, c].mean()) < 5 * s / np.sqrt(len(x))
        assert abs(x[:, c].std() / s - 1) < 0.02
        # lag-1 correlation of white noise ~ 0
        assert abs(np.corrcoef(out[0][:-1, c], out[0][1:, c])[0, 1]) < 0.1
    # channels are independent
    assert abs(np.corrcoef(x[:, 0], x[:, 1])[0, 1]) < 0.02


def test_uniform_noise_bounds_and_variance():
    acts = [np.full((5000, 2), 3.0, np.float32) for _ in range(4)]
    (out,) = run(acts, sigma=[0.1, 1.0], distribution="uniform")
    x = np.concatenate(out) - 3.0
    for c, s in enumerate([0.1, 1.0]):
        assert np.abs(x[:, c]).max() <= s * (1 + 1e-6)
        assert np.abs(x[:, c]).max() > 0.99 * s
        assert abs(x[:, c].var() / (s * s / 3) - 1) < 0.03


def test_ou_correlation_time_and_stationary_sigma():
    rate, tau, sigma = 100.0, 0.25, 0.3
    acts = [np.zeros((4000, 2), np.float32) for _ in range(8)]
    (out,) = run(acts, sigma=[sigma], correlation_time=tau, rate=rate)
    a = np.exp(-1 / (rate * tau))
    x = np.stack(out)  # [8, 4000, 2]
    assert abs(x.std() / sigma - 1) < 0.08
    for k in (1, 5, 25):
        r = np.mean([np.corrcoef(x[i, :-k, c], x[i, k:, c])[0, 1] for i in range(8) for c in range(2)])
        assert abs(r - a**k) < 0.06, (k, r, a**k)
    # the correlation time recovered from the lag-1 autocorrelation: tau = -dt / ln(r1)
    r1 = np.mean([np.corrcoef(x[i, :-1, c], x[i, 1:, c])[0, 1] for i in range(8) for c in range(2)])
    assert abs(-1 / rate / np.log(r1) / tau - 1) < 0.15
    # stationary from the first step: the variance at t = 0 equals sigma^2 (over samples and seeds)
    first = np.concatenate([np.stack(run([np.zeros((3, 2), np.float32)] * 50, seed=s, sigma=[sigma], correlation_time=tau, rate=rate)[0])[:, 0] for s in range(20)])
    assert abs(first.std() / sigma - 1) < 0.1


def test_clipping_to_joint_limits():
    acts = [np.zeros((500, 3), np.float32) for _ in range(4)]
    low, high = [-0.1, -1.0, 0.0], [0.1, 0.05, 0.0]
    (out,) = run(acts, sigma=[0.5], low=low, high=high)
    x = np.concatenate(out)
    assert np.all(x >= np.float32(low)) and np.all(x <= np.float32(high))
    assert np.mean(x[:, 0] == np.float32(0.1)) > 0.3 and np.all(x[:, 2] == 0.0)


def test_p_zero_is_identity_and_p_is_a_per_sample_probability(rng):
    acts = [rng.standard_normal((10, 4)).astype(np.float32) for _ in range(200)]
    (out,) = run(acts, sigma=[1.0], p=0.0, low=[-0.1], high=[0.1])
    for a, o in zip(acts, out):
        np.testing.assert_array_equal(a, o)
    (out,) = run(acts, sigma=[1.0], p=0.3)
    noised = np.array([not np.array_equal(a, o) for a, o in zip(acts, out)])
    expect = np.array([noise_applies(SEED, 0, i, 0.3) for i in range(200)])
    np.testing.assert_array_equal(noised, expect)
    assert abs(noised.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 200)


def test_determinism_and_iterations_differ(rng):
    acts = [rng.standard_normal((30, 5)).astype(np.float32) for _ in range(6)]
    a = run(acts, iterations=3, sigma=[0.2], correlation_time=0.1, rate=30.0)
    b = run(acts, iterations=3, sigma=[0.2], correlation_time=0.1, rate=30.0)
    for x, y in zip(a, b):
        for i in range(6):
            np.testing.assert_array_equal(x[i], y[i])
    assert not np.array_equal(a[0][0], a[1][0]) and not np.array_equal(a[1][0], a[2][0])
    c = run(acts, seed=SEED + 1, sigma=[0.2], correlation_time=0.1, rate=30.0)
    assert not np.array_equal(a[0][0], c[0][0])


def test_per_sample_correlation_time():
    acts = [np.zeros((20000, 1), np.float32) for _ in range(3)]
    taus = [np.float32(x) for x in (0.0, 0.05, 0.5)]
    (out,) = run(acts, arg_inputs={"correlation_time": taus}, sigma=[1.0], rate=100.0)
    for i, tau in enumerate(taus):
        x = out[i][:, 0]
        r1 = np.corrcoef(x[:-1], x[1:])[0, 1]
        expect = np.exp(-1 / (100.0 * float(tau))) if tau > 0 else 0.0
        assert abs(r1 - expect) < 0.03, (tau, r1, expect)
        ref = reference_action_noise(acts[i], SEED, 0, i, [1.0], correlation_time=float(tau), rate=100.0)
        np.testing.assert_allclose(out[i], ref, rtol=1e-6, atol=1e-6)


def test_per_sample_sigma_and_p(rng):
    acts = [np.zeros((3000, 2), np.float32) for _ in range(3)]
    sig = [np.array([0.1, 1.0], np.float32), np.array([0.0], np.float32), np.array([2.0, 0.5], np.float32)]
    p = [np.float32(1.0), np.float32(1.0), np.float32(1.0)]
    (out,) = run(acts, arg_inputs={"sigma": sig, "p": p})
    np.testing.assert_allclose(out[0].std(0), [0.1, 1.0], rtol=0.05)
    assert np.all(out[1] == 0)
    np.testing.assert_allclose(out[2].std(0), [2.0, 0.5], rtol=0.05)
    for i in range(3):
        np.testing.assert_allclose(out[i], reference_action_noise(acts[i], SEED, 0, i, sig[i]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype_name", ["float16", "float64", "bfloat16"])
def test_other_dtypes(rng, dtype_name):
    x = rng.standard_normal((40, 3)).astype(np.float32)
    src = float_to_bf16_bits(x) if dtype_name == "bfloat16" else x.astype(dtype_name)
    (out,) = run([src], sigma=[0.1], dtype="bfloat16" if dtype_name == "bfloat16" else "")
    assert out[0].dtype == src.dtype
    got = bf16_bits_to_float(out[0]) if dtype_name == "bfloat16" else out[0].astype(np.float64)
    base = bf16_bits_to_float(src) if dtype_name == "bfloat16" else src.astype(np.float32)
    ref = reference_action_noise(base, SEED, 0, 0, [0.1])
    tol = {"float16": 2e-3, "float64": 1e-6, "bfloat16": 1.6e-2}[dtype_name]
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * 4)


def test_real_robosuite_actions_with_joint_limits(data_dir):
    h5py = pytest.importorskip("h5py")
    with h5py.File(data_dir / "datasets" / "robosuite_hdf5" / "lift" / "panda" / "demo.hdf5") as f:
        acts = [np.asarray(f["data"][k]["actions"], np.float32) for k in f["data"].keys()]
    kw = dict(sigma=[0.05] * 6 + [0.0], correlation_time=0.3, rate=20.0, low=[-1.0], high=[1.0])
    (out,) = run(acts, **kw)
    for i, a in enumerate(acts):
        np.testing.assert_allclose(out[i], reference_action_noise(a, SEED, 0, i, **kw), rtol=1e-6, atol=1e-6)
        assert np.all(np.abs(out[i]) <= 1.0)
        np.testing.assert_array_equal(out[i][:, 6], a[:, 6])  # sigma 0 on the gripper


@pytest.mark.parametrize(
    "kw, text",
    [
        (dict(sigma=[0.1, -0.2, 0.1]), "sample 0: sigma[1] is -0.2"),
        (dict(sigma=[0.1, 0.2]), "sigma has 2 values but the actions have C=3 channels; expected 1 or 3 (wrong channel count)"),
        (dict(low=[0.0, 1.0, 0.0], high=[1.0, 0.5, 1.0]), "low[1] = 1 > high[1] = 0.5"),
        (dict(low=[0.0, 0.0]), "`low` has 2 values but the actions have C=3 channels"),
        (dict(p=1.5), "p is 1.5; expected a probability in [0, 1]"),
        (dict(correlation_time=0.1), "invalid argument `rate`"),
        (dict(correlation_time=-1.0), "sample 0: correlation_time is -1; expected a finite time >= 0"),
        (dict(correlation_time=0.1, rate=0.0), "`rate`: got 0"),
        (dict(distribution="laplace"), "`distribution`"),
    ],
)
def test_errors(kw, text):
    with pytest.raises(RuntimeError, match="robocache.action_noise") as e:
        run([np.zeros((4, 3), np.float32)], **kw)
    assert text in str(e.value), str(e.value)


def test_dtype_and_channel_errors():
    with pytest.raises(RuntimeError, match="robocache.action_noise: unsupported dtype for data: got int32"):
        run([np.zeros((4, 3), np.int32)])
    with pytest.raises(RuntimeError, match="robocache.action_noise: sample 1: actions have C=2 channels but sample 0 has C=3"):
        run([np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32)])


def test_one_dimensional_actions(rng):
    acts = [rng.standard_normal(50).astype(np.float32) for _ in range(3)]
    (out,) = run(acts, sigma=[0.2], correlation_time=0.1, rate=20.0)
    for i, a in enumerate(acts):
        assert out[i].shape == (50,)
        ref = reference_action_noise(a[:, None], SEED, 0, i, [0.2], correlation_time=0.1, rate=20.0)[:, 0]
        np.testing.assert_allclose(out[i], ref, rtol=1e-6, atol=1e-6)
