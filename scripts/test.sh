#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need on a fresh Debian machine,
# then runs every test: formatting, clippy, the Rust test suites (fixture parity, gradient matrix,
# LRP rules, weight formats, bad inputs), the wasm build of the web app with trunk, and the
# browser end-to-end test in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
WASM_BINDGEN_VERSION=0.2.130
TRUNK_VERSION=0.21.14
TOOLS="$PWD/target/tools"
export PATH="$TOOLS/bin:$HOME/.cargo/bin:$PATH"

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

step "rust components"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target list --installed | grep -q wasm32-unknown-unknown
rustup component add rustfmt clippy >/dev/null 2>&1 || true

if ! "$TOOLS/bin/trunk" --version 2>/dev/null | grep -q "$TRUNK_VERSION"; then
  step "cargo install trunk $TRUNK_VERSION"
  cargo install trunk --version "$TRUNK_VERSION" --locked --root "$TOOLS" -q
fi
if ! "$TOOLS/bin/wasm-bindgen" --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  step "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$TOOLS" -q
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -q -- -D warnings
cargo clippy -p foolmap-web --target wasm32-unknown-unknown -q -- -D warnings

step "cargo test (native)"
cargo test --workspace

step "trunk build (wasm, release)"
trunk build --release --offline

step "browser end-to-end (headless Chromium)"
(cd tests/e2e && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --silent; } && node run.mjs ../../target/dist)
