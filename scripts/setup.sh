#!/bin/sh
# Installs every Debian package hark needs to build, test and run.
# Idempotent: safe to run again; apt-get update runs once per invocation.
set -eu

PKGS="
build-essential cmake pkg-config git ca-certificates
libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us pocketsphinx pocketsphinx-testdata
libspeexdsp-dev libwebrtc-audio-processing-dev
libwebsockets-dev libnats-dev libmsgpack-dev nats-server libopus-dev opus-tools
libcurl4-openssl-dev
sox espeak-ng curl chromium
clang libclang-rt-14-dev clang-format
"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

# Node.js runs the protocol test clients; a machine that already has it keeps its own.
if ! command -v npm >/dev/null 2>&1; then missing="$missing nodejs npm"; fi

if [ -n "$missing" ]; then
    echo "setup: installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
else
    echo "setup: all Debian packages present"
fi

# JavaScript test clients (npm registry), pinned by tests/e2e/package-lock.json.
cd "$(dirname "$0")/../tests/e2e"
if [ ! -d node_modules ] || [ package.json -nt node_modules ] || [ package-lock.json -nt node_modules ]; then
    echo "setup: installing test clients from npm"
    npm install --no-audit --no-fund --loglevel=error
    touch node_modules
fi
