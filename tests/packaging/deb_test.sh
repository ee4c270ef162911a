#!/usr/bin/env bash
# The Debian package, end to end, on this machine (needs root: it installs the package,
# and removes it at the end whatever happens):
#   1. cpack builds the .deb from this build tree (the release build's eco and docs);
#   2. its control data and contents: version, dependencies that cover every library the
#      binary needs (found by dpkg-shlibdeps), the files, a stripped binary, the conffile;
#   3. lintian reports no error;
#   4. dpkg -i installs it; the installed eco, man pages and bash completion work;
#   5. the service eco.socket starts is run as the unit runs it, through
#      systemd-socket-activate on loopback (TCP, then UDP), as an unprivileged user like
#      DynamicUser=yes, and echoes through it (eco send and socat);
#   6. dpkg -r keeps only the conffile; dpkg --purge leaves nothing of the package behind.
# Usage: deb_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
work=$(mktemp -d)
chmod 755 "$work"
server_pid=""
installed=0
log() { echo "deb_test: $*"; }
fail() { echo "deb_test: FAIL: $*" >&2; exit 1; }
cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ "$installed" = 1 ]; then dpkg --purge eco >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i installs the package on this machine)"
for tool in cpack dpkg-deb dpkg-shlibdeps lintian readelf systemd-socket-activate setpriv socat man; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done
if dpkg-query -W -f='${Status}' eco 2>/dev/null | grep -q "ok installed"; then
  maintainer=$(dpkg-query -W -f='${Maintainer}' eco)
  # A package of ours left by an interrupted run is removed; anyone else's is not touched.
  [[ $maintainer == "eco developers <"* ]] || fail "a package named eco by '$maintainer' is installed"
  dpkg --purge eco >/dev/null
fi

# ---- 1. build ----
log "building the package"
cpack --config "$build/CPackConfig.cmake" -B "$work/pkg" >"$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; fail "cpack failed"; }
deb=$(ls "$work"/pkg/eco_*.deb)
log "built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

# ---- 2. control data and contents ----
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = eco ] || fail "Package is '$(field Package)'"
[ "$(field Version)" = "$(cat "$build/generated/deb_version")" ] || fail "Version '$(field Version)' is not the build's"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture is '$(field Architecture)'"
depends=$(field Depends)
log "Depends: $depends"
dpkg-deb -x "$deb" "$work/root"
dpkg-deb -e "$deb" "$work/control"
# Every shared library the binary links must come from a package in Depends.
owner_of() {  # the package that holds a library file (dpkg may list it under /lib or /usr/lib)
  local p
  for p in "$1" "$(readlink -f "$1")"; do
    for q in "$p" "${p#/usr}" "/usr$p"; do
      dpkg -S "$q" 2>/dev/null | awk -F: 'NR == 1 {print $1}' | grep . && return 0
    done
  done
  return 1
}
for soname in $(readelf -d "$work/root/usr/bin/eco" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  # awk reads to the end: an early exit would kill ldconfig with SIGPIPE, and pipefail
  # would then end the script without a word.
  path=$(ldconfig -p | awk -v s="$soname" '$1 == s && !found {print $NF; found = 1}')
  [ -n "$path" ] || fail "cannot find $soname on this machine"
  owner=$(owner_of "$path") || fail "no package holds $path"
  [[ ", $depends," == *", $owner "* || ", $depends," == *", $owner,"* ]] || fail "$soname comes from $owner, which Depends lacks"
done
expected=(
  usr/bin/eco
  usr/share/man/man1/eco.1.gz usr/share/man/man1/eco-serve.1.gz usr/share/man/man1/eco-send.1.gz
  usr/share/man/man1/eco-ping.1.gz usr/share/man/man1/eco-bench.1.gz usr/share/man/man5/eco.toml.5.gz
  usr/share/bash-completion/completions/eco usr/share/zsh/vendor-completions/_eco
  lib/systemd/system/eco.socket lib/systemd/system/eco.service
  etc/eco/eco.toml
  usr/share/eco/grafana/eco-dashboard.json usr/share/eco/prometheus/eco-alerts.yml
  usr/share/doc/eco/copyright usr/share/doc/eco/changelog.gz usr/share/doc/eco/CHANGELOG.md.gz
)
for f in "${expected[@]}"; do [ -f "$work/root/$f" ] || fail "the package lacks /$f"; done
file "$work/root/usr/bin/eco" | grep ", stripped" >/dev/null || fail "/usr/bin/eco is not stripped"
[ "$(cat "$work/control/conffiles")" = "/etc/eco/eco.toml" ] || fail "conffiles: $(cat "$work/control/conffiles")"
cmp -s "$work/root/etc/eco/eco.toml" "$(dirname "$0")/../../deploy/eco.toml" || fail "/etc/eco/eco.toml is not deploy/eco.toml"
# The units are deploy/systemd's, sandboxing and all, with the package's paths.
for key in DynamicUser=yes NoNewPrivileges=yes ProtectSystem=strict CapabilityBoundingSet= Type=notify; do
  grep -qx "$key" "$work/root/lib/systemd/system/eco.service" || fail "eco.service lacks $key"
done
diff <(grep -v '^ExecStart=' "$(dirname "$0")/../../deploy/systemd/eco.service") \
     <(grep -v '^ExecStart=' "$work/root/lib/systemd/system/eco.service") >/dev/null \
  || fail "the packaged eco.service differs from deploy/systemd/eco.service beyond ExecStart"
cmp -s "$work/root/lib/systemd/system/eco.socket" "$(dirname "$0")/../../deploy/systemd/eco.socket" \
  || fail "the packaged eco.socket differs from deploy/systemd/eco.socket"
not_root=$(dpkg-deb -c "$deb" | awk '$2 != "root/root"')
[ -z "$not_root" ] || fail "files not owned by root:root: $not_root"

# ---- 3. lintian ----
log "lintian"
lintian --info "$deb" >"$work/lintian.log" 2>&1 || true
grep -v '^N:' "$work/lintian.log" | grep -v 'running with root privileges' || true
if grep -q '^E:' "$work/lintian.log"; then fail "lintian reports errors (above)"; fi
log "lintian: $(grep -c '^W:' "$work/lintian.log" || true) warning(s), no error"

# ---- 4. install ----
# Paths the package owns that existed before it (shared directories such as /usr/bin).
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' | grep -v '^$' >"$work/paths"
while read -r p; do [ -e "$p" ] && echo "$p"; done <"$work/paths" >"$work/preexisting" || true
# A file of the package already here (a hand-installed eco, an /etc/eco/eco.toml of one's
# own) would be replaced and then purged: refuse rather than lose it.
while read -r p; do
  if [ -e "$p" ] && [ ! -d "$p" ]; then fail "$p exists and is not from this package; the test would replace it"; fi
done <"$work/paths"
log "dpkg -i"
installed=1
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i failed"; }
dpkg-query -W -f='${Status}' eco | grep -q "install ok installed" || fail "dpkg does not list eco as installed"
[ "$(/usr/bin/eco --version | awk '{print $2}')" = "$("$build/eco" --version | awk '{print $2}')" ] \
  || fail "the installed eco says '$(/usr/bin/eco --version)', not the version built here"
[ "$(man -w eco-serve)" = /usr/share/man/man1/eco-serve.1.gz ] || fail "man -w eco-serve: $(man -w eco-serve 2>&1)"
[ "$(man -w 5 eco.toml)" = /usr/share/man/man5/eco.toml.5.gz ] || fail "man -w 5 eco.toml"
MANPAGER=cat man eco-serve 2>/dev/null | grep -- "--listen" >/dev/null || fail "man eco-serve does not show --listen"
got=$(bash --norc --noprofile -c 'source /usr/share/bash-completion/completions/eco
  COMP_WORDS=(eco serve --eng); COMP_CWORD=2; _eco; echo "${COMPREPLY[*]}"')
[ "$got" = "--engine" ] || fail "the installed bash completion gave '$got' for 'eco serve --eng'"

# ---- 5. the socket unit's service, run as the unit would ----
# ExecStart as installed; the listening sockets are made by systemd-socket-activate (on
# loopback ports instead of eco.socket's port 7 on every address), and the metrics port
# of /etc/eco/eco.toml is moved to a free one so the test never meets a running eco.
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/eco.service)
[ -n "$exec_start" ] || fail "eco.service has no ExecStart"
read -r -a cmd <<<"$exec_start"
[ "${cmd[0]}" = /usr/bin/eco ] || fail "ExecStart runs '${cmd[0]}', not /usr/bin/eco"
grep -q '^ListenStream=' /lib/systemd/system/eco.socket || fail "eco.socket has no ListenStream"
grep -q '^ListenDatagram=' /lib/systemd/system/eco.socket || fail "eco.socket has no ListenDatagram"

start_activated() {  # $1: tcp or udp; sets port, server_pid
  local try
  for try in 1 2 3 4 5; do
    port=$(( 20000 + RANDOM % 10000 ))  # below the ephemeral range, so no client takes it
    : >"$work/server.log"
    # setpriv: an unprivileged user and no capabilities, as DynamicUser= runs it.
    local flags=()
    [ "$1" = udp ] && flags=(--datagram)
    systemd-socket-activate "${flags[@]}" -l "127.0.0.1:$port" \
      setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all -- \
      "${cmd[@]}" --metrics 127.0.0.1:0 >>"$work/server.log" 2>&1 &
    server_pid=$!
    local i
    for i in $(seq 100); do
      # systemd-socket-activate's own line: the socket is bound; like systemd, it starts
      # the service when the first client arrives.
      grep -q "^Listening on 127.0.0.1:$port as 3" "$work/server.log" && return 0
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    grep -q "Address already in use" "$work/server.log" || break
  done
  cat "$work/server.log"
  fail "systemd-socket-activate did not listen on a $1 port"
}
stop_activated() {
  kill -TERM "$server_pid"
  local rc=0
  wait "$server_pid" || rc=$?
  server_pid=""
  [ "$rc" = 0 ] || { cat "$work/server.log"; fail "the service exited $rc on SIGTERM"; }
}

log "TCP through systemd-socket-activate: ${cmd[*]}"
start_activated tcp
out=$(/usr/bin/eco send "127.0.0.1:$port" "through the package" --timeout 5s) || { cat "$work/server.log"; fail "eco send: $out"; }
[ "$out" = "Received: b'through the package'" ] || fail "eco send printed '$out'"
grep -q "info  Listening on tcp 127.0.0.1:$port" "$work/server.log" || { cat "$work/server.log"; fail "eco did not serve the TCP socket it was passed"; }
# /etc/eco/eco.toml was read by the unprivileged user: its seccomp = true is in force.
status=/proc/$server_pid/status
[ "$(awk '/^Uid:/ {print $2}' "$status")" = 65534 ] || fail "the service does not run as the unprivileged user"
[ "$(awk '/^Seccomp:/ {print $2}' "$status")" = 2 ] || fail "seccomp = true from /etc/eco/eco.toml is not in force"
out=$(printf 'socat too\n' | socat -t 5 - "TCP:127.0.0.1:$port") || fail "socat over TCP"
[ "$out" = "socat too" ] || fail "socat got '$out'"
stop_activated
grep -q "Served 2 connection" "$work/server.log" || { cat "$work/server.log"; fail "the exit summary does not count 2 connections"; }

log "UDP through systemd-socket-activate --datagram"
start_activated udp
out=$(/usr/bin/eco send "udp://127.0.0.1:$port" "a datagram" --timeout 5s) || { cat "$work/server.log"; fail "eco send over UDP: $out"; }
[ "$out" = "Received: b'a datagram'" ] || fail "eco send over UDP printed '$out'"
grep -q "info  Listening on udp 127.0.0.1:$port" "$work/server.log" || { cat "$work/server.log"; fail "eco did not serve the UDP socket it was passed"; }
stop_activated

# ---- 6. remove, then purge ----
log "dpkg -r"
dpkg -r eco >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -r failed"; }
[ ! -e /usr/bin/eco ] || fail "/usr/bin/eco is left after dpkg -r"
[ -f /etc/eco/eco.toml ] || fail "dpkg -r removed the conffile (only a purge should)"
log "dpkg --purge"
dpkg --purge eco >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg --purge failed"; }
installed=0
left=()
while read -r p; do
  grep -qxF "$p" "$work/preexisting" && continue
  [ -e "$p" ] && left+=("$p")
done <"$work/paths"
[ ${#left[@]} -eq 0 ] || fail "left behind after purge: ${left[*]}"
! dpkg-query -W -f='${Status}' eco 2>/dev/null | grep -q "installed" || fail "dpkg still lists eco"
log "ok: built, checked, installed, served TCP and UDP, removed and purged"
