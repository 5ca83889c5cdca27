#!/usr/bin/env bash
# Shrinks the compute worker's wasm (the largest file of the web app) with binaryen's `wasm-opt -Oz`,
# from npm's `binaryen` package (version 132, pure JavaScript: no native download), installed once into
# target/tools/npm. Results are cached by the input's SHA-256 (target/wasm-opt-cache), so an unchanged
# rebuild costs a copy, not minutes. The page's own wasm is left as trunk wrote it (index.html pins it
# with an integrity hash). Usage: bash scripts/wasm-opt.sh [DIST]   (default target/dist)
set -euo pipefail
dist=${1:-target/dist}
f="$dist/worker_bg.wasm"
[ -f "$f" ] || { echo "wasm-opt.sh: no $f (run trunk build first)" >&2; exit 1; }
cache=target/wasm-opt-cache
mkdir -p "$cache"
in_sha=$(sha256sum "$f" | cut -d' ' -f1)
if grep -qx "$in_sha" "$cache/outputs" 2>/dev/null; then
  echo "wasm-opt: $f is already optimised"
  exit 0
fi
if [ -f "$cache/$in_sha.wasm" ]; then
  cp "$cache/$in_sha.wasm" "$f.opt" && mv "$f.opt" "$f"
  echo "wasm-opt: $f from the cache ($(stat -c %s "$f") bytes)"
  exit 0
fi
tools=target/tools/npm
opt="$tools/node_modules/.bin/wasm-opt"
if [ ! -x "$opt" ]; then
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-audit --no-fund --silent binaryen@132.0.0
fi
before=$(stat -c %s "$f")
t0=$(date +%s)
# The features rustc enables for wasm32 by default, plus SIMD (.cargo/config.toml: +simd128).
"$opt" -Oz --enable-simd --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
  --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue "$f" -o "$f.opt"
cp "$f.opt" "$cache/$in_sha.wasm"
sha256sum "$f.opt" | cut -d' ' -f1 >> "$cache/outputs"
mv "$f.opt" "$f"
echo "wasm-opt -Oz: $f $before -> $(stat -c %s "$f") bytes ($(( $(date +%s) - t0 )) s)"
