#!/bin/bash
# Registers, stack and spills of every align kernel for sm_90 (the program as the Rust registry
# concatenates it: common.cuh, align_core.cu, align.cu, align_flat.cu, align_sweep.cu), from nvcc's
# ptxas report, on the GPU machine (nvcc there; none here). Usage: benchmarks/align_resources.sh [nvcc options]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
cat "$here/kernels/common.cuh" "$here/kernels/align_core.cu" "$here/kernels/align.cu" "$here/kernels/align_flat.cu" \
  "$here/kernels/align_sweep.cu" >"$tmp/align_all.cu"
nvcc -cubin -arch=sm_90 -std=c++17 -fmad=false -Xptxas -v "$@" -o "$tmp/align.cubin" "$tmp/align_all.cu" 2>&1 \
  | awk "/Compiling entry function/ {on = (\$0 ~ /'align_(sweep|staged)_f32/)} on" || true
rm -rf "$tmp"
