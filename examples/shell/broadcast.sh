#!/usr/bin/env bash
# Switchboard's native HTTP API from the shell, with curl.
#
#   broadcast.sh broadcast CHANNEL MESSAGE     publish MESSAGE to everyone on CHANNEL
#   broadcast.sh claim USER [DURATION]         a single-use claim: the client connects with /connect?claim=ID
#   broadcast.sh send USER MESSAGE [binary]    to every connection of USER (MESSAGE "-" reads stdin)
#   broadcast.sh disconnect USER               close every connection of USER
#
# Environment: SWITCHBOARD_URL (default http://127.0.0.1:6001), SWITCHBOARD_API_TOKEN (the app's apiToken).
# Each command prints Switchboard's JSON answer and exits non-zero when the call failed.
set -euo pipefail

URL="${SWITCHBOARD_URL:-http://127.0.0.1:6001}"
TOKEN="${SWITCHBOARD_API_TOKEN:?set SWITCHBOARD_API_TOKEN to the app apiToken}"

usage() {
  sed -n '4,7p' "$0" | sed 's/^# *//' >&2
  exit 2
}

# Percent-encodes a query value byte by byte.
urlencode() {
  local LC_ALL=C s="$1" out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c="${s:i:1}"
    case "$c" in
      [a-zA-Z0-9.~_-]) out+="$c" ;;
      *) printf -v c '%%%02X' "'$c"; out+="$c" ;;
    esac
  done
  printf '%s' "$out"
}

api() {
  # curl prints the JSON answer; --fail-with-body keeps it and exits 22 on an HTTP error.
  curl --silent --show-error --fail-with-body -H "Authorization: Bearer $TOKEN" "$@"
  echo
}

case "${1:-}" in
  broadcast)
    [ $# -eq 3 ] || usage
    # cadsock's form fields: channel and message.
    api -X POST "$URL/broadcast" --data-urlencode "channel=$2" --data-urlencode "message=$3"
    ;;
  claim)
    [ $# -ge 2 ] || usage
    api -X POST "$URL/claim?user=$(urlencode "$2")&duration=$(urlencode "${3:-60}")"
    ;;
  send)
    [ $# -ge 3 ] || usage
    type="${4:-text}"
    if [ "$3" = "-" ]; then body=(--data-binary @-); else body=(--data-raw "$3"); fi
    api -X POST "$URL/send?user=$(urlencode "$2")&type=$(urlencode "$type")" -H 'Content-Type: application/octet-stream' "${body[@]}"
    ;;
  disconnect)
    [ $# -eq 2 ] || usage
    api -X POST "$URL/disconnect?user=$(urlencode "$2")"
    ;;
  *)
    usage
    ;;
esac
