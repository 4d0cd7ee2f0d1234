"""Reads benchmarks/sanitize.sh's logs (``sanitize_<tool>.log``) and prints the table (tool, operator,
errors) last; writes JSON. A report is judged (counted) when it names a RoboCache kernel
(``resample_*``, ``align_*``, ``action_noise_*``, ``points_augment_*``, ``points_*``), or, for a
host-API report, when its host frames are in RoboCache (``robocache`` / ``libdali_robocache``). Others
(DALI's allocations, cub, the driver) are listed as ``not judged``. The operator is the one whose
``== <op>`` marker the driver printed last before the report. Exit status 1 on any judged error, a
driver mismatch, or a tool run that did not finish."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

KERNELS = [("points_augment", "points_augment"), ("action_noise", "action_noise"), ("resample_", "resample"), ("align_", "align"), ("points_", "points")]
START = re.compile(r"^========= (?!    |ERROR SUMMARY|RACECHECK SUMMARY|COMPUTE-SANITIZER|Target application|Saved host backtrace|Host Frame|  )(\S.*)$")
KERNEL_AT = re.compile(r"(?:at|in) (?:0x[0-9a-f]+ in )?([A-Za-z_][A-Za-z0-9_]*)(?:\+0x[0-9a-f]+|\()")


def family(name: str | None) -> str | None:
    if not name:
        return None
    for prefix, fam in KERNELS:
        if name.startswith(prefix):
            return fam
    return None


def parse(log: str):
    """Yields (operator marker, message, kernel family or None, judged) per report."""
    op, block = "startup", None
    reports = []

    def flush():
        if block is None:
            return
        text = "\n".join(block["lines"])
        names = KERNEL_AT.findall(text)
        fams = [f for f in map(family, names) if f]
        host_rc = "robocache" in text and "Host Frame" in text
        fam = fams[0] if fams else ("host (robocache)" if host_rc else None)
        reports.append({"op": block["op"], "message": block["lines"][0], "kernel": fam or (names[0] if names else None), "judged": bool(fams) or host_rc})

    for line in log.splitlines():
        if line.startswith("== "):
            flush()
            block = None
            op = line[3:].strip()
            continue
        m = START.match(line)
        if m:
            flush()
            block = {"op": op, "lines": [m.group(1)]}
        elif block is not None and line.startswith("========="):
            block["lines"].append(line)
        elif block is not None:
            flush()
            block = None
    flush()
    return reports


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--tools", default="memcheck,racecheck,initcheck,synccheck")
    ap.add_argument("--ops", default="")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    d = Path(a.dir)
    ops = [o for o in a.ops.split(",") if o]
    rows, bad, notes = [], 0, []
    for tool in a.tools.split(","):
        log_path = d / f"sanitize_{tool}.log"
        if not log_path.is_file():
            notes.append(f"{tool}: no log")
            bad += 1
            continue
        log = log_path.read_text(errors="replace")
        reps = parse(log)
        rc = (d / f"sanitize_{tool}.rc").read_text().strip() if (d / f"sanitize_{tool}.rc").is_file() else "?"
        summary = re.findall(r"(?:ERROR SUMMARY|RACECHECK SUMMARY): (.*)", log)
        finished = "GPU == CPU" in log and rc in ("0", "1")
        covered = {}
        cj = d / f"check_{tool}.json"
        if cj.is_file():
            covered = {r["op"]: (r["passed"], r["cases"], r["planned"]) for r in json.loads(cj.read_text())["rows"]}
        if not finished:
            notes.append(f"{tool}: the driver did not finish (exit {rc})")
            bad += 1
        if rc == "1":
            notes.append(f"{tool}: the driver found a GPU/CPU mismatch (see check_{tool}.json)")
            bad += 1
        for op in ops or sorted({r["op"] for r in reps}):
            mine = [r for r in reps if r["op"] == op]
            judged = [r for r in mine if r["judged"]]
            cov = covered.get(op)
            if cov is not None and cov[1] == 0:
                notes.append(f"{tool}: {op}: no case ran (time budget)")
                bad += 1
            rows.append({"tool": tool, "op": op, "errors": len(judged), "not_judged": len(mine) - len(judged),
                         "gpu_eq_cpu": f"{cov[0]}/{cov[1]} of {cov[2]}" if cov else "?",
                         "first": judged[0]["message"] + f" [{judged[0]['kernel']}]" if judged else None})
            bad += len(judged)
        other = [r for r in reps if r["op"] not in ops] if ops else []
        if other:
            rows.append({"tool": tool, "op": "(startup/other)", "errors": sum(r["judged"] for r in other), "not_judged": sum(not r["judged"] for r in other), "first": None})
            bad += sum(r["judged"] for r in other)
        notes.append(f"{tool}: exit {rc}; sanitizer summary: {summary[-1] if summary else 'none'}")
    if a.out:
        Path(a.out).write_text(json.dumps({"rows": rows, "notes": notes}, indent=1))
    for n in notes:
        print(n)
    print()
    print(f"{'tool':<10} {'operator':<18} {'errors':>6} {'not judged':>10} {'GPU==CPU':>12}  first")
    for r in rows:
        print(f"{r['tool']:<10} {r['op']:<18} {r['errors']:>6} {r['not_judged']:>10} {r.get('gpu_eq_cpu', ''):>12}  {r['first'] or ''}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
