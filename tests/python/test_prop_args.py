"""Malformed per-sample argument inputs and input types, through real DALI pipelines (CPU backend,
and GPU where present): wrong lengths, empty arrays, wrong ranks, wrong dtypes. Each is a DALI error
naming the operator (DALI's own shape check for argument inputs, or RoboCache's message), never a
crash or an out-of-bounds read."""

from __future__ import annotations

import numpy as np
import pytest

from prop_common import BACKENDS, assert_error, run_error

D = [np.zeros((5, 3), np.float32)] * 2
T = [np.arange(5, dtype=np.float64)] * 2
P = [np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)] * 2
DALI_SHAPE = 'Assert on "shape.sample_dim() == ndim" failed'
DALI_UNIFORM = "Expected uniform shape for argument"


def arr(*xs):
    return [np.array(x, np.float32) for x in xs]


CASES = {
    "resample start [2]": ("resample", [D, T], dict(arg_inputs={"start": arr([0.1, 0.2], [0.1, 0.2])}, num_samples=3), DALI_SHAPE),
    "resample start []": ("resample", [D, T], dict(arg_inputs={"start": arr([], [])}, num_samples=3), DALI_SHAPE),
    "voxel_size []": ("voxel_downsample", [P], dict(arg_inputs={"voxel_size": arr([], [])}), "robocache.voxel_downsample: sample 0: voxel_size is required"),
    "voxel_size [5]": ("voxel_downsample", [P], dict(arg_inputs={"voxel_size": arr([1] * 5, [1] * 5)}), "robocache.voxel_downsample: sample 0: voxel_size must have 1 or 3 values; got 5"),
    "sigma []": ("action_noise", [D], dict(arg_inputs={"sigma": arr([], [])}, seed=1), "robocache.action_noise: sample 0: sigma has 0 values but the actions have C=3 channels"),
    "sigma [3, 1]": ("action_noise", [D], dict(arg_inputs={"sigma": [np.ones((3, 1), np.float32)] * 2}, seed=1), DALI_SHAPE),
    "p [2]": ("action_noise", [D], dict(arg_inputs={"p": arr([0.5, 0.5], [0.5, 0.5])}, seed=1), DALI_SHAPE),
    "correlation_time []": ("action_noise", [D], dict(arg_inputs={"correlation_time": arr([], [])}, seed=1), DALI_SHAPE),
    "speed [1]": ("temporal_jitter", [D, T], dict(arg_inputs={"speed": arr([1.0], [1.0])}, seed=1), DALI_UNIFORM + ' "speed"'),
    "speed []": ("temporal_jitter", [D, T], dict(arg_inputs={"speed": arr([], [])}, seed=1), DALI_UNIFORM + ' "speed"'),
    "offset [3]": ("temporal_jitter", [D, T], dict(arg_inputs={"offset": arr([0, 0, 0], [0, 0, 0])}, seed=1), DALI_UNIFORM + ' "offset"'),
    "warp_strength [2]": ("temporal_jitter", [D, T], dict(arg_inputs={"warp_strength": arr([0.1, 0.2], [0.1, 0.2])}, seed=1), DALI_SHAPE),
    "angle [1]": ("points_augment", [P], dict(arg_inputs={"angle": arr([1.0], [1.0])}, seed=1), DALI_UNIFORM + ' "angle"'),
    "translation [2]": ("points_augment", [P], dict(arg_inputs={"translation": arr([1, 1], [1, 1])}, seed=1), DALI_UNIFORM + ' "translation"'),
    "scale []": ("points_augment", [P], dict(arg_inputs={"scale": arr([], [])}, seed=1), DALI_UNIFORM + ' "scale"'),
    "jitter []": ("points_augment", [P], dict(arg_inputs={"jitter": arr([], [])}, seed=1), DALI_SHAPE),
    "timestamps [T, 1]": ("resample", [D, [np.zeros((5, 1))] * 2], dict(num_samples=3), "robocache.resample: sample 0: timestamps must be 1-D [T]; got 2 dimensions"),
    "data [T, C, 1]": ("resample", [[np.zeros((5, 3, 1), np.float32)] * 2, T], dict(num_samples=3), "robocache.resample: sample 0: data must be [T, C] or [T]; got 3 dimensions"),
    "int32 timestamps": ("resample", [D, [np.arange(5, dtype=np.int32)] * 2], dict(num_samples=3), "robocache.resample: unsupported dtype for timestamps: got int32"),
    "align int32 timestamps": ("align", [D, [np.arange(5, dtype=np.int32)] * 2], dict(num_samples=3), "robocache.align: unsupported dtype for timestamps: got int32"),
    "align mixed dtypes": ("align", [D, T, [x.astype(np.float64) for x in D], T], dict(num_samples=3, gpu_inputs=(0, 2)), "robocache.align: sample 0: stream 1: data is float64 but stream 0 is float32"),
    "align reference [2, 2]": ("align", [D, T, [np.zeros((2, 2))] * 2], dict(), "robocache.align: sample 0: reference timestamps must be 1-D [T]; got 2 dimensions"),
    "uint8 points": ("normalize", [[np.zeros((4, 3), np.uint8)] * 2], dict(), "robocache.normalize: unsupported dtype for points"),
    "int64 actions": ("action_noise", [[np.zeros((4, 3), np.int64)] * 2], dict(seed=1), "robocache.action_noise: unsupported dtype for data: got int64"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_argument_inputs_and_types_are_errors(backend, case):
    op, inputs, kw, want = CASES[case]
    msg = run_error(op, backend, inputs, **kw)
    assert_error(msg, f"fn.robocache.{op}`", want)
