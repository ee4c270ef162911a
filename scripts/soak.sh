#!/usr/bin/env bash
# Reliability soak: SECONDS of mixed load on eco serve, split between the engines, in
# rounds of ~4 s: eco bench in rr, crr (a new connection per request: churn) and stream
# modes at mixed sizes and connection counts, eco send of random files, some rounds
# through tests/tools/fault_proxy (delay + jitter, 1-byte segments, stalls, resets).
# Every echoed byte is verified. Each round samples the server's RSS, fd count and
# thread count; at the end they must be flat (fds and threads back to their baseline,
# RSS within 16 MiB + 50% of the first round's), and any mismatch fails.
#
# Usage: scripts/soak.sh ECO_BINARY [SECONDS=600] [FAULT_PROXY_BINARY] [ENGINES="epoll uring sockmap"]
# `make soak` runs 10 minutes; ctest runs a 60 s version (label soak).
set -euo pipefail
ECO=$1 TOTAL=${2:-600}
PROXY=${3:-$(dirname "$ECO")/tests/tools/fault_proxy}
ENGINES=${4:-"epoll uring sockmap"}
TMP=$(mktemp -d /tmp/eco-soak-XXXXXX)
SPID="" PXPID="" RDPID=""
cleanup() {
  local rc=$?
  [ -n "$PXPID" ] && kill -9 "$PXPID" 2>/dev/null || true
  [ -n "$SPID" ] && kill -9 "$SPID" 2>/dev/null || true
  [ -n "$RDPID" ] && kill -9 "$RDPID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "soak: FAIL: $*" >&2; [ -f "$TMP/server.log" ] && tail -20 "$TMP/server.log" >&2; exit 1; }
[ -x "$PROXY" ] || fail "fault proxy '$PROXY' not built (cmake --build ... --target fault_proxy)"

sizes=(1 64 1024 16384 65536 200000)
head -c 1000 /dev/urandom >"$TMP/f1k"; head -c 100000 /dev/urandom >"$TMP/f100k"
head -c $((3 << 20)) /dev/urandom >"$TMP/f3m"

# Binds the abstract datagram socket @eco-soak-PID-ENGINE, says so in $TMP/listening,
# then waits (15 s at most) for the server's READY=1; exit 1 if it does not come. Run
# it with &: exec makes $! the listener itself, so killing it leaves nothing behind.
wait_ready() {
  exec python3 - "eco-soak-$$-$1" "$TMP/listening" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + sys.argv[1])
open(sys.argv[2], "w").write("yes\n")
s.settimeout(15)
try:
    while b"READY=1" not in s.recv(4096):
        pass
except socket.timeout:
    sys.exit(1)
PY
}

n_engines=$(wc -w <<<"$ENGINES")
per_engine=$(( TOTAL / n_engines ))
grand_bytes=0 grand_rounds=0
for engine in $ENGINES; do
  rm -f "$TMP/port"
  idle=(--idle-timeout 30s)
  [ "$engine" = sockmap ] && idle=()  # sockmap refuses per-byte limits (the kernel echoes)
  # The fd baseline is taken once the server says READY=1 (sd_notify): every loop has
  # made its fds then (sockmap: its BPF maps), so a slow start cannot look like a leak.
  rm -f "$TMP/listening"
  wait_ready "$engine" &
  RDPID=$!
  for _ in $(seq 300); do [ -s "$TMP/listening" ] && break; sleep 0.02; done
  [ -s "$TMP/listening" ] || fail "the READY=1 listener did not start"
  NOTIFY_SOCKET="@eco-soak-$$-$engine" "$ECO" serve --engine "$engine" --listen 127.0.0.1:0 --threads 2 --quiet \
    --drain-timeout 2s "${idle[@]}" --port-file "$TMP/port" 2>"$TMP/server.log" &
  SPID=$!
  while kill -0 $RDPID 2>/dev/null && kill -0 $SPID 2>/dev/null; do sleep 0.02; done
  kill -0 $SPID 2>/dev/null || fail "$engine server exited at start: $(cat "$TMP/server.log")"
  rc=0; wait $RDPID || rc=$?; RDPID=""
  [ $rc -eq 0 ] || fail "$engine server sent no READY=1 within 15 s: $(cat "$TMP/server.log")"
  [ -s "$TMP/port" ] || fail "$engine server did not start: $(cat "$TMP/server.log")"
  PORT=$(cat "$TMP/port") TARGET=127.0.0.1:$(cat "$TMP/port")
  fds() { ls /proc/$SPID/fd | wc -l; }
  threads() { awk '/^Threads:/{print $2}' /proc/$SPID/status; }
  rss() { awk '/^VmRSS:/{print $2}' /proc/$SPID/status; }
  base_fds=$(fds) base_threads=$(threads)
  first_rss="" round=0 bytes=0
  end=$((SECONDS + per_engine))
  echo "soak: $engine for $per_engine s (server pid $SPID, $base_fds fds, $base_threads threads)"
  while [ $SECONDS -lt $end ]; do
    round=$((round + 1))
    size=${sizes[$((RANDOM % ${#sizes[@]}))]}
    conns=$((1 + RANDOM % 40))
    modes=(rr crr stream); mode=${modes[$((RANDOM % 3))]}
    fault=$((RANDOM % 5))  # 0-1: direct; 2: delay+jitter; 3: 1-byte segments/stalls; 4: resets
    target=$TARGET policy=strict pargs=()
    case $fault in
      2) pargs=(--delay-ms 1 --jitter-ms 10) ;;
      # Slow paths: request/echo only (a deep stream would still be in flight at the end
      # of the run and count as timeouts), small messages, few connections.
      3) pargs=(--chunk $((1 + RANDOM % 3)) --stall-every 100000 --stall-ms 300); mode=rr
         size=$((size > 1024 ? 1024 : size)); conns=$((conns > 4 ? 4 : conns)) ;;
      4) pargs=(--reset-after $((50000 + RANDOM * 10))); policy=resets ;;
    esac
    [ $mode = crr ] && [ $size -gt 16384 ] && size=16384
    if [ ${#pargs[@]} -gt 0 ]; then
      rm -f "$TMP/pport"
      "$PROXY" --listen 127.0.0.1:0 --upstream "$TARGET" --port-file "$TMP/pport" --max-seconds 90 "${pargs[@]}" \
        2>"$TMP/proxy.log" &
      PXPID=$!
      for _ in $(seq 100); do [ -s "$TMP/pport" ] && break; sleep 0.05; done
      target=127.0.0.1:$(cat "$TMP/pport")
      [ $conns -gt 20 ] && conns=20
    fi
    # Mixed traffic: a bench round and, beside it, eco send of a random file.
    files=("$TMP/f1k" "$TMP/f100k" "$TMP/f3m"); file=${files[$((RANDOM % 3))]}
    # 3 MiB through 1-3-byte segments would outlast the round (and the proxy's bound).
    [ $fault = 3 ] && file=${files[$((RANDOM % 2))]}
    "$ECO" send --timeout 10s --file "$file" "$target" >/dev/null 2>"$TMP/send.err" &
    sendpid=$!
    rc=0
    timeout 60 "$ECO" bench "$target" --mode $mode --conns $conns --size $size --depth $((1 + RANDOM % 4)) \
      --duration 3s --warmup 0s --timeout 5s --json --quiet >"$TMP/b.json" 2>"$TMP/b.err" || rc=$?
    src=0; wait $sendpid || src=$?
    [ $rc -ne 124 ] || fail "round $round: eco bench hung"
    out=$(python3 - "$TMP/b.json" "$policy" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); e = r["errors"]
if e["mismatch"]: print("MISMATCH", e); sys.exit(1)
other = sum(e.values()) - (e["reset"] + e["short_read"] if sys.argv[2] == "resets" else 0)
if other: print("ERRORS", e); sys.exit(1)
print(r["bytes"])
PY
) || fail "round $round ($engine $mode x$conns size $size fault $fault): $out $(tail -2 "$TMP/b.err")"
    bytes=$((bytes + out))
    if [ $policy = resets ]; then
      [ $src -ne 1 ] || grep -q "closed the connection\|reset" "$TMP/send.err" || fail "round $round: eco send: $(cat "$TMP/send.err")"
    else
      [ $src -eq 0 ] || fail "round $round: eco send exit $src: $(cat "$TMP/send.err")"
    fi
    if [ -n "$PXPID" ]; then kill "$PXPID" 2>/dev/null || true; wait "$PXPID" 2>/dev/null || true; PXPID=""; fi
    kill -0 $SPID 2>/dev/null || fail "server died in round $round"
    r=$(rss); [ -z "$first_rss" ] && first_rss=$r
    echo "soak: $engine round $round: $mode x$conns size $size fault $fault: $out bytes verified; rss ${r} KiB, fds $(fds), threads $(threads)"
  done
  # Flat at the end: fds and threads back to the baseline once the last clients are gone.
  for _ in $(seq 100); do [ "$(fds)" -eq "$base_fds" ] && break; sleep 0.1; done
  end_fds=$(fds) end_threads=$(threads) end_rss=$(rss)
  [ "$end_fds" -eq "$base_fds" ] || fail "$engine: $end_fds fds at the end, $base_fds at the start"
  [ "$end_threads" -eq "$base_threads" ] || fail "$engine: $end_threads threads at the end, $base_threads at the start"
  [ "$end_rss" -le $(( first_rss * 3 / 2 + 16384 )) ] || fail "$engine: RSS grew from $first_rss to $end_rss KiB"
  kill -TERM $SPID; rc=0; wait $SPID || rc=$?; SPID=""
  [ $rc -eq 0 ] || fail "$engine server exited $rc after SIGTERM"
  echo "soak: $engine PASS: $round rounds, $bytes bytes verified, 0 mismatches; rss $first_rss -> $end_rss KiB, fds $base_fds -> $end_fds, threads $base_threads -> $end_threads"
  grand_bytes=$((grand_bytes + bytes)) grand_rounds=$((grand_rounds + round))
done
echo "soak: PASS: $grand_rounds rounds, $grand_bytes bytes verified, 0 mismatches, ${TOTAL} s"
