"""One resample launch on a benchmark shape, for Nsight Compute:
    ncu --kernel-name regex:resample_v --section SpeedOfLight --section Occupancy python benchmarks/ncu_resample.py B T C N dtype
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import robocache._raw as raw  # noqa: E402

b, t, c, n, dt = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
tdt = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dt]
dense = torch.randn(b, t, c, device="cuda").to(tdt)
ts = (torch.rand(b, 1, dtype=torch.float64) * 100 + torch.cumsum(torch.full((b, t), 0.005, dtype=torch.float64), 1)).numpy()
samples = [dense[i].view(torch.uint16) if dt == "bfloat16" else dense[i] for i in range(b)]
rb = raw.ResampleBatch(samples, list(ts), num_samples=n, dtype="bfloat16" if dt == "bfloat16" else "", stream=torch.cuda.current_stream().cuda_stream)
rb.run()
rb.launch()
torch.cuda.synchronize()
print("ok")
