#!/bin/bash
# A lobby board or counter display: Chromium in kiosk mode on the board's page, started again
# whenever it exits or crashes (waiting 1 s, doubling up to 30 s while it keeps failing fast).
#
# Started by the desktop session (motcua-board.desktop in /etc/xdg/autostart). The page is
# MOTCUA_BOARD_URL from $MOTCUA_DEVICE_DIR/board.env (written by `motcua provision generate`),
# or the first argument.
set -u

DEVICE_DIR="${MOTCUA_DEVICE_DIR:-/etc/motcua/device}"
FIRST_DELAY="${MOTCUA_RESTART_DELAY:-1}"
MAX_DELAY=30
STATE="${XDG_STATE_HOME:-$HOME/.local/state}/motcua"
PROFILE="$STATE/chromium"
LOG="${MOTCUA_BOARD_LOG:-$STATE/board.log}"

mkdir -p "$STATE" "$PROFILE"
log() { echo "$(date -Iseconds) $*" >>"$LOG"; }

url="${1:-}"
if [ -z "$url" ] && [ -f "$DEVICE_DIR/board.env" ]; then
    while IFS='=' read -r key value; do
        [ "$key" = MOTCUA_BOARD_URL ] && url="$value"
    done <"$DEVICE_DIR/board.env"
fi
if [ -z "$url" ]; then
    log "no board URL: give it as an argument or in $DEVICE_DIR/board.env"
    exit 1
fi

browser=
for candidate in chromium-browser chromium google-chrome; do
    if command -v "$candidate" >/dev/null 2>&1; then browser=$candidate; break; fi
done
if [ -z "$browser" ]; then
    log "Chromium is not installed (apt install chromium-browser)"
    exit 1
fi

if command -v xset >/dev/null 2>&1 && [ -n "${DISPLAY:-}" ]; then
    xset s off -dpms s noblank 2>/dev/null || true
fi

child=
trap '[ -n "$child" ] && kill "$child" 2>/dev/null; exit 0' TERM INT HUP

delay=$FIRST_DELAY
while true; do
    # After a power cut the server may still be starting: Chromium would keep its error page.
    if command -v curl >/dev/null 2>&1; then
        until curl -fsS -o /dev/null --max-time 5 "$url"; do sleep 2; done
    fi
    # A crash leaves "restore pages?" behind; the board must simply show its page again.
    if [ -f "$PROFILE/Default/Preferences" ]; then
        sed -i -e 's/"exited_cleanly":false/"exited_cleanly":true/' \
               -e 's/"exit_type":"[A-Za-z]*"/"exit_type":"Normal"/' "$PROFILE/Default/Preferences"
    fi
    started=$(date +%s)
    log "starting $browser --kiosk $url"
    # Sound without a click: the board plays the chime and the Vietnamese call.
    "$browser" --kiosk --noerrdialogs --disable-infobars --no-first-run \
        --disable-session-crashed-bubble --disable-features=Translate \
        --autoplay-policy=no-user-gesture-required --check-for-update-interval=31536000 \
        --user-data-dir="$PROFILE" "$url" &
    child=$!
    wait "$child"
    status=$?
    child=
    if [ $(( $(date +%s) - started )) -ge 60 ]; then
        delay=$FIRST_DELAY
    fi
    log "$browser exited with status $status; starting again in ${delay} s"
    sleep "$delay"
    delay=$(( delay * 2 > MAX_DELAY ? MAX_DELAY : delay * 2 ))
done
