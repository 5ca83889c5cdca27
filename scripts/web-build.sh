#!/usr/bin/env bash
# Builds the web app into target/dist with trunk (release, offline) and shrinks its wasm with
# scripts/wasm-opt.sh. Two parts, so that the main job can serve the page before the longest
# build is done:
#   page    the page and the CPU-only worker (static/index.html); trunk replaces target/dist
#   webgpu  the WebGPU worker (static/webgpu-worker.html) into target/dist-webgpu, then its three
#           files are copied into target/dist, the loader last (the page uses the worker once its
#           loader is there)
#   all     both (the default)
# Used by `foolmap demo` (trainer/src/trunk.rs) and scripts/test.sh; needs scripts/web-tools.sh's
# tools. Without npm (binaryen's wasm-opt) it says so and keeps trunk's unoptimised wasm.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/target/tools/bin:$PATH"
part=${1:-all}
case "$part" in page | webgpu | all) ;; *) echo "web-build.sh: unknown part '$part' (page, webgpu or all)" >&2; exit 2 ;; esac

opt() {
  if command -v npm >/dev/null 2>&1; then
    bash scripts/wasm-opt.sh "$1"
  else
    echo "npm not found: keeping $1 without \`wasm-opt -Oz\` (about 1.5 times larger; install Node.js and npm, then \`bash scripts/wasm-opt.sh $1\`)"
  fi
}

if [ "$part" != webgpu ]; then
  echo "trunk build: the page and the CPU-only worker ($(date +%T))"
  trunk build --release --offline
  opt target/dist
fi
if [ "$part" != page ]; then
  [ -f target/dist/index.html ] || { echo "web-build.sh: no target/dist/index.html: build the page first (web-build.sh page)" >&2; exit 1; }
  echo "trunk build: the WebGPU worker ($(date +%T))"
  # (the HTML file first: trunk takes a value after --release / --offline when one follows)
  trunk build static/webgpu-worker.html --release --offline --dist target/dist-webgpu
  opt target/dist-webgpu
  for f in worker_bg.wasm worker.js worker_loader.js; do
    [ -f "target/dist-webgpu/$f" ] || { echo "web-build.sh: trunk wrote no target/dist-webgpu/$f" >&2; exit 1; }
    cp "target/dist-webgpu/$f" "target/dist/.$f.part"
    mv "target/dist/.$f.part" "target/dist/$f"
  done
  echo "the WebGPU worker is in target/dist ($(date +%T))"
fi
