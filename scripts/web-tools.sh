#!/usr/bin/env bash
# Installs what building the web app needs into target/tools (once): the wasm32 target, trunk
# 0.21.14 (trunk 0.22 needs a newer rustc) and wasm-bindgen-cli of exactly the pinned
# wasm-bindgen crate version. Used by scripts/test.sh and by `foolmap demo`.
#
# Each tool comes from its project's GitHub release where one is published for this platform: a
# prebuilt binary (a few MB, seconds), checked against the SHA-256 that the release publishes
# beside the archive and against the version it reports. Where there is none, or the download or a
# check fails, the tool is compiled from crates.io with `cargo install` (trunk 10.6 min,
# wasm-bindgen-cli 3.8 min on 2 cores, BENCHMARKS.md). `target/tools/installed.txt` says where each came from.
#
#   FOOLMAP_WEB_TOOLS       auto (default: release, else compile) | release (only) | source (only compile)
#   FOOLMAP_WEB_TOOLS_BASE  scheme and host of the release URLs (default https://github.com; plain
#                           http only to 127.0.0.1 or localhost, for tests)
#   FOOLMAP_WEB_TOOLS_DIR   where to install (default target/tools; the tools land in its bin/)
set -euo pipefail
cd "$(dirname "$0")/.."
WASM_BINDGEN_VERSION=0.2.130
TRUNK_VERSION=0.21.14
TOOLS=${FOOLMAP_WEB_TOOLS_DIR:-$PWD/target/tools}
MODE=${FOOLMAP_WEB_TOOLS:-auto}
BASE=${FOOLMAP_WEB_TOOLS_BASE:-https://github.com}
BASE=${BASE%/}
export PATH="$TOOLS/bin:$HOME/.cargo/bin:$PATH"

die() { echo "web-tools: $*" >&2; exit 1; }
case "$MODE" in auto | release | source) ;; *) die "FOOLMAP_WEB_TOOLS=$MODE: expected auto, release or source" ;; esac
case "$BASE" in
  https://*) PROTO='=https' ;;
  http://127.0.0.1 | http://127.0.0.1:* | http://localhost | http://localhost:*) PROTO='=http' ;;
  *) die "FOOLMAP_WEB_TOOLS_BASE=$BASE: HTTPS only (plain HTTP only to 127.0.0.1 or localhost)" ;;
esac

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target list --installed | grep -q wasm32-unknown-unknown
mkdir -p "$TOOLS/bin"

# The release builds' target triples for this machine (empty: none published).
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) TRUNK_TARGET=x86_64-unknown-linux-musl; WB_TARGET=x86_64-unknown-linux-musl ;;
  Linux-aarch64 | Linux-arm64) TRUNK_TARGET=aarch64-unknown-linux-musl; WB_TARGET=aarch64-unknown-linux-musl ;;
  Darwin-x86_64) TRUNK_TARGET=x86_64-apple-darwin; WB_TARGET=x86_64-apple-darwin ;;
  Darwin-arm64) TRUNK_TARGET=aarch64-apple-darwin; WB_TARGET=aarch64-apple-darwin ;;
  *) TRUNK_TARGET=; WB_TARGET= ;;
esac

sha256() { if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1; }
download() { curl -fsSL --proto "$PROTO" --proto-redir "$PROTO" --connect-timeout 10 --max-time 300 -o "$2" "$1"; }

# The version a tool prints as the second word of its `--version` (empty: it does not run).
version_of() { "$1" --version 2>/dev/null | awk 'NR == 1 { print $2 }' || true; }

# from_release DIR NAME VERSION ARCHIVE_URL CHECKSUM_URL MEMBER: downloads the archive and the file
# of its published SHA-256 into DIR, checks both, unpacks it and moves MEMBER (the binary's path
# inside the archive) to $TOOLS/bin/NAME once it reports VERSION. Says why when it fails.
from_release() {
  local tmp=$1 name=$2 version=$3 url=$4 sum_url=$5 member=$6 want got reported
  download "$url" "$tmp/archive.tar.gz" || { echo "cannot download $url" >&2; return 1; }
  download "$sum_url" "$tmp/archive.sha256" || { echo "cannot download $sum_url" >&2; return 1; }
  want=$(head -c 4096 "$tmp/archive.sha256" | awk 'NR == 1 { print tolower($1) }')
  [[ $want =~ ^[0-9a-f]{64}$ ]] || { echo "$sum_url: no SHA-256 in it" >&2; return 1; }
  got=$(sha256 "$tmp/archive.tar.gz")
  [ "$got" = "$want" ] || { echo "$url: its SHA-256 is $got, but $sum_url says $want" >&2; return 1; }
  mkdir "$tmp/x"
  tar -xzf "$tmp/archive.tar.gz" -C "$tmp/x" 2>/dev/null || { echo "$url: not a gzipped tar archive" >&2; return 1; }
  [ -f "$tmp/x/$member" ] || { echo "$url: no $member in the archive" >&2; return 1; }
  chmod 755 "$tmp/x/$member"
  reported=$(version_of "$tmp/x/$member")
  [ "$reported" = "$version" ] || { echo "$url: its $member reports version '$reported', not $version" >&2; return 1; }
  mv -f "$tmp/x/$member" "$TOOLS/bin/$name"
  echo "$name $version release $url sha256:$got" >>"$TOOLS/installed.txt"
}

# install NAME VERSION CRATE TARGET URL CHECKSUM_URL MEMBER [cargo install flags...]
install() {
  local name=$1 version=$2 crate=$3 target=$4 url=$5 sum_url=$6 member=$7
  shift 7
  [ "$(version_of "$TOOLS/bin/$name")" = "$version" ] && return 0
  if [ "$MODE" != source ]; then
    if [ -z "$target" ]; then
      [ "$MODE" = release ] && die "no release build of $name for $(uname -s) $(uname -m)"
      echo "$name $version: no release build for $(uname -s) $(uname -m); compiling it"
    else
      echo "$name $version: downloading the release build ($(date +%T))"
      local tmp ok=0
      tmp=$(mktemp -d "$TOOLS/.download.XXXXXX")
      from_release "$tmp" "$name" "$version" "$url" "$sum_url" "$member" || ok=$?
      rm -rf "$tmp"
      [ "$ok" -eq 0 ] && return 0
      [ "$MODE" = release ] && die "installing $name $version from its release failed (above)"
      echo "$name $version: the release build failed (above); compiling it instead"
    fi
  fi
  echo "cargo install $crate $version ($(date +%T))"
  cargo install "$crate" --version "$version" --root "$TOOLS" -q "$@"
  echo "$name $version cargo-install crates.io" >>"$TOOLS/installed.txt"
}

TRUNK_ASSET=trunk-$TRUNK_TARGET.tar.gz
TRUNK_URL=$BASE/trunk-rs/trunk/releases/download/v$TRUNK_VERSION/$TRUNK_ASSET
install trunk "$TRUNK_VERSION" trunk "$TRUNK_TARGET" "$TRUNK_URL" "$TRUNK_URL.sha256" trunk --locked

WB_NAME=wasm-bindgen-$WASM_BINDGEN_VERSION-$WB_TARGET
WB_URL=$BASE/wasm-bindgen/wasm-bindgen/releases/download/$WASM_BINDGEN_VERSION/$WB_NAME.tar.gz
# cargo install without --locked: the crate's lock file pins crates that no longer build.
install wasm-bindgen "$WASM_BINDGEN_VERSION" wasm-bindgen-cli "$WB_TARGET" "$WB_URL" "$WB_URL.sha256sum" "$WB_NAME/wasm-bindgen"
