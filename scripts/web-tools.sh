#!/usr/bin/env bash
# Installs what building the web app needs into target/tools (once): the wasm32 target, trunk
# 0.21.14 (trunk 0.22 needs a newer rustc) and wasm-bindgen-cli of exactly the pinned
# wasm-bindgen crate version. Used by scripts/test.sh and by `foolmap demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
WASM_BINDGEN_VERSION=0.2.130
TRUNK_VERSION=0.21.14
TOOLS="$PWD/target/tools"
export PATH="$TOOLS/bin:$HOME/.cargo/bin:$PATH"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target list --installed | grep -q wasm32-unknown-unknown
if ! "$TOOLS/bin/trunk" --version 2>/dev/null | grep -q "$TRUNK_VERSION"; then
  echo "cargo install trunk $TRUNK_VERSION ($(date +%T))"
  cargo install trunk --version "$TRUNK_VERSION" --locked --root "$TOOLS" -q
fi
if ! "$TOOLS/bin/wasm-bindgen" --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  echo "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION ($(date +%T))"
  # Installs only without --locked (its lock file pins crates that no longer build).
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$TOOLS" -q
fi
