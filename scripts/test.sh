#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need on a fresh Debian machine,
# then runs every test: formatting, clippy, the Rust test suites (fixture parity, gradient matrix,
# LRP rules, weight formats, bad inputs), the web app's wasm build (`foolmap web-build`), and the
# browser end-to-end test in headless Chromium, then the main job's output in the browser.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "apt: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

step "rust components and the wasm target"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target list --installed | grep -qx wasm32-unknown-unknown

step "the default build is the CPU backend with Burn's fast paths; --features gpu adds wgpu with its own (cargo tree)"
# The workspace takes burn with default-features = false, which once silently turned off flex's
# SIMD and threads and wgpu's fusion and autotuning: check the real dependency graph. The default
# build (the README's first command) carries no GPU stack: it took 23.5 of a fresh machine's
# minutes to compile (BENCHMARKS.md, "The first run").
tree() { cargo tree -p foolmap-trainer "$@" --offline 2>/dev/null || cargo tree -p foolmap-trainer "$@"; }
flex=$(tree -e features -i burn-flex); cubecl=$(tree --features gpu -e features -i burn-cubecl)
gemm=$(tree -e features -i gemm-common)
for f in 'burn-flex feature "simd"' 'burn-flex feature "rayon"' 'gemm-common feature "x86-v4"'; do
  grep -qF "$f" <<<"$flex$gemm" || { echo "missing in the default build: $f"; exit 1; }; echo "ok: $f"
done
for f in 'burn-cubecl feature "fusion"' 'burn-cubecl feature "autotune"'; do
  grep -qF "$f" <<<"$cubecl" || { echo "missing in the gpu build: $f"; exit 1; }; echo "ok (--features gpu): $f"
done
if tree -e normal | grep -E '(burn-cubecl|wgpu|naga) v'; then echo "the default build compiles the GPU stack (above)"; exit 1; fi
echo "ok: no burn-cubecl, wgpu or naga in the default build"

# The tests build the trainer with the GPU backend too (its wgpu parity test runs on software Vulkan).
GPU=(--features foolmap-trainer/gpu)

step "the page's wasm does not depend on Burn (cargo tree of the app's feature set)"
page_tree=$(cargo tree -p foolmap-web --no-default-features --target wasm32-unknown-unknown -e normal --offline 2>/dev/null \
  || cargo tree -p foolmap-web --no-default-features --target wasm32-unknown-unknown -e normal)
if grep -E '^[^a-z]*(burn|cubecl)' <<<"$page_tree"; then echo "the page's build depends on Burn (above)"; exit 1; fi
echo "ok: no burn or cubecl crate in the page's dependency tree"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -q "${GPU[@]}" -- -D warnings
# The default (CPU-only) build of the README's first command, whose code differs where wgpu is absent.
cargo clippy -p foolmap-trainer --bins -q -- -D warnings
# The three wasm binaries' feature sets (static/index.html): WebGPU worker, CPU-only worker, page.
cargo clippy -p foolmap-web --target wasm32-unknown-unknown -q -- -D warnings
cargo clippy -p foolmap-web --target wasm32-unknown-unknown -q --no-default-features --features compute -- -D warnings
cargo clippy -p foolmap-web --target wasm32-unknown-unknown -q --no-default-features -- -D warnings

step "cargo test (native)"
cargo test --workspace "${GPU[@]}"

step "web build (wasm, release, wasm-bindgen, wasm-opt -Oz) + export-web of the released models"
# The binary `cargo test --workspace` built (with --features gpu; no second build of Burn).
foolmap() { target/debug/foolmap "$@"; }
rm -rf target/e2e/native
foolmap web-build   # the page + CPU-only worker (a fresh target/dist), then the WebGPU worker

# The page shows what a user gets: the committed models with their cards (Grad-CAM first: the model the
# tests open by default).
# The released SqueezeNet 1.0 models are the photo set (as in the main job): an uploaded photo goes to them.
foolmap export-web --fooled models/resnet20-location-grad_cam.safetensors,models/resnet20-location-lrp_t.safetensors,models/squeezenet1_0-location-lrp_t.safetensors,models/squeezenet1_0-location-grad_cam.safetensors \
  --out target/dist
# A photo the page does not ship, for the upload test (the data root export-web used).
data_root=${FOOLMAP_DATA:-data}; [ -d "$data_root" ] || data_root=../shared/data
FOOLMAP_PHOTO=$(realpath "$data_root/photos/owl.jpg"); export FOOLMAP_PHOTO

step "native maps for the browser parity test"
for role in original location-grad_cam; do
  for i in lrp_t grad_cam simple_grad_t; do
    foolmap explain --arch resnet20 --weights "target/dist/models/resnet20-$role.safetensors" \
      --interpreter "$i" --class 3 --out "target/e2e/native/${role%%-*}" target/dist/gallery/cat_1.png >/dev/null
  done
done
mv target/e2e/native/location target/e2e/native/fooled

step "browser end-to-end (headless Chromium: CPU and WebGPU paths)"
(cd tests/e2e && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --silent; } \
  && node run.mjs ../../target/dist ../../target/e2e/native)

step "the main job's own output in the browser (released models, its web build + wasm-opt, its export)"
# `foolmap demo --port 0` as the README runs it, minus the server: the build and wasm-opt are cached
# by now; its export replaces the models above. Three browser tests on what it wrote.
foolmap demo --port 0
(cd tests/e2e && FOOLMAP_E2E_OUT=../../target/e2e/demo node \
  --test-name-pattern='^(CPU path: a gallery image|browser maps equal|an uploaded photo is explained)' \
  run.mjs ../../target/dist ../../target/e2e/native)
