# shellcheck shell=bash
# A multi-host test bed on one machine, made of network namespaces: 3 eco servers,
# 1 HAProxy balancer, 2 load clients, each a "host" with one veth leg into a bridge
# that lives in a namespace of its own. Nothing is created in (or routed through) the
# caller's namespace, so the bed cannot touch the host's network, its services or
# ports (a Debian haproxy service on the host keeps its own config and ports).
#
# Source this file, then: bed_init; trap bed_down EXIT; bed_up; ...
# Every name carries a per-run prefix with the creating shell's pid, so parallel runs
# cannot collide and bed_clean_stale can tell a leftover from a live bed.
#
#   hosts      address        runs
#   lb         10.88.0.2      haproxy (TCP mode, :5346 -> s1..s3, send-proxy-v2, checks)
#   s1..s3     10.88.0.11-13  eco serve :5346 (+ --metrics :9100 when eco has it)
#   c1, c2     10.88.0.101-102  eco bench / eco send
#   br         (no address)   the bridge br0 joining every host's veth
#   anycast    10.88.1.1      on lo of every server; clients reach it over ECMP routes (UDP)

BED_NET=10.88.0
BED_VIP=10.88.1.1
BED_PORT=5346
BED_METRICS_PORT=9100
BED_SERVERS=(s1 s2 s3)
BED_CLIENTS=(c1 c2)

bed_log() { echo "bed: $*" >&2; }
bed_die() { echo "bed: $*" >&2; exit 1; }

# Address of a bed host by its short name.
bed_addr() {
  case "$1" in
    lb) echo "$BED_NET.2" ;;
    s[0-9]) echo "$BED_NET.$((10 + ${1#s}))" ;;
    c[0-9]) echo "$BED_NET.$((100 + ${1#c}))" ;;
    *) bed_die "no host '$1'" ;;
  esac
}

bed_ns() { echo "${BED_PREFIX}-$1"; }

# Runs a command on a bed host.
bed_exec() {
  local host=$1; shift
  ip netns exec "$(bed_ns "$host")" "$@"
}

# Can this process create namespaces at all? (root, CAP_SYS_ADMIN, iproute2, veth, bridge.)
# Prints why not and returns 1; creates and removes one probe namespace.
bed_can_run() {
  command -v ip >/dev/null 2>&1 || { echo "no 'ip' command (iproute2)"; return 1; }
  [ "$(id -u)" -eq 0 ] || { echo "not root: network namespaces need CAP_SYS_ADMIN"; return 1; }
  local probe="ecoprobe$$"
  if ! ip netns add "$probe" 2>/dev/null; then echo "cannot create a network namespace (ip netns add)"; return 1; fi
  local ok=0
  ip -n "$probe" link add pa type veth peer name pb 2>/dev/null || { echo "cannot create a veth pair"; ok=1; }
  [ $ok -eq 0 ] && { ip -n "$probe" link add pbr type bridge 2>/dev/null || { echo "cannot create a bridge"; ok=1; }; }
  ip netns del "$probe" 2>/dev/null || true
  return $ok
}

# Removes beds left by runs that were killed before their trap ran (their pid is gone).
bed_clean_stale() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^ecobed[0-9]+x[0-9a-f]+-' || true); do
    pid=${ns#ecobed}; pid=${pid%%x*}
    if ! kill -0 "$pid" 2>/dev/null; then
      bed_kill_ns_pids "$ns"
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
}

# Sets the prefix and the run directory (logs, configs, pid files, results).
bed_init() {
  BED_PREFIX="ecobed$$x$(printf '%04x' $((RANDOM)))"
  BED_DIR=$(mktemp -d "${TMPDIR:-/tmp}/eco-bed.XXXXXX")
  BED_ECO=${BED_ECO:-eco}
  "$BED_ECO" --version >/dev/null 2>&1 || bed_die "cannot run '$BED_ECO'"
}

# The bed is built on three eco features: a PROXY v2 header stripped (HAProxy sends one),
# --deny applied to the source that header names, and /healthz and /readyz answering
# (HAProxy's checks). probe.py tries each in s1's namespace (so after bed_up); a missing
# one stops the bed with its name before anything runs on it. BED_FEATURES keeps the
# probe's answer for the logs.
bed_check_features() {
  local here py
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  py=/usr/bin/python3; [ -x "$py" ] || py=python3
  BED_FEATURES=$(bed_exec s1 "$py" "$here/probe.py" "$BED_ECO" "${BED_ENGINE:-}") \
    || bed_die "feature probe failed"
  local missing="" f
  for f in proxy limits metrics; do
    [[ " $BED_FEATURES " == *" $f=1 "* ]] || missing+=" $f"
  done
  [ -z "$missing" ] || bed_die "$BED_ECO lacks what the bed needs ($BED_FEATURES):$missing (scripts/testbed/probe.py says what each is)"
}

bed_up() {
  local br h
  br=$(bed_ns br)
  ip netns add "$br"
  ip -n "$br" link set lo up
  ip -n "$br" link add br0 type bridge
  ip -n "$br" link set br0 up
  for h in lb "${BED_SERVERS[@]}" "${BED_CLIENTS[@]}"; do
    ip netns add "$(bed_ns "$h")"
    # The veth is created inside the bridge's namespace and its peer moved straight to
    # the host's: neither end ever exists in the caller's namespace.
    ip -n "$br" link add "v-$h" type veth peer name eth0 netns "$(bed_ns "$h")"
    ip -n "$br" link set "v-$h" master br0 up
    ip -n "$(bed_ns "$h")" link set lo up
    ip -n "$(bed_ns "$h")" addr add "$(bed_addr "$h")/24" dev eth0
    ip -n "$(bed_ns "$h")" link set eth0 up
  done
  # Anycast address for the UDP (ECMP) part: every server owns it on lo, and clients
  # reach it through a multipath route hashed on the 5-tuple (policy 1 = L4), so each
  # client socket sticks to one server and different sockets spread.
  for h in "${BED_SERVERS[@]}"; do
    ip -n "$(bed_ns "$h")" addr add "$BED_VIP/32" dev lo
  done
  for h in "${BED_CLIENTS[@]}"; do
    bed_exec "$h" sysctl -q -w net.ipv4.fib_multipath_hash_policy=1
    bed_route_vip "$h" "${BED_SERVERS[@]}"
  done
  bed_wait_links
  bed_check_features
}

# Points a client's route to the anycast address at the given servers (ECMP when > 1).
bed_route_vip() {
  local h=$1; shift
  local args=() s
  if [ $# -eq 1 ]; then
    args=(via "$(bed_addr "$1")")
  else
    for s in "$@"; do args+=(nexthop via "$(bed_addr "$s")" weight 1); done
  fi
  ip -n "$(bed_ns "$h")" route replace "$BED_VIP/32" "${args[@]}"
}

# Waits until every host's link is up (carrier on both veth ends). Reachability itself
# is proven by HAProxy's health checks and the clients' connections.
bed_wait_links() {
  local h i
  for h in lb "${BED_SERVERS[@]}" "${BED_CLIENTS[@]}"; do
    for i in $(seq 1 50); do
      if ip -n "$(bed_ns "$h")" link show eth0 | grep -q 'LOWER_UP'; then break; fi
      [ "$i" -eq 50 ] && bed_die "host $h: eth0 has no carrier"
      sleep 0.1
    done
  done
}

# Sends SIGTERM, then SIGKILL after a grace, to every process inside a namespace this
# bed created (all of them were started by this bed).
bed_kill_ns_pids() {
  local ns=$1 pids i
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -z "$pids" ] && return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for i in $(seq 1 30); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -z "$pids" ] && return 0
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
}

# Tears everything down; safe to call twice and after a partial bed_up.
bed_down() {
  local rc=$? h
  [ "${BED_PREFIX:-}" ] || return $rc
  for h in "${BED_CLIENTS[@]}" lb "${BED_SERVERS[@]}" br; do
    if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$(bed_ns "$h")"; then
      bed_kill_ns_pids "$(bed_ns "$h")"
      ip netns del "$(bed_ns "$h")" 2>/dev/null || true
    fi
  done
  if [ -n "${BED_DIR:-}" ] && [ -d "$BED_DIR" ]; then
    if [ "${BED_KEEP:-0}" = 1 ] || { [ $rc -ne 0 ] && [ "${BED_KEEP_ON_FAIL:-1}" = 1 ]; }; then
      bed_log "logs kept in $BED_DIR"
    else
      rm -rf "$BED_DIR"
    fi
  fi
  return $rc
}

# Starts eco serve on server host $1 with extra flags; waits until it listens.
# Its log (JSON lines) goes to $BED_DIR/<host>.log, its pid to $BED_DIR/<host>.pid.
bed_start_server() {
  local h=$1; shift
  local a; a=$(bed_addr "$h")
  local args=(serve -l "$a:$BED_PORT" -l "udp://$BED_VIP:$BED_PORT" -t 1 --log-format json
              --drain-timeout "${BED_DRAIN:-1s}" --port-file "$BED_DIR/$h.port")
  [ -n "${BED_ENGINE:-}" ] && args+=(--engine "$BED_ENGINE")
  # BED_SERVER_PROXY=0: clients connect straight to this server, not through HAProxy.
  [ "${BED_SERVER_PROXY:-1}" = 1 ] && args+=(--proxy-protocol)
  args+=(--metrics "$a:$BED_METRICS_PORT")
  rm -f "$BED_DIR/$h.port"
  # `ip netns exec` execs the command, so $! is eco's own pid.
  ip netns exec "$(bed_ns "$h")" "$BED_ECO" "${args[@]}" "$@" >>"$BED_DIR/$h.log" 2>&1 </dev/null &
  echo $! >"$BED_DIR/$h.pid"
  local i
  for i in $(seq 1 100); do
    [ -s "$BED_DIR/$h.port" ] && return 0
    kill -0 "$(cat "$BED_DIR/$h.pid")" 2>/dev/null || { tail -5 "$BED_DIR/$h.log" >&2; bed_die "eco serve on $h exited at start"; }
    sleep 0.05
  done
  bed_die "eco serve on $h did not start listening within 5 s"
}

# SIGTERM (drain) and wait for the exit, at most $2 s (default 10), then SIGKILL.
# Sets BED_STOP_RC to eco's exit code ("killed" if it had to be killed). Not to be
# called in $(...): only this shell can reap its children.
bed_stop_server() {
  bed_signal_server "$1" TERM && bed_wait_server "$1" "${2:-10}"
}

bed_signal_server() {
  BED_STOP_RC=gone
  kill -"$2" "$(cat "$BED_DIR/$1.pid")" 2>/dev/null
}

bed_wait_server() {
  local h=$1 limit=${2:-10} pid i
  pid=$(cat "$BED_DIR/$h.pid")
  for i in $(seq 1 $((limit * 20))); do
    if ! kill -0 "$pid" 2>/dev/null || [ "$(ps -o stat= -p "$pid" 2>/dev/null)" = Z ]; then
      BED_STOP_RC=0
      wait "$pid" 2>/dev/null || BED_STOP_RC=$?
      return 0
    fi
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  BED_STOP_RC=killed
}

# Status line of GET $2 on server $1's metrics port, asked from the balancer's host.
bed_http_status() {
  bed_exec lb bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "GET %s HTTP/1.0\r\n\r\n" "$3" >&3 && head -1 <&3 | tr -d "\r"' \
    _ "$(bed_addr "$1")" "$BED_METRICS_PORT" "$2" 2>/dev/null || echo "no answer"
}

bed_start_servers() {
  local h
  for h in "${BED_SERVERS[@]}"; do bed_start_server "$h" "$@"; done
}

bed_stop_servers() {
  local h
  for h in "${BED_SERVERS[@]}"; do
    [ -f "$BED_DIR/$h.pid" ] && kill -0 "$(cat "$BED_DIR/$h.pid")" 2>/dev/null && bed_stop_server "$h"
  done
  return 0
}

# Writes the HAProxy config for the given servers (default: all three): PROXY v2 on
# every connection, HTTP checks of /readyz on eco's metrics port (503 while draining, so
# a server leaves the rotation as soon as it gets SIGTERM).
bed_haproxy_config() {
  local servers=("$@") s
  local proxy_opt="send-proxy-v2"
  local check_opts="check port $BED_METRICS_PORT inter ${BED_CHECK_INTER:-200ms} fall 2 rise 2"
  [ ${#servers[@]} -eq 0 ] && servers=("${BED_SERVERS[@]}")
  {
    cat <<EOF
# Generated by scripts/testbed/lib.sh for one bed run; runs in the bed's lb namespace.
global
    # 2 fds per proxied connection; stays under a 20,000 fd hard limit (containers).
    maxconn 8000
    nbthread ${BED_HAPROXY_THREADS:-2}
    pidfile $BED_DIR/haproxy.pid
    # Runtime API on the lb host's own loopback (inside its namespace).
    stats socket ipv4@127.0.0.1:9999 level admin

defaults
    mode tcp
    log global
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout check 1s
    # A connect refused by a server that just stopped (its listener closes at SIGTERM,
    # before the checks mark it DOWN) is retried at once on another server: "1" =
    # redispatch on every retry, not only the last one (the default).
    retries 3
    option redispatch 1

frontend echo_in
    bind $(bed_addr lb):$BED_PORT
    default_backend eco_servers

backend eco_servers
    balance ${BED_BALANCE:-roundrobin}
EOF
    echo "    option httpchk GET ${BED_CHECK_PATH:-/readyz}"
    echo "    http-check expect status 200"
    echo "    default-server $proxy_opt $check_opts"
    for s in "${servers[@]}"; do
      echo "    server $s $(bed_addr "$s"):$BED_PORT"
    done
  } >"$BED_DIR/haproxy.cfg"
}

bed_start_haproxy() {
  bed_haproxy_config "$@"
  haproxy -c -q -f "$BED_DIR/haproxy.cfg" || bed_die "haproxy rejected $BED_DIR/haproxy.cfg"
  # -db: stay in the foreground (so $! is its pid); -f: only our config, never /etc/haproxy.
  ip netns exec "$(bed_ns lb)" haproxy -db -f "$BED_DIR/haproxy.cfg" >>"$BED_DIR/haproxy.log" 2>&1 </dev/null &
  echo $! >"$BED_DIR/haproxy.fgpid"
  bed_wait_backends_up $#
}

bed_stop_haproxy() {
  local pid
  [ -f "$BED_DIR/haproxy.fgpid" ] || return 0
  pid=$(cat "$BED_DIR/haproxy.fgpid")
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$BED_DIR/haproxy.fgpid"
}

# One command to HAProxy's runtime API; prints the answer.
bed_haproxy_cmd() {
  bed_exec lb bash -c 'exec 3<>/dev/tcp/127.0.0.1/9999 && printf "%s\n" "$1" >&3 && cat <&3' _ "$1"
}

# "s1 UP", "s2 DOWN", ... from `show stat` (CSV: pxname,svname,...,status is field 18).
bed_backend_states() {
  bed_haproxy_cmd "show stat" 2>/dev/null | awk -F, '$1=="eco_servers" && $2!="BACKEND" {print $2, $18}'
}

# "s1 L7OK", ... : the last health check's result per server (check_status, field 37).
bed_backend_checks() {
  bed_haproxy_cmd "show stat" 2>/dev/null | awk -F, '$1=="eco_servers" && $2!="BACKEND" {print $2, $37}'
}

# Waits until $1 servers (default: all in the config) are UP in HAProxy; 10 s at most.
bed_wait_backends_up() {
  local want=${1:-0} i up
  [ "$want" -eq 0 ] && want=${#BED_SERVERS[@]}
  for i in $(seq 1 100); do
    up=$(bed_backend_states | grep -c ' UP$' || true)
    [ "$up" -ge "$want" ] && return 0
    sleep 0.1
  done
  bed_backend_states >&2 || true
  tail -20 "$BED_DIR/haproxy.log" >&2 || true
  bed_die "HAProxy saw fewer than $want servers UP within 10 s"
}

# Waits until HAProxy sees every server DOWN (after bed_stop_servers), so that a restart
# is not mistaken for "up" on the strength of states from before the stop. 10 s at most.
bed_wait_backends_down() {
  local i
  for i in $(seq 1 100); do
    bed_backend_states | grep -q ' UP' || return 0
    sleep 0.1
  done
  bed_die "HAProxy still sees servers UP 10 s after they stopped"
}

# Waits until server $1 is reported (not) UP: bed_wait_backend s2 DOWN.
bed_wait_backend() {
  local s=$1 want=$2 i
  for i in $(seq 1 100); do
    bed_backend_states | grep -q "^$s $want\(\$\| \)" && return 0
    sleep 0.1
  done
  return 1
}
