#!/usr/bin/env bash
# How throughput grows with servers on the namespace bed (scripts/testbed/): the same
# client load (2 client hosts running eco bench) against 1, 2 and 3 eco servers, over
# TCP through HAProxy and over UDP to the ECMP anycast address; plus 1 server without
# HAProxy as the baseline. Prints a Markdown table and writes the raw numbers as JSON.
#
# Usage: bench/scale.sh ECO [OUT.json]
#   env: REPS=3 DURATION=5s WARMUP=1s CONNS=32 (per client) DEPTH=1 SIZE=64
# Not a test: numbers move with the machine's load; docs/scaling.md says how to read them.
set -euo pipefail

ECO=$(readlink -f "${1:?usage: bench/scale.sh ECO [OUT.json]}")
OUT=${2:-}
REPS=${REPS:-3} DURATION=${DURATION:-5s} WARMUP=${WARMUP:-1s} CONNS=${CONNS:-32} DEPTH=${DEPTH:-1} SIZE=${SIZE:-64}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../scripts/testbed/lib.sh
source "$HERE/../scripts/testbed/lib.sh"
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3

why=$(bed_can_run) || bed_die "cannot build the bed here: $why"
BED_ECO=$ECO
bed_clean_stale
bed_init
trap bed_down EXIT
trap 'exit 130' INT TERM
bed_up
BED_ENGINE=${BED_ENGINE:-epoll}
echo "scale bench: features $BED_FEATURES, engine $BED_ENGINE, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

secs() { "$PY" -c 'import sys,re; m=re.fullmatch(r"([\d.]+)(ms|s)?", sys.argv[1]); v=float(m.group(1)); print(v/1000 if m.group(2)=="ms" else v)' "$1"; }
# utime+stime of a pid, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
busy_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8}' /proc/stat; }
HZ=$(getconf CLK_TCK)
# Computed once: python start-up inside the timed part would eat into the window.
WARM_S=$(secs "$WARMUP") DUR_S=$(secs "$DURATION")
WINDOW_S=$("$PY" -c 'import sys; print(max(0.2, float(sys.argv[1]) - 0.5))' "$DUR_S")

results=()
run_one() {  # run_one LABEL PROTO TARGET SERVERS...
  local label=$1 proto=$2 target=$3; shift 3
  local servers=("$@") s pids=() h
  local proxy=0
  [ "$proto" = tcp-lb ] && proxy=1
  for s in "${servers[@]}"; do BED_SERVER_PROXY=$proxy bed_start_server "$s"; done
  local lb_pid=""
  if [ "$proto" = tcp-lb ]; then
    bed_start_haproxy "${servers[@]}"
    lb_pid=$(cat "$BED_DIR/haproxy.fgpid")
  fi
  if [ "$proto" = udp ]; then
    for h in "${BED_CLIENTS[@]}"; do bed_route_vip "$h" "${servers[@]}"; done
  fi
  local dst=$target
  [ "$proto" = udp ] && dst="udp://$target"
  for h in "${BED_CLIENTS[@]}"; do
    ip netns exec "$(bed_ns "$h")" "$ECO" bench "$dst" --conns "$CONNS" --depth "$DEPTH" --size "$SIZE" \
      --duration "$DURATION" --warmup "$WARMUP" --json -q >"$BED_DIR/$label.$h.json" 2>"$BED_DIR/$label.$h.err" </dev/null &
    pids+=($!)
  done
  # CPU over (most of) the measured window: from just after the warm-up to just before
  # the end, so every process is still alive at both samples.
  sleep "$WARM_S"
  sleep 0.1
  local all=("${pids[@]}") t0=() t1=() b0 b1 w0 w1 i
  for s in "${servers[@]}"; do all+=("$(cat "$BED_DIR/$s.pid")"); done
  [ -n "$lb_pid" ] && all+=("$lb_pid")
  w0=$(date +%s.%N)
  for i in "${all[@]}"; do t0+=("$(ticks "$i")"); done
  b0=$(busy_ticks)
  sleep "$WINDOW_S"
  for i in "${all[@]}"; do t1+=("$(ticks "$i")"); done
  b1=$(busy_ticks)
  w1=$(date +%s.%N)
  local rc=0
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  local nc=${#BED_CLIENTS[@]} ns=${#servers[@]} cpu_clients=0 cpu_servers=0 cpu_lb=0 k=0
  for i in "${all[@]}"; do
    local d=$(( ${t1[$k]} - ${t0[$k]} ))
    if [ $k -lt "$nc" ]; then cpu_clients=$((cpu_clients + d))
    elif [ $k -lt $((nc + ns)) ]; then cpu_servers=$((cpu_servers + d))
    else cpu_lb=$((cpu_lb + d)); fi
    k=$((k + 1))
  done
  "$ECO" bench merge --json "$BED_DIR/$label".c*.json >"$BED_DIR/$label.merged.json" || rc=1
  local line
  line=$("$PY" "$HERE/scale_report.py" row "$BED_DIR/$label.merged.json" "$label" "$proto" "$ns" "$rc" \
    "$cpu_clients" "$cpu_servers" "$cpu_lb" "$((b1 - b0))" "$HZ" "$("$PY" -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$w0" "$w1")")
  results+=("$line")
  [ -n "$lb_pid" ] && bed_stop_haproxy
  bed_stop_servers
}

for rep in $(seq 1 "$REPS"); do
  echo "rep $rep/$REPS" >&2
  run_one "direct-1.r$rep" tcp "$(bed_addr s1):$BED_PORT" s1
  run_one "lb-1.r$rep" tcp-lb "$(bed_addr lb):$BED_PORT" s1
  run_one "lb-2.r$rep" tcp-lb "$(bed_addr lb):$BED_PORT" s1 s2
  run_one "lb-3.r$rep" tcp-lb "$(bed_addr lb):$BED_PORT" s1 s2 s3
  run_one "udp-1.r$rep" udp "$BED_VIP:$BED_PORT" s1
  run_one "udp-2.r$rep" udp "$BED_VIP:$BED_PORT" s1 s2
  run_one "udp-3.r$rep" udp "$BED_VIP:$BED_PORT" s1 s2 s3
done

meta=$("$PY" -c 'import json,sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2]))))' \
  conns_per_client "$CONNS" clients 2 depth "$DEPTH" size "$SIZE" duration "$DURATION" warmup "$WARMUP" \
  features "$BED_FEATURES" engine "$BED_ENGINE" cores "$(nproc)" loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)")
if [ -n "$OUT" ]; then
  printf '%s\n' "${results[@]}" | "$PY" "$HERE/scale_report.py" table "$OUT" "$meta"
else
  printf '%s\n' "${results[@]}" | "$PY" "$HERE/scale_report.py" table "$meta"
fi
