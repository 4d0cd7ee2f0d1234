#!/usr/bin/env bash
# Set-up on a fresh machine (Debian 12, Python 3.11, cargo, cmake, g++; no GPU needed): a virtual
# environment in .venv with DALI and the build/test dependencies from PyPI, then the package itself
# (cargo builds the Rust staticlib, CMake links libdali_robocache.so into the package). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -r requirements.txt
for extra in requirements-datasets.txt requirements-loader.txt; do
  if [ -f "$extra" ]; then python -m pip install -q -r "$extra"; fi
done
# --no-build-isolation: the build imports the installed DALI for its headers and flags.
python -m pip install -q --no-build-isolation .
python -c "import robocache, nvidia.dali.fn as fn; fn.robocache.resample; print('robocache', robocache.__version__, 'plugin', robocache.plugin_path())"
