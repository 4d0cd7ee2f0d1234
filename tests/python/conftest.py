"""Shared fixtures: the real recordings under ../shared/data and a fresh random seed per run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def shared_data() -> Path:
    """The real-data folder: $ROBOCACHE_SHARED_DATA, else ../shared/data next to the checkout."""
    return Path(os.environ.get("ROBOCACHE_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data()
    if not d.is_dir():
        pytest.skip(f"real data folder {d} is absent (set ROBOCACHE_SHARED_DATA)")
    return d


@pytest.fixture
def rng(request) -> np.random.Generator:
    seed = int(os.environ.get("ROBOCACHE_TEST_SEED", np.random.SeedSequence().entropy % (2**32)))
    print(f"seed {seed} ({request.node.name}); rerun with ROBOCACHE_TEST_SEED={seed}")
    return np.random.default_rng(seed)
