#!/usr/bin/env bash
# All tests: set-up, Rust format/lint/tests (every kernel compiled by NVRTC, no GPU needed), then the
# Python tests, which run every operator inside real DALI pipelines.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
. .venv/bin/activate
NVRTC_DIR=$(python -c "import nvidia, os, glob; print(next(os.path.dirname(p) for d in nvidia.__path__ for p in glob.glob(os.path.join(d, 'cu13', 'lib', 'libnvrtc.so.13'))))")
echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
echo "== cargo test (NVRTC from $NVRTC_DIR)"
LD_LIBRARY_PATH="$NVRTC_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ROBOCACHE_REQUIRE_NVRTC=1 cargo test --release
echo "== pytest"
# run from outside the source tree so that the installed package (with its plugin) is imported
cd tests/python && python -m pytest -q -p no:cacheprovider "$@"
