#!/usr/bin/env bash
# The main job: set-up, then the demo (GPU backend where a GPU is present, CPU backend otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/python -m robocache.demo "$@"
