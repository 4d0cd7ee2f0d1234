"""benchmarks/groot_bench.py end to end at toy size on the CPU: it builds its GR00T-flavoured LeRobot
dataset, trains the GR00T-style policy from a PyTorch DataLoader and from RobotDataLoader, and writes
a complete JSON (every field, finite positive numbers), a PNG and a table; both loaders deliver
batches of the same shapes and dtypes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import shared_data

ROOT = Path(__file__).resolve().parents[2]
RUN_FIELDS = ("model", "vision", "training_step", "params_total", "params_transformer", "steps", "seconds", "steps_per_s", "samples_per_s",
              "wait_fraction", "wait_ms_p50", "wait_ms_p95", "gpu_stream_busy_pct", "final_loss", "gpu_max_memory_allocated_bytes",
              "gpu_util_pct", "gpu_util_samples", "cpu_util_pct", "cpu_cores_busy", "loader", "config", "workers",
              "loader_alone_samples_per_s", "peak_host_rss_bytes", "peak_gpu_used_bytes_nvml")
POSITIVE = ("params_total", "params_transformer", "steps", "seconds", "steps_per_s", "samples_per_s", "wait_fraction",
            "wait_ms_p50", "wait_ms_p95",
            "final_loss", "cpu_util_pct", "cpu_cores_busy", "workers", "loader_alone_samples_per_s", "peak_host_rss_bytes")
GPU_ONLY = ("gpu_stream_busy_pct", "gpu_max_memory_allocated_bytes", "gpu_util_pct", "peak_gpu_used_bytes_nvml")


@pytest.mark.parametrize("source", ["real", "generated"])
def test_groot_bench_toy(tmp_path, source):
    # "real": tiles the real G1 sample when ../shared/data has it (else generates); "generated": no data folder
    data_dir = shared_data() if source == "real" else tmp_path / "no-data"
    models_arg = "small,large" if source == "real" else "small"  # the generated run is shorter: one model
    kind = "real" if (data_dir / "datasets" / "lerobot_v21_unitree_g1").is_dir() else "synth"
    out = tmp_path / "results" / "groot_bench_cpu.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT / "python")}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "groot_bench.py"), "--toy", "--data", str(data_dir),
                        "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--configs", "dl4,dl8,robocache,synthetic",
                        "--models", models_arg],
                       capture_output=True, text=True, env=env, timeout=180)
    took = time.perf_counter() - t0
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert took < 90, f"toy benchmark took {took:.1f} s"
    assert "TOY SIZE" in p.stdout
    # the table comes last: header, then one row per run, then the speed-up lines
    tail = p.stdout.strip().splitlines()
    hdr = next(i for i, ln in enumerate(tail) if ln.startswith("loader ") and "samples/s" in ln)
    assert any(ln.startswith("RobotDataLoader") for ln in tail[hdr:])

    res = json.loads(out.read_text())
    assert out.with_suffix(".png").is_file() and out.with_suffix(".png").stat().st_size > 10_000
    assert res["settings"]["toy"] is True
    assert (tmp_path / "cache").is_dir() and any((tmp_path / "cache").glob(f"groot_g1_{kind}_*/meta/modality.json"))
    for k in ("python", "torch", "dali", "robocache", "gpu", "cpus"):
        assert k in res["env"]
    models = res["settings"]["models"]
    assert models == ["toy_" + m for m in models_arg.split(",")]
    loaders = list(dict.fromkeys(r["loader"] for r in res["runs"]))
    # dl4 and dl8 capped at the CPU count: one DataLoader configuration per distinct worker count
    n_cpu = res["env"]["cpus"]
    want_dl = sorted({min(4, n_cpu), min(8, n_cpu)})
    assert loaders == [f"DataLoader {w} workers" for w in want_dl] + ["RobotDataLoader (cpu)", "no loader (fixed batch)"]
    assert len(res["runs"]) == len(loaders) * len(models)
    for r in res["runs"]:
        missing = [f for f in RUN_FIELDS if f not in r]
        assert not missing, f"{r['loader']} {r['model']}: missing {missing}"
        for f in POSITIVE:
            if f in ("loader_alone_samples_per_s", "workers") and r["config"] == "synthetic":
                assert r[f] in (None, 0)  # no loader to time, no workers
                continue
            v = r[f]
            assert isinstance(v, (int, float)) and math.isfinite(v) and v > 0, f"{r['loader']} {r['model']}: {f}={v!r}"
        for f in GPU_ONLY:  # no GPU here: recorded as null, never as a made-up number
            assert r[f] is None
        assert r["wait_fraction"] < 1.0 and r["cpu_util_pct"] <= 100.0 + 1e-6
        assert abs(r["samples_per_s"] - r["steps_per_s"] * res["settings"]["batch_size"]) < 1e-6 * r["samples_per_s"]
    assert set(res["speedup_vs_best_dataloader"]) == set(models)
    assert all(math.isfinite(v) and v > 0 for v in res["speedup_vs_best_dataloader"].values())

    # both loaders deliver the same batch layout
    shapes = res["batch_shapes"]
    assert set(shapes) == set(loaders)
    ref = shapes["RobotDataLoader (cpu)"]
    b = res["settings"]["batch_size"]
    assert ref["state"] == [[b, 1, 26], "float32"] and ref["action"] == [[b, 16, 26], "float32"]
    assert ref["action_mask"] == [[b, 16], "bool"] and ref["images.ego_view"] == [[b, 224, 224, 3], "uint8"]
    for name, s in shapes.items():
        assert s == ref, f"{name} batch {s} differs from RobotDataLoader's {ref}"
