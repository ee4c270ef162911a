#!/usr/bin/env bash
# Server syscalls and CPU per round trip, per engine: a small ping-pong client (C
# connections, each sending S bytes and waiting for the echo, R rounds) against
# `eco serve --threads 1`, once plain (server CPU time from /proc/PID/stat) and once
# under `strace -c -f` (syscall counts). A sanity check, not the benchmark: the
# client is Python, so absolute rates are the client's, not the server's.
#
#   bench/syscalls_per_rtt.sh [ECO_BINARY] [C] [R] [S]   (defaults: build/release/eco 1 20000 64)
set -euo pipefail

ECO=${1:-build/release/eco}
C=${2:-1}
R=${3:-20000}
S=${4:-64}
[[ -x $ECO ]] || { echo "syscalls_per_rtt: no eco binary at $ECO" >&2; exit 2; }
command -v python3 >/dev/null || { echo "syscalls_per_rtt: needs python3" >&2; exit 2; }
command -v strace >/dev/null || { echo "syscalls_per_rtt: needs strace" >&2; exit 2; }

tmp=$(mktemp -d)
server=""
tracer=""
cleanup() {
  [[ -n $tracer ]] && kill "$tracer" 2>/dev/null || true
  [[ -n $server ]] && kill -KILL "$server" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/client.py" <<'EOF'
import selectors, socket, sys, time
port, conns, rounds, size = (int(a) for a in sys.argv[1:5])
msg = bytes(i & 0xFF for i in range(size))
sel = selectors.DefaultSelector()
state = {}
for _ in range(conns):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(msg)
    state[s] = [rounds, b""]
    sel.register(s, selectors.EVENT_READ)
start = time.perf_counter()
left = conns
while left:
    for key, _ in sel.select():
        s = key.fileobj
        st = state[s]
        st[1] += s.recv(65536)
        if len(st[1]) < size:
            continue
        if st[1] != msg:
            sys.exit("echo differs")
        st[0] -= 1
        st[1] = b""
        if st[0]:
            s.sendall(msg)
        else:
            sel.unregister(s)
            left -= 1
el = time.perf_counter() - start
print(f"{conns * rounds / el:.0f}")
EOF

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() {  # engine traced
  local engine=$1 traced=$2
  rm -f "$tmp/port"
  "$ECO" serve --engine "$engine" --threads 1 --listen 127.0.0.1:0 --port-file "$tmp/port" --quiet \
    2>"$tmp/server.log" &
  server=$!
  for _ in $(seq 100); do [[ -s $tmp/port ]] && break; sleep 0.05; done
  [[ -s $tmp/port ]] || { echo "server did not start" >&2; cat "$tmp/server.log" >&2; exit 1; }
  local port t0 t1 rate
  port=$(cat "$tmp/port")
  if [[ $traced == 1 ]]; then
    strace -c -f -o "$tmp/strace.txt" -p "$server" 2>/dev/null &
    tracer=$!
    sleep 0.5
  fi
  t0=$(cpu_ticks "$server")
  rate=$(python3 "$tmp/client.py" "$port" "$C" "$R" "$S")
  t1=$(cpu_ticks "$server")
  if [[ $traced == 1 ]]; then
    kill -INT "$tracer"
    wait "$tracer" || true
    tracer=""
    # strace -c columns: %time seconds usecs/call calls [errors] syscall
    awk -v e="$engine" -v n=$((C * R)) '
      $4 ~ /^[0-9]+$/ && $NF != "total" {
        printf "  %-6s %-16s %8d calls  %6.3f per round trip\n", e, $NF, $4, $4 / n }
    ' "$tmp/strace.txt"
  else
    awk -v e="$engine" -v c="$C" -v s="$S" -v n=$((C * R)) -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v r="$rate" \
      'BEGIN { printf "%-6s %3d conn x %5d B: %7d round trips/s (client-bound), server CPU %5.2f us per round trip\n",
               e, c, s, r, d / hz * 1e6 / n }'
  fi
  kill -TERM "$server"
  wait "$server" || true
  server=""
}

for engine in epoll uring; do run "$engine" 0; done
echo "strace -c (server, all threads):"
for engine in epoll uring; do run "$engine" 1; done
