#!/usr/bin/env bash
# Shrinks wasm files in place with binaryen's `wasm-opt -Oz`, from npm's `binaryen` package (version
# 132, pure JavaScript: no native download), installed once into target/tools/npm. Results are
# cached by the input's SHA-256 (target/wasm-opt-cache), so an unchanged rebuild costs a copy, not
# minutes. `foolmap web-build` runs it on each wasm file it builds, before naming the page's files
# by their content.
# Usage: bash scripts/wasm-opt.sh FILE.wasm...
set -euo pipefail
cache=target/wasm-opt-cache
mkdir -p "$cache"
tools=target/tools/npm
opt="$tools/node_modules/.bin/wasm-opt"

# Optimises one file in place (or takes it from the cache).
shrink() {
  local f=$1
  local in_sha
  in_sha=$(sha256sum "$f" | cut -d' ' -f1)
  if grep -qx "$in_sha" "$cache/outputs" 2>/dev/null; then
    echo "wasm-opt: $f is already optimised"
    return
  fi
  if [ -f "$cache/$in_sha.wasm" ]; then
    cp "$cache/$in_sha.wasm" "$f.opt" && mv "$f.opt" "$f"
    echo "wasm-opt: $f from the cache ($(stat -c %s "$f") bytes)"
    return
  fi
  if [ ! -x "$opt" ]; then
    mkdir -p "$tools"
    npm install --prefix "$tools" --no-audit --no-fund --silent binaryen@132.0.0
  fi
  local before t0
  before=$(stat -c %s "$f")
  t0=$(date +%s)
  # The features rustc enables for wasm32 by default, plus SIMD (.cargo/config.toml: +simd128).
  "$opt" -Oz --enable-simd --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue "$f" -o "$f.opt"
  cp "$f.opt" "$cache/$in_sha.wasm"
  sha256sum "$f.opt" | cut -d' ' -f1 >> "$cache/outputs"
  mv "$f.opt" "$f"
  echo "wasm-opt -Oz: $f $before -> $(stat -c %s "$f") bytes ($(( $(date +%s) - t0 )) s)"
}

[ $# -gt 0 ] || { echo "usage: bash scripts/wasm-opt.sh FILE.wasm..." >&2; exit 2; }
for f in "$@"; do
  [ -f "$f" ] || { echo "wasm-opt.sh: no file $f" >&2; exit 1; }
  shrink "$f"
done
