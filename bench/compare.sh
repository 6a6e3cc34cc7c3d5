#!/usr/bin/env bash
# bench/compare.sh: shoal and the JavaScript ssb-server side by side, on this
# machine and on the same data; prints ONE markdown table on stdout (progress
# goes to stderr).
#
#   bench/compare.sh
#
# Environment: SHOAL_REFPEER (the refpeer kit, default ../shared/refpeer),
# COMPARE_MSGS (messages of the dump, default 100000, from 100 authors),
# COMPARE_POSTS (posts published by each side, default 10000), COMPARE_WORK
# (scratch directory, default target/compare; wiped first).
#
# What it does, each step with release builds and the kit's ssb-server 16:
# 1. generates the benchmarks' dump (100 feeds, interleaved as a peer's log);
# 2. import: `shoal import` of the dump, against ssb-server storing the same
#    messages through its `add` RPC (the closest it has to an import; the
#    kit's add.js way, 20 in flight) until its indexes have caught up; with
#    each side's peak memory and its store's size on disk;
# 3. publish: shoal publishing posts through a running node's control socket
#    (100 connections, each sending its requests back to back; posts that
#    arrive together share one durable write transaction), against the kit's
#    bulk-publish.js
#    (100 in flight) on ssb-server;
# 4. replication of the whole dump in all four directions (shoal -> shoal,
#    ssb-server -> ssb-server, ssb-server -> shoal, shoal -> ssb-server): the
#    receiver follows the 100 authors and dials the sender (EBT), timed until
#    it holds every message; with the receiver's peak memory.
# Every ssb-server runs with TCP_NODELAY (the kit's NODELAY=1, and its client
# preload), its best case; shoal sets TCP_NODELAY itself.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KIT="$(cd "${SHOAL_REFPEER:-$ROOT/../shared/refpeer}" && pwd)"
N="${COMPARE_MSGS:-100000}"
POSTS="${COMPARE_POSTS:-10000}"
WORK="${COMPARE_WORK:-$ROOT/target/compare}"
AUTHORS=100
PER_FEED=$((N / AUTHORS))
TTL=1800

log() { echo "compare: $*" >&2; }
now() { date +%s.%N; }
# calc EXPR: floating-point arithmetic (awk).
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
# fmt X [DECIMALS]: X rounded, with thousands separators.
fmt() {
  awk -v x="$1" -v d="${2:-0}" 'BEGIN {
    s = sprintf("%.*f", d, x); i = index(s, ".")
    whole = i ? substr(s, 1, i - 1) : s; frac = i ? substr(s, i) : ""
    sign = ""; if (substr(whole, 1, 1) == "-") { sign = "-"; whole = substr(whole, 2) }
    out = ""
    while (length(whole) > 3) {
      out = "," substr(whole, length(whole) - 2) out; whole = substr(whole, 1, length(whole) - 3)
    }
    print sign whole out frac }'
}

cd "$ROOT"
log "building release binaries"
cargo build --release >&2
HELPER="$(cargo build --release --bench compare --message-format=json 2>/dev/null |
  node -e 'let out = ""
    for (const l of require("fs").readFileSync(0, "utf8").split("\n")) {
      if (!l) continue
      const m = JSON.parse(l)
      if (m.reason === "compiler-artifact" && m.target.name === "compare" && m.executable) out = m.executable
    }
    if (!out) process.exit(1)
    console.log(out)')"
SHOAL="$ROOT/target/release/shoal"
log "installing the refpeer kit at $KIT"
"$KIT/bin/install.sh" >&2

rm -rf "$WORK"
mkdir -p "$WORK"
export REFPEER_HOME="$WORK/refpeer"
mkdir -p "$REFPEER_HOME"
DUMP="$WORK/dump.jsonl"
IDS="$WORK/authors.txt"

# Whatever runs is stopped on the way out, by its own pid or peer name.
SHOAL_PIDS=()
JS_PEERS=()
cleanup() {
  local p
  for p in ${SHOAL_PIDS[@]+"${SHOAL_PIDS[@]}"}; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in ${SHOAL_PIDS[@]+"${SHOAL_PIDS[@]}"}; do
    wait "$p" 2>/dev/null || true
  done
  for p in ${JS_PEERS[@]+"${JS_PEERS[@]}"}; do
    "$KIT/bin/stop.sh" "$p" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => {
    console.log(s.address().port); s.close() })'
}
# The only child of a process (the program under `timeout`).
child_of() { ps -o pid= --ppid "$1" | tr -d ' ' | head -n 1; }
# Peak resident memory of a live process, in MB.
hwm_mb() { awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
# Bytes allocated on disk (files are sparse).
disk_bytes() { du -s -B1 "$@" | awk '{ s += $1 } END { print s }'; }

# --- shoal -----------------------------------------------------------------
shoal() { "$SHOAL" --home "$@"; }
shoal_count() {
  shoal "$1" --json status | grep -o '"messages":[0-9]*' | cut -d: -f2
}
# shoal_serve HOME: starts `shoal serve` on a free loopback port; sets
# SERVE_PID (the `timeout` wrapper) and NODE_PID (shoal itself).
shoal_serve() {
  local home="$1" port
  port="$(free_port)"
  SHOAL_LOG=warn timeout "$TTL" "$SHOAL" --home "$home" serve --listen "127.0.0.1:$port" \
    > "$home.serve.log" 2>&1 < /dev/null &
  SERVE_PID=$!
  SHOAL_PIDS+=("$SERVE_PID")
  for _ in $(seq 1 300); do
    if shoal "$home" address 2>/dev/null | grep -q "127.0.0.1:$port"; then
      NODE_PID="$(child_of "$SERVE_PID")"
      return 0
    fi
    sleep 0.1
  done
  log "shoal serve on $home did not start:"; tail -n 20 "$home.serve.log" >&2; exit 1
}
shoal_stop() { kill -TERM "$1"; wait "$1" 2>/dev/null || true; }
# shoal_follow_all HOME: a follow of every author, published locally.
shoal_follow_all() {
  local id
  while read -r id; do
    shoal "$1" publish "{\"type\":\"contact\",\"contact\":\"$id\",\"following\":true}" > /dev/null
  done < "$IDS"
}
# wait_shoal HOME TARGET: until the node holds TARGET messages (10 min at most).
wait_shoal() {
  local deadline=$(($(date +%s) + 600)) n
  while :; do
    n="$(shoal_count "$1")"
    [ "${n:-0}" -ge "$2" ] && return 0
    [ "$(date +%s)" -lt "$deadline" ] || { log "$1 holds $n of $2 after 600 s"; exit 1; }
    sleep 0.05
  done
}

# --- ssb-server --------------------------------------------------------------
cat > "$WORK/compare.js" <<'JS'
// The ssb-server steps of bench/compare.sh, over one RPC connection each
// (the kit's scripts/lib.js; env KIT). Prints one JSON line.
//   ingest <peer> <file> <inflight> <ids>   replicate.request every id, `add` every
//                                           message, then wait for the indexes
//   follow <peer> <ids>                     follow every id
//   replicate <peer> <addr> <ids> <seq>     dial addr; wait until every id is at seq
const fs = require('fs')
const { connect, seqOf } = require(process.env.KIT + '/scripts/lib')
const [cmd, peer, ...args] = process.argv.slice(2)
const ids = (f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean)
const fail = (e) => { console.error(e && e.stack || e); process.exit(1) }
function each (list, f, cb) { // sequentially
  let i = 0
  ;(function next (err) { if (err) return fail(err); if (i >= list.length) return cb(); f(list[i++], next) })()
}
connect(peer, (err, sbot) => {
  if (err) fail(err)
  const done = (out) => { console.log(JSON.stringify(out)); sbot.close(true, () => process.exit(0)) }
  if (cmd === 'ingest') {
    const [file, W, idFile] = args
    each(ids(idFile), (id, cb) => sbot.replicate.request(id, () => cb()), () => {
      const msgs = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)
        .map(l => JSON.parse(l)).map(o => (o.value && o.value.author ? o.value : o))
      const t0 = Date.now(); let started = 0, added = 0
      function next () {
        if (started >= msgs.length) return
        sbot.add(msgs[started++], (err) => {
          if (err) fail(err)
          if (++added === msgs.length) return indexed(Date.now() - t0)
          next()
        })
      }
      function indexed (addMs) {
        ;(function poll () {
          sbot.progress((err, p) => {
            if (err) fail(err)
            const i = p.indexes || {}
            if (i.target > 0 && i.current >= i.target) return done({ added, add_ms: addMs, ms: Date.now() - t0 })
            setTimeout(poll, 100)
          })
        })()
      }
      for (let k = 0; k < +W; k++) next()
    })
  } else if (cmd === 'follow') {
    each(ids(args[0]), (id, cb) => sbot.publish({ type: 'contact', contact: id, following: true }, cb),
      () => done({ followed: true }))
  } else if (cmd === 'replicate') {
    const [addr, idFile, seq] = args
    let left = ids(idFile)
    const t0 = Date.now()
    sbot.gossip.connect(addr, (err) => {
      if (err) fail(err)
      ;(function poll () {
        let pending = left.length; const still = []
        if (!pending) return done({ ms: Date.now() - t0 })
        for (const id of left) {
          sbot.latestSequence(id, (err, s) => {
            if (err || seqOf(s) < +seq) still.push(id)
            if (--pending === 0) {
              left = still
              if (!left.length) return done({ ms: Date.now() - t0 })
              if (Date.now() - t0 > 600000) fail('timed out with ' + left.length + ' feeds behind')
              setTimeout(poll, 100)
            }
          })
        }
      })()
    })
  } else fail('unknown command ' + cmd)
})
JS
js() { KIT="$KIT" node -r "$KIT/scripts/nodelay.js" "$WORK/compare.js" "$@"; }
json_field() { node -pe "JSON.parse(require('fs').readFileSync(0, 'utf8'))[process.argv[1]]" "$1"; }
# js_start NAME: a new ssb-server peer on a free port, with TCP_NODELAY.
js_start() {
  "$KIT/bin/mkpeer.sh" "$1" "$(free_port)" > /dev/null
  NODELAY=1 "$KIT/bin/start.sh" "$1" "$TTL" >&2
  JS_PEERS+=("$1")
}
js_pid() { child_of "$(cat "$REFPEER_HOME/$1/server.pid")"; }
js_stop() { "$KIT/bin/stop.sh" "$1" >&2; }

# --- the run -------------------------------------------------------------------
START_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
log "generating $N messages of $AUTHORS authors"
"$HELPER" gen "$DUMP" "$N" > "$IDS"
DUMP_BYTES="$(stat -c %s "$DUMP")"

log "import: shoal"
A="$WORK/shoal-a"
shoal "$A" init > /dev/null
/usr/bin/time -f "%e %M" -o "$WORK/import.time" "$SHOAL" --home "$A" import "$DUMP" > "$WORK/import.out"
grep -q "imported $N, rejected 0" "$WORK/import.out" || { log "shoal import: $(cat "$WORK/import.out")"; exit 1; }
read -r S_IMPORT_S S_IMPORT_KB < "$WORK/import.time"
S_STORE="$(disk_bytes "$A/store.redb")"

log "import: ssb-server (add RPC)"
js_start ingest
J_INGEST_PID="$(js_pid ingest)"
INGEST_OUT="$(js ingest ingest "$DUMP" 20 "$IDS")"
J_IMPORT_S="$(calc "$(echo "$INGEST_OUT" | json_field ms) / 1000")"
J_ADD_S="$(calc "$(echo "$INGEST_OUT" | json_field add_ms) / 1000")"
J_IMPORT_MB="$(hwm_mb "$J_INGEST_PID")"
J_STORE="$(disk_bytes "$REFPEER_HOME/ingest/flume")"
INGEST_ADDR="$("$KIT/bin/info.sh" ingest address)"

log "publish: shoal"
P="$WORK/shoal-p"
shoal "$P" init > /dev/null
shoal_serve "$P"
S_PUB="$("$HELPER" publish "$P" "$POSTS" 100 | json_field msgs_per_s)"
S_PUB_MB="$(hwm_mb "$NODE_PID")"
shoal_stop "$SERVE_PID"

log "publish: ssb-server"
js_start pub
J_PUB="$(node -r "$KIT/scripts/nodelay.js" "$KIT/scripts/bulk-publish.js" pub "$POSTS" 100 | json_field msgs_per_s)"
J_PUB_MB="$(hwm_mb "$(js_pid pub)")"
js_stop pub

log "replication: shoal -> shoal"
shoal_serve "$A"
A_PID="$SERVE_PID"
A_ADDR="$(shoal "$A" address)"
B="$WORK/shoal-b"
shoal "$B" init > /dev/null
shoal_follow_all "$B"
shoal_serve "$B"
T0="$(now)"
shoal "$B" connect "$A_ADDR" > /dev/null
wait_shoal "$B" $((N + AUTHORS))
SS_S="$(calc "$(now) - $T0")"
SS_MB="$(hwm_mb "$NODE_PID")"
shoal_stop "$SERVE_PID"

log "replication: shoal -> ssb-server"
js_start recv1
js follow recv1 "$IDS" > /dev/null
SJ_S="$(calc "$(js replicate recv1 "$A_ADDR" "$IDS" "$PER_FEED" | json_field ms) / 1000")"
SJ_MB="$(hwm_mb "$(js_pid recv1)")"
js_stop recv1
shoal_stop "$A_PID"

log "replication: ssb-server -> ssb-server"
js_start recv2
js follow recv2 "$IDS" > /dev/null
JJ_S="$(calc "$(js replicate recv2 "$INGEST_ADDR" "$IDS" "$PER_FEED" | json_field ms) / 1000")"
JJ_MB="$(hwm_mb "$(js_pid recv2)")"
js_stop recv2

log "replication: ssb-server -> shoal"
C="$WORK/shoal-c"
shoal "$C" init > /dev/null
shoal_follow_all "$C"
shoal_serve "$C"
T0="$(now)"
shoal "$C" connect "$INGEST_ADDR" > /dev/null
wait_shoal "$C" $((N + AUTHORS))
JS_S="$(calc "$(now) - $T0")"
JS_MB="$(hwm_mb "$NODE_PID")"
shoal_stop "$SERVE_PID"
js_stop ingest

# --- the table -----------------------------------------------------------------
rate() { fmt "$(calc "$1 / $2")"; }
ratio() { fmt "$(calc "$1 / $2")" 1; }
mb() { fmt "$(calc "$1 / 1e6")" 1; }
CPU="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
MEM_GB="$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
S_IMPORT_RATE="$(calc "$N / $S_IMPORT_S")"
J_IMPORT_RATE="$(calc "$N / $J_IMPORT_S")"
NF="$(fmt "$N")"
PF="$(fmt "$POSTS")"

echo "shoal $(git -C "$ROOT" rev-parse --short HEAD) against ssb-server 16.0.1 (refpeer kit), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($CPU), ${MEM_GB} GiB; load average at start $START_LOAD. Release builds; data: $NF messages of $AUTHORS feeds ($(mb "$DUMP_BYTES") MB as JSON lines)."
echo
echo "| measure | shoal | ssb-server | shoal / ssb-server | how |"
echo "|---|---|---|---|---|"
echo "| import $NF messages | $(fmt "$S_IMPORT_S" 2) s, **$(fmt "$S_IMPORT_RATE") msg/s** | $(fmt "$J_IMPORT_S" 2) s, **$(fmt "$J_IMPORT_RATE") msg/s** | **$(ratio "$S_IMPORT_RATE" "$J_IMPORT_RATE")x** | shoal: \`shoal import FILE\` (verify, store, index). ssb-server has no import: \`add\` RPC of each message (the kit's add.js way, 20 in flight; all added after $(fmt "$J_ADD_S" 1) s), until its indexes caught up |"
echo "| peak memory, import | $(fmt "$(calc "$S_IMPORT_KB / 1024")") MB | $(fmt "$J_IMPORT_MB") MB | | max RSS of \`shoal import\`; VmHWM of the ssb-server process |"
echo "| store on disk, same messages | $(mb "$S_STORE") MB ($(ratio "$S_STORE" "$DUMP_BYTES")x the dump) | $(mb "$J_STORE") MB ($(ratio "$J_STORE" "$DUMP_BYTES")x) | $(ratio "$S_STORE" "$J_STORE")x | blocks allocated: \`store.redb\`; ssb-server's \`flume/\` (log and indexes) |"
echo "| publish $PF posts | **$(fmt "$S_PUB") msg/s** | **$(fmt "$J_PUB") msg/s** | **$(ratio "$S_PUB" "$J_PUB")x** | 100 in flight. shoal: through the running node's control socket (100 connections, requests back to back), each post acknowledged once durable (posts that arrive together share one transaction and one fsync); ssb-server: the kit's bulk-publish.js over RPC, appended without fsync |"
echo "| peak memory, publishing node | $(fmt "$S_PUB_MB") MB | $(fmt "$J_PUB_MB") MB | | VmHWM of the node |"
echo "| replication shoal -> shoal / ssb-server -> ssb-server | $(fmt "$SS_S" 2) s, **$(rate "$N" "$SS_S") msg/s** | $(fmt "$JJ_S" 2) s, **$(rate "$N" "$JJ_S") msg/s** | **$(ratio "$JJ_S" "$SS_S")x** | $NF messages of $AUTHORS feeds over loopback: the receiver follows the authors, dials the sender (EBT), timed until it holds them all |"
echo "| replication ssb-server -> shoal / shoal -> ssb-server | ssb-server -> shoal: $(fmt "$JS_S" 2) s, **$(rate "$N" "$JS_S") msg/s** | shoal -> ssb-server: $(fmt "$SJ_S" 2) s, **$(rate "$N" "$SJ_S") msg/s** | | the same, between the two implementations; the sender is the node holding the dump above |"
echo "| peak memory, receiving node | $(fmt "$SS_MB") MB (from shoal), $(fmt "$JS_MB") MB (from ssb-server) | $(fmt "$JJ_MB") MB (from ssb-server), $(fmt "$SJ_MB") MB (from shoal) | | VmHWM of the receiver |"
