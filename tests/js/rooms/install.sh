#!/usr/bin/env bash
# usage: tests/js/rooms/install.sh [--force]
#   Installs the room kit's node_modules with `npm ci` from the committed
#   package-lock.json, bounded by `timeout` ($ROOM_KIT_INSTALL_TIMEOUT
#   seconds, default 900). Skips the install when node_modules was made
#   from the same package.json + package-lock.json (the sha256 of both in
#   node_modules/.kit-stamp) and the kit's modules load, unless --force.
#   Used by .ci/run and by the tests (tests/jsenv.rs, room_kit()).
set -euo pipefail
KIT="$(cd "$(dirname "$0")" && pwd)"
T="${ROOM_KIT_INSTALL_TIMEOUT:-900}"
FORCE=0; [ "${1:-}" = --force ] && FORCE=1
command -v node >/dev/null || { echo "room kit: node not found (need node >= 18; tested with 20)" >&2; exit 1; }
command -v npm  >/dev/null || { echo "room kit: npm not found" >&2; exit 1; }

MODULES=ssb-room/tunnel/server,ssb-room-client,ssb-conn,ssb-db2,ssb-friends,ssb-ebt,ssb-replication-scheduler,secret-stack,sodium-native
loads () { (cd "$KIT" && node -e "'$MODULES'.split(',').forEach(m => require.resolve(m))") 2>/dev/null; }
stamp="$KIT/node_modules/.kit-stamp"
want="$(cat "$KIT/package.json" "$KIT/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [ "$FORCE" = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && loads; then
  echo "room kit: $KIT up to date"; exit 0
fi
echo "room kit: npm ci in $KIT (timeout ${T}s)"
if ! (cd "$KIT" && timeout "$T" npm ci --no-audit --no-fund); then
  echo "room kit: npm ci failed in $KIT: is the npm registry reachable? (the lockfile pins every version)" >&2
  exit 1
fi
loads || { echo "room kit: one of $MODULES does not load in $KIT after npm ci" >&2; exit 1; }
echo "$want" > "$stamp"
echo "room kit: ok"
