#!/bin/bash
# Kernel-only sweep of align kernel variants at the benchmark shape, on the GPU machine, then the full
# gpu_align.py run (checks + peers) with the fastest bit-exact variant. Usage:
#   benchmarks/align_sweep.sh DATA_DIR OUT_DIR [BASELINE_PLUGIN]
# ROBOCACHE_PLUGIN names the plugin under test; BASELINE_PLUGIN (optional) an older build timed first
# on the same machine. Launch configs (ROBOCACHE_ALIGN_* knobs, read per launch) are swept inside one
# process per NVRTC option set (kernels compile once per process): CONFIGS with the default build,
# SHORT with each option of OPTS_SWEEP (space-separated; set it empty for none), every build with
# BASE_OPTS (e.g. -DRC_ALIGN_VARIANTS=1 for the tiled form's register-capped and split float32 entry
# points that the VARIANT knob picks, 2 for the flat forms', 3 for both; the DESIGN knob picks the
# form). FULL=0 skips the full run.
# Prints the full run's table, then "best: opts [...] cfg [...]" and the sweep's lines and tables last.
set -u
here=$(cd "$(dirname "$0")" && pwd)
data=$1 out=$2 base=${3:-}
mkdir -p "$out"
log=$out/align_sweep.txt
: >"$log"
CONFIGS=${CONFIGS:-";TILE=16;TILE=64;SPARSE=8;SPARSE=8,TILE=64;SPARSE=3;SPARSE=0;MARGIN=2,MARGIN_SHIFT=9;SPARSE=8,MARGIN=2,MARGIN_SHIFT=9"}
SHORT=${SHORT:-";SPARSE=8;SPARSE=8,TILE=64"}
ko() {  # opts configs json-name
  ROBOCACHE_NVRTC_OPTIONS="${BASE_OPTS:-} $1" python3 "$here/gpu_align.py" --data "$data" --kernel-only --configs "$2" \
    --out "$out/sweep_$3.json" 2>&1 | tee "$out/sweep_$3.log" | grep -E "kernel-only|Error|error" | tee -a "$log"
}
if [ -n "$base" ]; then
  echo "baseline plugin $base" | tee -a "$log"
  ROBOCACHE_PLUGIN=$base ROBOCACHE_NVRTC_OPTIONS="" python3 "$here/gpu_align.py" --data "$data" --kernel-only \
    --out "$out/sweep_baseline.json" 2>&1 | grep kernel-only | sed 's/^kernel-only/baseline/' | tee -a "$log"
fi
ko "" "$CONFIGS" default
for o in ${OPTS_SWEEP-"-DRC_ALIGN_ASYNC=0"}; do ko "$o" "$SHORT" "$(echo "$o" | tr -dc 'A-Za-z0-9_')"; done
best=$(grep '^kernel-only' "$log" | grep 'CPU: True' \
  | sed -E 's/^kernel-only: opts \[(.*)\] cfg \[(.*)\]: ([0-9.]+) us.*/\3|\1|\2/' | sort -t'|' -k1,1g | head -1)
opts=$(echo "$best" | cut -d'|' -f2) cfg=$(echo "$best" | cut -d'|' -f3)
echo "best: opts [$opts] cfg [$cfg]" | tee -a "$log"
if [ "${FULL:-1}" != 0 ]; then
  for kv in ${cfg//,/ }; do export "ROBOCACHE_ALIGN_$kv"; done
  ROBOCACHE_NVRTC_OPTIONS="$opts" python3 "$here/gpu_align.py" --data "$data" --out "$out/gpu_align.json" 2>&1 \
    | tee "$out/gpu_align_log.txt" | tail -25
fi
echo "== sweep =="
cat "$log"
for f in "$out"/sweep_*.log; do sed -n '/^== align kernel-only/,$p' "$f"; done
