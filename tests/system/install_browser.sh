#!/usr/bin/env bash
# Install headless Chromium and its WebDriver from Debian's packages for the UI system test.
#
# Idempotent and fast when both binaries are already present (exits at once). Otherwise runs
# `apt-get update` then `apt-get install chromium chromium-driver` (needs root, or passwordless sudo).
# Nothing is downloaded outside the distribution's package repositories.
set -euo pipefail

CHROMIUM=${BRIA_CHROMIUM:-/usr/bin/chromium}
DRIVER=${BRIA_CHROMEDRIVER:-/usr/bin/chromedriver}

if [[ -x "$CHROMIUM" && -x "$DRIVER" ]]; then
    echo "chromium and chromedriver already installed: $CHROMIUM, $DRIVER"
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "install_browser.sh: need root (or passwordless sudo) to apt-get install chromium chromium-driver" >&2
    exit 2
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser.sh: apt-get not found; install Chromium and chromedriver with your package manager" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null

if [[ ! -x "$CHROMIUM" || ! -x "$DRIVER" ]]; then
    echo "install_browser.sh: installed, but $CHROMIUM or $DRIVER is still missing" >&2
    exit 1
fi
"$CHROMIUM" --version || true
"$DRIVER" --version || true
