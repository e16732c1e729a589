#!/usr/bin/env bash
# Creates .venv-esphome with the pinned ESPHome (firmware_config/esphome-requirements.txt),
# used by tests/firmware to validate the device configs with `esphome config`.
# ESPHome lives in a venv of its own: it pins paho-mqtt 1.x, the server needs 2.x.
# Does nothing when the venv already matches the pins; rebuilds it when they change.
#   bash scripts/setup-esphome.sh
set -euo pipefail
root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root_dir"

venv=.venv-esphome
requirements=firmware_config/esphome-requirements.txt
python_bin="${PYTHON:-python3}"
stamp_want="$( { cat "$requirements"; "$python_bin" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"

if [ -x "$venv/bin/esphome" ] && [ "$(cat "$venv/.motcua-stamp" 2>/dev/null)" = "$stamp_want" ]; then
  exit 0
fi

echo ">> preparing $venv with the pinned ESPHome ($(grep -E '^esphome==' "$requirements"))"
rm -rf "$venv"
"$python_bin" -m venv "$venv"
echo '*' > "$venv/.gitignore"  # as Python 3.13's venv does: never committed
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# pip's output goes to a log shown only on failure: a good install prints one line.
if ! "$venv/bin/pip" install --disable-pip-version-check -r "$requirements" >"$log" 2>&1; then
  cat "$log" >&2
  echo "!! installing ESPHome into $venv failed (see above)" >&2
  exit 1
fi
"$venv/bin/esphome" version
# Written last: an interrupted install has no stamp and is redone on the next run.
echo "$stamp_want" > "$venv/.motcua-stamp"
