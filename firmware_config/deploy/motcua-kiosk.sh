#!/bin/bash
# A Raspberry Pi kiosk or rating terminal: the motcua Kivy app full screen, started again
# whenever it exits or crashes (waiting 1 s, doubling up to 30 s while it keeps failing fast).
#
# Started by the desktop session (motcua-kiosk.desktop in /etc/xdg/autostart). The device's
# files from `motcua provision generate` (out/devices/{id}/) are copied to $MOTCUA_DEVICE_DIR:
#   kiosk.toml (ticket kiosk) or rating.toml (rating terminal), and mqtt.env (the broker password).
set -u

DEVICE_DIR="${MOTCUA_DEVICE_DIR:-/etc/motcua/device}"
MOTCUA="${MOTCUA_BIN:-/opt/motcua/.venv/bin/motcua}"
FIRST_DELAY="${MOTCUA_RESTART_DELAY:-1}"
MAX_DELAY=30
LOG="${MOTCUA_KIOSK_LOG:-${XDG_STATE_HOME:-$HOME/.local/state}/motcua/kiosk.log}"

mkdir -p "$(dirname "$LOG")"
log() { echo "$(date -Iseconds) $*" >>"$LOG"; }

if [ -f "$DEVICE_DIR/kiosk.toml" ]; then
    app=ticket settings="$DEVICE_DIR/kiosk.toml"
elif [ -f "$DEVICE_DIR/rating.toml" ]; then
    app=rating settings="$DEVICE_DIR/rating.toml"
else
    log "no kiosk.toml or rating.toml in $DEVICE_DIR: nothing to start"
    exit 1
fi
device=$(sed -n 's/^device = "\([a-z0-9-]*\)"$/\1/p' "$settings")
if [ -z "$device" ]; then
    log "$settings names no device"
    exit 1
fi

# The broker password, read (not sourced: nothing in the file is executed).
if [ -f "$DEVICE_DIR/mqtt.env" ]; then
    while IFS='=' read -r key value; do
        [ "$key" = MOTCUA_MQTT_PASSWORD ] && export MOTCUA_MQTT_PASSWORD="$value"
    done <"$DEVICE_DIR/mqtt.env"
fi

# No screen saver or blanking on X11 (on Wayland: raspi-config, Display Options, Screen Blanking).
if command -v xset >/dev/null 2>&1 && [ -n "${DISPLAY:-}" ]; then
    xset s off -dpms s noblank 2>/dev/null || true
fi

child=
trap '[ -n "$child" ] && kill "$child" 2>/dev/null; exit 0' TERM INT HUP

delay=$FIRST_DELAY
while true; do
    started=$(date +%s)
    log "starting motcua kiosk $app --device $device"
    "$MOTCUA" kiosk "$app" --device "$device" --config "$settings" &
    child=$!
    wait "$child"
    status=$?
    child=
    if [ $(( $(date +%s) - started )) -ge 60 ]; then
        delay=$FIRST_DELAY  # it ran for a while: start again soon
    fi
    log "motcua kiosk $app exited with status $status; starting again in ${delay} s"
    sleep "$delay"
    delay=$(( delay * 2 > MAX_DELAY ? MAX_DELAY : delay * 2 ))
done
