"""The composition example (examples/augment_pipeline.py) on the CPU backend: DALI's JPEG decoder and
image augmentations next to robocache temporal_jitter and action_noise; frames and actions must stay
aligned through the random warp, on real Bridge episodes (synthetic JPEGs without the data)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from robocache.testing import reference_resample

ROOT = Path(__file__).resolve().parents[2]


def load_example():
    spec = importlib.util.spec_from_file_location("augment_pipeline", ROOT / "examples" / "augment_pipeline.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("source", ["bridge", "synthetic"])
def test_frames_and_actions_stay_aligned(source, request):
    ex = load_example()
    if source == "bridge":
        episodes = ex.load_bridge(request.getfixturevalue("data_dir"), frames=8)
        assert len(episodes) >= 8
    else:
        episodes = ex.synthetic_episodes(6, 8)
    bs, nb, steps = 4, 2, 6
    p = ex.build_pipeline(episodes, batch_size=bs, num_batches=nb, device="cpu", out_steps=steps)
    p.build()
    warped_somewhere = False
    for b in range(nb):
        o = dict(zip(ex.OUTPUTS, p.run()))
        for i in range(bs):
            jpegs, acts, ts = episodes[(b * bs + i) % len(episodes)]
            ft, at = np.array(o["frame_times"][i]), np.array(o["action_times"][i])
            np.testing.assert_array_equal(ft, at)  # the same warp for both streams
            assert len(ft) == steps and np.all(np.diff(ft) >= 0) and ts[0] <= ft[0] <= ts[0] + 0.1 and ft[-1] <= ts[-1]
            uniform = ft[0] + (ft[-1] - ft[0]) * np.arange(steps) / (steps - 1)
            warped_somewhere |= not np.allclose(ft, uniform, atol=1e-6)
            frames, frames_in = np.array(o["frames"][i]), np.array(o["frames_in"][i])
            assert frames.shape == (steps, 48, 48, 3) and frames.dtype == np.float16
            # each output frame is the augmented input frame nearest its warped time
            j = np.searchsorted(ts, ft, side="right") - 1
            j = np.clip(j, 0, len(ts) - 1)
            nxt = np.minimum(j + 1, len(ts) - 1)
            j = np.where((nxt != j) & (ts[nxt] - ft < ft - ts[j]), nxt, j)
            np.testing.assert_array_equal(frames, frames_in[j])
            # actions interpolated at the same warped times
            np.testing.assert_allclose(np.array(o["actions"][i]), reference_resample(acts, ts, ft), rtol=1e-5, atol=1e-5)
            noisy = np.array(o["noisy_actions"][i])
            assert np.all(noisy[:, :6] >= -1) and np.all(noisy[:, :6] <= 1)
    assert warped_somewhere


def test_example_main_runs_through_the_pytorch_iterator(data_dir, capsys):
    pytest.importorskip("torch")
    ex = load_example()
    ex.main(["--data", str(data_dir), "--batches", "2"])
    out = capsys.readouterr().out
    assert "BridgeData" in out and out.count("warped times equal: True") == 2, out
