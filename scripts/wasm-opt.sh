#!/usr/bin/env bash
# Shrinks the web app's wasm files in DIST (the compute workers', WebGPU and CPU-only, and the page's) with binaryen's
# `wasm-opt -Oz`, from npm's `binaryen` package (version 132, pure JavaScript: no native download),
# installed once into target/tools/npm. index.html pins the page's wasm with an integrity hash
# (sha384): it is rewritten for the new bytes. Results are cached by the input's SHA-256
# (target/wasm-opt-cache), so an unchanged rebuild costs a copy, not minutes.
# Usage: bash scripts/wasm-opt.sh [DIST]   (default target/dist)
set -euo pipefail
dist=${1:-target/dist}
cache=target/wasm-opt-cache
mkdir -p "$cache"
tools=target/tools/npm
opt="$tools/node_modules/.bin/wasm-opt"

sri() { echo "sha384-$(openssl dgst -sha384 -binary "$1" | base64 -w0)"; }

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

# What the folder holds: the app (the page and the CPU-only worker, and the WebGPU worker once it
# is copied in) or the WebGPU worker's own build (scripts/web-build.sh).
shopt -s nullglob
workers=()
for w in "$dist/worker_bg.wasm" "$dist/worker_cpu_bg.wasm"; do [ -f "$w" ] && workers+=("$w"); done
pages=("$dist"/app-*_bg.wasm)
[ ${#workers[@]} -gt 0 ] || { echo "wasm-opt.sh: no worker wasm in $dist (run scripts/web-build.sh first)" >&2; exit 1; }
[ ${#pages[@]} -le 1 ] || { echo "wasm-opt.sh: expected at most one page wasm in $dist, found ${#pages[@]}" >&2; exit 1; }
for worker in "${workers[@]}"; do
  shrink "$worker"
done
[ ${#pages[@]} -eq 1 ] || exit 0
page=${pages[0]}
name=$(basename "$page")
old=$(sri "$page")
shrink "$page"
new=$(sri "$page")
if [ "$old" != "$new" ]; then
  grep -q "href=\"./$name\"[^>]*integrity=\"$old\"" "$dist/index.html" \
    || { echo "wasm-opt.sh: $dist/index.html does not pin $name with $old" >&2; exit 1; }
  sed -i "s|integrity=\"$old\"|integrity=\"$new\"|" "$dist/index.html"
  echo "wasm-opt: $dist/index.html now pins $name with $new"
fi
