"""The soak test (benchmarks/soak.py) at a reduced count on the CPU backend: every operator in one
DALI pipeline for 2,000 batches with 8 threads, 200 with 1 thread, two pipelines in one process, and
100 pipeline rebuilds; host RSS must stay flat after warm-up and nothing may error. Run in its own
process so that pytest's memory does not blur the RSS samples (the GPU machine runs 100,000 batches)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_soak_cpu_reduced(tmp_path):
    out = tmp_path / "soak.json"
    env = dict(os.environ)
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--device", "cpu", "--batches", "2000", "--rebuilds", "100", "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=600)
    print(r.stdout[-3000:], r.stderr[-3000:])
    rep = json.loads(out.read_text())
    assert [p["phase"] for p in rep["phases"]] == ["main (8 threads)", "threads1", "two_pipes", "rebuild"]
    for p in rep["phases"]:
        assert p["error"] is None, p["error"]
        assert p["rss_growth"] <= p["rss_limit"], p
        assert len(p["samples"]) >= 5
    assert r.returncode == 0, r.stdout[-2000:]
    assert rep["phases"][0]["runs"] == 2000 and rep["phases"][3]["runs"] == 100
    assert r.stdout.strip().splitlines()[-5].startswith("phase")  # the table is printed last
