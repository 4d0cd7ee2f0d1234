#!/usr/bin/env bash
# Issue 10's GPU evidence in one capped command: (1) compute-sanitizer memcheck / racecheck /
# initcheck / synccheck over every GPU operator (benchmarks/sanitize.sh, each tool <= SAN_S s, the
# driver time-budgeted and round-robin over the operators), (2) the GPU soak (benchmarks/soak.py,
# <= SOAK_S s: its time budget cuts the 100,000 batches / 1,000 rebuilds down to what fits, and the
# table says how many ran), (3) the hypothesis property tests on the GPU backend (<= PROP_S s; needs
# tests/python and hypothesis under ../extra; skipped with a note otherwise). Prints one summary
# table last; writes $OUT/reliab_gpu.log, $OUT/reliab_gpu.json and $OUT/reliab_gpu.tar.gz (every
# log and JSON). Exit status 1 when any part failed. (SOAK_DEVICE=cpu PROP_K=cpu EXTRA_CHECK_ARGS=--self-check
# COMPUTE_SANITIZER=<a pass-through script> exercise the wrapper on a machine without a GPU.)
#
#   OUT=$OUT ROBOCACHE_PLUGIN=.carry/reliab/libdali_robocache.so PYTHONPATH=/tmp/gpu-site \
#     bash .carry/reliab/benchmarks/reliab_gpu.sh
# Layout: <root>/benchmarks (this), <root>/python, <root>/tests/python, <root>/extra (hypothesis).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
OUT="${OUT:-./reliab-gpu-out}"
PY="${PYTHON:-python3}"
SAN_S="${SAN_S:-35}"
SOAK_S="${SOAK_S:-50}"
PROP_S="${PROP_S:-40}"
# hypothesis (part 3): $HYPOTHESIS_DIR, <root>/extra, or a carried .carry/reliab/extra (next to the
# root or the current directory); otherwise whatever PYTHONPATH already provides.
HYP=""
for d in "${HYPOTHESIS_DIR:-}" "$ROOT/extra" "$ROOT/.carry/reliab/extra" "$PWD/.carry/reliab/extra"; do
  if [ -n "$d" ] && [ -d "$d/hypothesis" ]; then HYP="$d"; break; fi
done
export PYTHONPATH="$ROOT/python${HYP:+:$HYP}${PYTHONPATH:+:$PYTHONPATH}"
export ROBOCACHE_PLUGIN="${ROBOCACHE_PLUGIN:-$ROOT/libdali_robocache.so}"
# Part 3 runs from tests/python: make relative paths absolute first.
PYTHONPATH="$("$PY" -c 'import os, sys; print(os.pathsep.join(os.path.abspath(p) for p in sys.argv[1].split(os.pathsep) if p))' "$PYTHONPATH")"
ROBOCACHE_PLUGIN="$(cd "$(dirname "$ROBOCACHE_PLUGIN")" && pwd)/$(basename "$ROBOCACHE_PLUGIN")"
export PYTHONPATH ROBOCACHE_PLUGIN
mkdir -p "$OUT"
W="$(mktemp -d)"
{
  echo "== 1/3 compute-sanitizer (4 tools x <= ${SAN_S} s)"
  OUT="$W/san" SANITIZE_TIMEOUT_S="$SAN_S" PYTHON="$PY" \
    CHECK_ARGS="--max-cases 4 --time-budget $((SAN_S - 14)) ${EXTRA_CHECK_ARGS:-}" bash "$HERE/sanitize.sh" >"$W/sanitize.txt" 2>&1
  echo "sanitize.sh exit $?"
  tail -n 40 "$W/sanitize.txt"
  echo "== 2/3 GPU soak (<= ${SOAK_S} s)"
  timeout "$SOAK_S" "$PY" "$HERE/soak.py" --device "${SOAK_DEVICE:-gpu}" --batches 100000 --rebuilds 1000 \
    --time-budget "$((SOAK_S - 18))" --out "$W/soak.json" >"$W/soak.txt" 2>&1
  echo "soak.py exit $?"
  tail -n 12 "$W/soak.txt"
  echo "== 3/3 GPU property tests (<= ${PROP_S} s)"
  if [ -d "$ROOT/tests/python" ] && "$PY" -c "import hypothesis" 2>/dev/null; then
    (cd "$ROOT/tests/python" && ROBOCACHE_HYPOTHESIS_EXAMPLES="${PROP_EXAMPLES:-8}" ROBOCACHE_PROP_BUDGET_S="$((PROP_S - 10))" \
      timeout "$PROP_S" "$PY" -m pytest -q -p no:cacheprovider -k "${PROP_K:-gpu}" --junitxml="$W/prop.xml" \
      test_prop_resample.py test_prop_align.py test_prop_augment.py test_prop_points.py test_prop_args.py) >"$W/prop.txt" 2>&1
    echo "pytest exit $?"
    tail -n 60 "$W/prop.txt"
  else
    echo "skipped: no $ROOT/tests/python, or hypothesis not importable (looked in \$HYPOTHESIS_DIR, $ROOT/extra, .carry/reliab/extra and PYTHONPATH)" | tee "$W/prop.txt"
  fi
  "$PY" - "$W" "$OUT/reliab_gpu.json" <<'EOF'
import json, sys, xml.etree.ElementTree as ET
from pathlib import Path
w, out = Path(sys.argv[1]), Path(sys.argv[2])
rows, ok_all = [], True
def add(part, item, detail, ok):
    global ok_all
    ok_all &= bool(ok)
    rows.append({"part": part, "item": item, "detail": detail, "ok": bool(ok)})
san = w / "san" / "sanitize.json"
if san.is_file():
    rep = json.loads(san.read_text())
    tools = sorted({r["tool"] for r in rep["rows"]})
    for t in tools:
        mine = [r for r in rep["rows"] if r["tool"] == t and not r["op"].startswith("(")]
        errs = sum(r["errors"] for r in mine)
        other = sum(r["not_judged"] for r in rep["rows"] if r["tool"] == t)
        covered = [r for r in mine if not str(r.get("gpu_eq_cpu", "")).startswith("0/0")]
        eq = [r.get("gpu_eq_cpu", "?") for r in mine]
        bad_notes = [n for n in rep["notes"] if n.startswith(t + ":") and ("did not finish" in n or "mismatch" in n or "no case" in n)]
        add("sanitizer", t, f"{errs} robocache errors ({other} not judged), {len(covered)}/{len(mine)} operators ran, GPU==CPU {' '.join(eq)}" + (f"; {'; '.join(bad_notes)}" if bad_notes else ""), errs == 0 and not bad_notes and len(covered) == len(mine))
else:
    add("sanitizer", "all", "no sanitize.json (see sanitize.txt)", False)
soak = w / "soak.json"
if soak.is_file():
    for p in json.loads(soak.read_text())["phases"]:
        add("soak", p["phase"], f"{p['runs']} runs in {p['seconds']:.0f} s, host RSS {p['rss_growth'] / 2**20:+.1f} MiB (limit {p['rss_limit'] / 2**20:.0f}), GPU {p['gpu_growth'] / 2**20:+.1f} MiB (limit {p['gpu_limit'] / 2**20:.0f})" + (f", error: {p['error'][-120:]}" if p["error"] else ""), p["ok"])
else:
    add("soak", "all", "no soak.json (timed out or failed: see soak.txt)", False)
px = w / "prop.xml"
if px.is_file():
    s = ET.parse(px).getroot()
    s = s if s.tag == "testsuite" else s[0]
    n, f, e, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    add("property tests", "GPU backend", f"{n - f - e - sk} passed, {f + e} failed, {sk} skipped (time budget or no GPU)", f + e == 0 and n - sk > 0)
else:
    add("property tests", "GPU backend", (w / "prop.txt").read_text().strip()[-200:] if (w / "prop.txt").is_file() else "not run", False)
out.write_text(json.dumps({"ok": ok_all, "rows": rows}, indent=1))
print()
print(f"{'part':<15} {'item':<18} {'result':<6} detail")
for r in rows:
    print(f"{r['part']:<15} {r['item']:<18} {'ok' if r['ok'] else 'FAIL':<6} {r['detail']}")
(w / "summary.rc").write_text("0" if ok_all else "1")
EOF
} 2>&1 | tee "$OUT/reliab_gpu.log"
tar czf "$OUT/reliab_gpu.tar.gz" -C "$W" . 2>/dev/null
[ "$(cat "$W/summary.rc" 2>/dev/null)" = 0 ]
