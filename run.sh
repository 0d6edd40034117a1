#!/usr/bin/env bash
# The two commands of the README:
#   ./run.sh demo   build music-commander and sync a built-in sample library
#   ./run.sh test   run the whole test suite (under CI, or with MIXXX_ROUNDTRIP=1, also
#                   scripts/mixxx-roundtrip.sh: import checked against the real Mixxx)
# Both need git-annex; it is installed here when missing and we can (root or sudo).
set -euo pipefail
cd "$(dirname "$0")"

ensure_git_annex() {
  if git annex version >/dev/null 2>&1; then return; fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
      echo "error: git-annex is not installed" >&2
      echo "hint: sudo apt-get update && sudo apt-get install -y git git-annex" >&2
      exit 3
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: git-annex is not installed and this is not a Debian-like system" >&2
    echo "hint: install git-annex with your package manager (https://git-annex.branchable.com/install/)" >&2
    exit 3
  fi
  echo "Installing git-annex (apt-get)…" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq git git-annex >/dev/null
}

# The completion tests run each shell's script in that shell; without zsh or fish they warn
# and skip it (and fail under CI). Installed like git-annex when we can, never required.
ensure_shells() {
  local missing=()
  for shell in zsh fish; do command -v "$shell" >/dev/null 2>&1 || missing+=("$shell"); done
  if [ "${#missing[@]}" -eq 0 ] || ! command -v apt-get >/dev/null 2>&1; then return; fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else return; fi
  fi
  echo "Installing ${missing[*]} for the completion tests (apt-get)…" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null || true
}

case "${1:-}" in
  demo)
    ensure_git_annex
    shift
    cargo run --release --locked --quiet -- demo "$@"
    ;;
  test)
    ensure_git_annex
    ensure_shells
    cargo test --locked --workspace
    # The real-Mixxx round trip installs Mixxx and Xvfb (~30 s) and runs ~75 s: always in CI,
    # on a developer machine when asked (it refuses while a Mixxx of your own is running).
    if [ "${CI:-}" = true ] || [ "${MIXXX_ROUNDTRIP:-}" = 1 ]; then
      cargo build --locked --quiet --bin music-commander
      MUSIC_COMMANDER="$PWD/target/debug/music-commander" scripts/mixxx-roundtrip.sh
    else
      echo "(skipped scripts/mixxx-roundtrip.sh, import against the real Mixxx: MIXXX_ROUNDTRIP=1 ./run.sh test runs it)" >&2
    fi
    ;;
  *)
    echo "usage: ./run.sh demo [DIR] | ./run.sh test" >&2
    exit 2
    ;;
esac
