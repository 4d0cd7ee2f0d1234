#!/bin/bash
# Kernel-only sweep of align kernel variants (NVRTC -D options x tiles) at the benchmark shape, on
# the GPU machine, then the full gpu_align.py run with the fastest variant. Usage:
#   benchmarks/align_sweep.sh DATA_DIR OUT_DIR [BASELINE_PLUGIN]
# ROBOCACHE_PLUGIN names the plugin under test; BASELINE_PLUGIN (optional) an older build timed
# first at tile 128 on the same machine. Prints "best: opts [...] tile N".
set -u
here=$(cd "$(dirname "$0")" && pwd)
data=$1 out=$2 base=${3:-}
log=$out/align_sweep.txt
ko() { python3 "$here/gpu_align.py" --data "$data" --kernel-only --tiles "$1" 2>&1 | grep kernel-only | tee -a "$log"; }
if [ -n "$base" ]; then
  echo "baseline plugin $base" | tee -a "$log"
  ROBOCACHE_PLUGIN=$base ROBOCACHE_NVRTC_OPTIONS="" python3 "$here/gpu_align.py" --data "$data" --kernel-only \
    --tiles 128 2>&1 | grep kernel-only | sed 's/^kernel-only/baseline/' | tee -a "$log"
fi
for o in "" "-DRC_ALIGN_MIN_BLOCKS=5" "-DRC_ALIGN_UNROLL=8" "-DRC_ALIGN_WALK=0" "-DRC_ALIGN_FASTDIV=0" \
         "-DRC_ALIGN_UNROLL=8 -DRC_ALIGN_MIN_BLOCKS=5" "-DRC_ALIGN_WINDOW=3584"; do
  ROBOCACHE_NVRTC_OPTIONS="$o" ko "${TILES:-128,192,256}"
done
best=$(grep '^kernel-only' "$log" | sed -E 's/^kernel-only: opts \[(.*)\] tile ([0-9]+): ([0-9.]+) us.*/\3|\1|\2/' | sort -t'|' -k1,1g | head -1)
opts=$(echo "$best" | cut -d'|' -f2) tile=$(echo "$best" | cut -d'|' -f3)
echo "best: opts [$opts] tile $tile" | tee -a "$log"
ROBOCACHE_NVRTC_OPTIONS="$opts" ROBOCACHE_ALIGN_TILE=$tile python3 "$here/gpu_align.py" --data "$data" --out "$out/gpu_align.json" 2>&1 | tee "$out/gpu_align_log.txt" | tail -25
cat "$log"
