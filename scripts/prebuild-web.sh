#!/usr/bin/env bash
# Refreshes web/prebuilt/, the web app `foolmap demo` serves without building it: the wasm build
# with trunk (release), `scripts/wasm-opt.sh`, then `foolmap web-prebuilt update`, which copies
# the app's files and writes BUILD.json (each file's SHA-256 and the hash of the sources they
# were built from). Run it after changing web/, shared/, static/ or the build's configuration
# (scripts/test.sh says when), then commit web/prebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/target/tools/bin:$HOME/.cargo/bin:$PATH"
bash scripts/web-tools.sh
trunk build --release --offline
bash scripts/wasm-opt.sh target/dist
# The binary scripts/test.sh builds (same features: no second build of Burn after a test run).
cargo test -q --workspace --features foolmap-trainer/gpu --no-run
target/debug/foolmap web-prebuilt update --from target/dist
