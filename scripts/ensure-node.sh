#!/usr/bin/env bash
# Azurite (the local Azure Storage emulator) is an npm package: make sure Node.js and npm exist.
set -euo pipefail
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  exit 0
fi
echo "Node.js/npm not found: installing Debian's nodejs and npm" >&2
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
