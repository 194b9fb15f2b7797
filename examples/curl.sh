#!/bin/sh
# A curl walk-through of every call of the azaion-loader control API
# (PROTOCOL §6, GET /openapi.json describes them). Run it against a loader:
#
#   ADDR=127.0.0.1:8080 EMAIL=pilot@example.com PASSWORD=... FOLDER=models sh examples/curl.sh
#
# With a control_token, also set TOKEN. Each step prints what it does; the
# script stops at the first failure.
set -eu
ADDR=${ADDR:-127.0.0.1:8080}
FOLDER=${FOLDER:-models}
NAME=${NAME:-curl-example.bin}
: "${EMAIL:?set EMAIL}" "${PASSWORD:?set PASSWORD}"
AUTH=${TOKEN:+Authorization: Bearer $TOKEN}
c() { curl -sS --fail-with-body -H "${AUTH:-X-No-Token: 1}" "$@"; }
step() { printf '\n== %s\n' "$*"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

step "GET /health: is it up?"
c "http://$ADDR/health"

step "GET /status: logged in? where is the cache?"
c "http://$ADDR/status"

step "POST /login: log in to the Resource API (and fetch cdn.yaml)"
c -X POST "http://$ADDR/login" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}"

step "POST /upload/$NAME: encrypt and upload a file (the folder field first)"
head -c 3000000 /dev/urandom > "$tmp/$NAME"
c -X POST "http://$ADDR/upload/$NAME" -F "folder=$FOLDER" -F "file=@$tmp/$NAME"

step "POST /load/$NAME: stream the plaintext back"
c -X POST "http://$ADDR/load/$NAME" -H 'Content-Type: application/json' \
  -d "{\"folder\":\"$FOLDER\",\"filename\":\"$NAME\"}" -o "$tmp/loaded"
sent=$(sha256sum < "$tmp/$NAME" | cut -d' ' -f1)
got=$(sha256sum < "$tmp/loaded" | cut -d' ' -f1)
echo "sent $sent"; echo "got  $got"
[ "$sent" = "$got" ]

step "POST /load of a resource that does not exist: 404 and a detail"
code=$(curl -sS -H "${AUTH:-X-No-Token: 1}" -o "$tmp/err" -w '%{http_code}' -X POST "http://$ADDR/load/no-such.bin" \
  -H 'Content-Type: application/json' -d "{\"folder\":\"$FOLDER\"}")
echo "$code $(cat "$tmp/err")"
[ "$code" = 404 ]

step "POST /prefetch: fetch resources whole into the cache, in the background (202)"
c -X POST "http://$ADDR/prefetch" -H 'Content-Type: application/json' \
  -d "{\"folder\":\"$FOLDER\",\"names\":[\"$NAME\"]}"

step "GET /status: the prefetch's progress, until done (at most 60 s)"
i=0
until c "http://$ADDR/status" | python3 -c 'import json,sys
r = json.load(sys.stdin)["prefetch"]["resources"][-1]
print(r["folder"] + "/" + r["name"], r["state"], r["bytes"], "of", r["total"], r.get("error", ""))
sys.exit(r["state"] not in ("done", "error"))'; do
  i=$((i + 1)); [ "$i" -lt 120 ] || exit 1; sleep 0.5
done

step "GET /unlock/status: the Docker image unlock's state"
c "http://$ADDR/unlock/status"

step "POST /unlock: start it (404 when there is no archive and the images are not loaded)"
code=$(curl -sS -H "${AUTH:-X-No-Token: 1}" -o "$tmp/unlock" -w '%{http_code}' -X POST "http://$ADDR/unlock" \
  -H 'Content-Type: application/json' -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}")
echo "$code $(cat "$tmp/unlock")"

step "GET /metrics: Prometheus metrics (a few lines)"
c "http://$ADDR/metrics" | grep -E '^azaion_(load_served_bytes_total|logins_total|cache_read_bytes_total)'

step "GET /openapi.json: the API's description (its paths)"
c "http://$ADDR/openapi.json" | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["paths"])))'
