#!/usr/bin/env bash
# User-space memory per idle connection, per engine: starts `eco serve` (one thread),
# opens N connections to it from a helper process and measures the server's RSS
# (VmRSS, /proc/PID/status) before and after. Twice per engine: connections that only
# connected, and connections that each echoed 1 KiB once and then went idle (so any
# buffer a connection takes while busy must have been given back).
#
#   bench/idle_rss.sh [ECO_BINARY] [N]     (defaults: build/release/eco, 10000)
#
# Prints one line per engine and case; docs/engines.md records the numbers.
set -euo pipefail

ECO=${1:-build/release/eco}
N=${2:-10000}
[[ -x $ECO ]] || { echo "idle_rss: no eco binary at $ECO" >&2; exit 2; }
command -v python3 >/dev/null || { echo "idle_rss: needs python3 for the client" >&2; exit 2; }
ulimit -n $((N + 1000)) 2>/dev/null || { echo "idle_rss: cannot raise the fd limit to $((N + 1000))" >&2; exit 2; }

tmp=$(mktemp -d)
server=""
client=""
cleanup() {
  [[ -n $client ]] && kill "$client" 2>/dev/null || true
  [[ -n $server ]] && kill -KILL "$server" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The client: opens N connections, optionally echoes 1 KiB on each, says "ready",
# then holds them open until its stdin closes.
cat >"$tmp/client.py" <<'EOF'
import socket, sys
port, n, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
if mode == "echoed":
    msg = bytes(range(256)) * 4
    for s in socks:
        s.sendall(msg)
    for s in socks:
        got = b""
        while len(got) < len(msg):
            chunk = s.recv(len(msg) - len(got))
            if not chunk:
                sys.exit("server closed a connection")
            got += chunk
        if got != msg:
            sys.exit("echo differs")
print("ready", flush=True)
sys.stdin.read()
EOF

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
fd_count() { ls "/proc/$1/fd" | wc -l; }

measure() {  # engine mode
  local engine=$1 mode=$2
  rm -f "$tmp/port"
  "$ECO" serve --engine "$engine" --threads 1 --listen 127.0.0.1:0 --port-file "$tmp/port" --quiet \
    2>"$tmp/server.log" &
  server=$!
  for _ in $(seq 100); do [[ -s $tmp/port ]] && break; sleep 0.05; done
  [[ -s $tmp/port ]] || { echo "idle_rss: server did not start:" >&2; cat "$tmp/server.log" >&2; exit 1; }
  local port base_fds before after
  port=$(cat "$tmp/port")
  sleep 0.2
  base_fds=$(fd_count "$server")
  before=$(rss_kib "$server")
  mkfifo "$tmp/hold"
  python3 "$tmp/client.py" "$port" "$N" "$mode" <"$tmp/hold" >"$tmp/client.out" &
  client=$!
  exec 3>"$tmp/hold"
  for _ in $(seq 600); do grep -q ready "$tmp/client.out" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$tmp/client.out" || { echo "idle_rss: client did not get ready" >&2; exit 1; }
  # Every connection accepted by the server (its fd count says so), then let it settle.
  for _ in $(seq 100); do (($(fd_count "$server") >= base_fds + N)) && break; sleep 0.1; done
  sleep 0.5
  after=$(rss_kib "$server")
  exec 3>&-
  wait "$client" || true
  client=""
  kill -TERM "$server"
  wait "$server" || true
  server=""
  rm -f "$tmp/hold"
  awk -v e="$engine" -v m="$mode" -v n="$N" -v b="$before" -v a="$after" 'BEGIN {
    printf "%-6s %-9s %6d conns: RSS %7d KiB -> %7d KiB, %6.0f bytes per connection\n",
           e, m, n, b, a, (a - b) * 1024 / n }'
}

for engine in epoll uring; do
  for mode in connected echoed; do
    measure "$engine" "$mode"
  done
done
