#!/usr/bin/env bash
# Sets up motcua on a fresh Debian/Ubuntu machine, then runs the demo or the test suite.
#   bash scripts/quickstart.sh demo [motcua demo options]
#   bash scripts/quickstart.sh test [pytest options]
set -euo pipefail
root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root_dir"

mode="${1:-}"
case "$mode" in
  demo|test) shift ;;
  *) echo "usage: bash scripts/quickstart.sh demo|test [options]" >&2; exit 2 ;;
esac

# 1. Debian packages (only the missing ones; apt needs root).
mapfile -t wanted < <(grep -Ev '^\s*(#|$)' scripts/apt-packages.txt)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo ">> installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "!! missing Debian packages: ${missing[*]}" >&2
    echo "!! run this script as root, or: sudo apt-get install ${missing[*]}" >&2
    if [ "$mode" = test ]; then exit 1; fi
  fi
fi

# 2. The virtual environment with the pinned dependencies (rebuilt when the pins change).
python_bin="${PYTHON:-python3}"
stamp_want="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.motcua-stamp 2>/dev/null)" != "$stamp_want" ]; then
  echo ">> preparing .venv with the pinned dependencies"
  "$python_bin" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.lock
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
  echo "$stamp_want" > .venv/.motcua-stamp
fi

# ESPHome (for validating the button-box configs) pins an old paho-mqtt: its own venv.
if [ "$mode" = test ]; then bash scripts/setup-esphome.sh; fi

# 3. Run.
if [ "$mode" = demo ]; then
  exec .venv/bin/motcua demo "$@"
else
  exec .venv/bin/python -m pytest "$@"
fi
