#!/usr/bin/env bash
# Runs a command (the browser tests) with Debian's Chromium, installing it with apt-get when it is missing.
# playwright-core drives it; no browser is ever downloaded by a test tool.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  echo "Chromium not found: installing Debian's chromium with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
[ -x /usr/bin/chromium ] || { echo "Chromium is still missing after apt-get install" >&2; exit 1; }
export CHROMIUM_PATH=/usr/bin/chromium
"$@"
