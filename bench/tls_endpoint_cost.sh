#!/usr/bin/env bash
# Instructions (callgrind Ir) that tls::Endpoint costs each side, with no sockets and no
# kernel: per echo of 64 B and 16 KiB over one TLS 1.3 connection, and per full and per
# resumed handshake. Noise-free, so the server stage can be designed on these figures
# (docs/design.md, "TLS"). Counts only the functions named server_* / client_* in
# bench/tls_endpoint_cost.cpp (one side's work, OpenSSL included), divided by the count.
#
#   bench/tls_endpoint_cost.sh [BUILD_DIR]    (default build/release; needs valgrind)
set -euo pipefail
build=${1:-build/release}
bin=$build/tests/unit/tls_endpoint_cost
command -v valgrind >/dev/null || { echo "tls_endpoint_cost: needs valgrind" >&2; exit 2; }
[[ -x $bin ]] || { echo "tls_endpoint_cost: no $bin (cmake --build --preset release)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ir FUNCTION-GLOB ARGS... -> instructions inside the functions matching the glob
ir() {
  local glob=$1; shift
  valgrind --tool=callgrind --callgrind-out-file="$tmp/out" --collect-atstart=no --toggle-collect="$glob" \
    "$bin" "$@" >/dev/null 2>"$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
  awk '/^summary:/ {print $2}' "$tmp/out"
}
per() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", a / b }'; }

n_echo=1000 n_hs=100
printf '%-28s %14s %14s\n' "per (P-256 cert, X25519)" "server Ir" "client Ir"
for size in 64 16384; do
  s=$(ir '*server_echo*' echo $size $n_echo)
  c1=$(ir '*client_send*' echo $size $n_echo)
  c2=$(ir '*client_receive*' echo $size $n_echo)
  printf '%-28s %14s %14s\n' "echo of $size B, 1.3 AES-128" "$(per "$s" $n_echo)" "$(per $((c1 + c2)) $n_echo)"
done
for run in "full" "resumed" "full 1.2" "resumed 1.2" "resumed psk_ke"; do
  read -r mode variant <<<"$run"
  args=($mode $n_hs $variant)
  s=$(( $(ir '*server_handshake*' "${args[@]}") + $(ir '*server_accept*' "${args[@]}") ))
  c=$(( $(ir '*client_handshake*' "${args[@]}") + $(ir '*client_connect*' "${args[@]}") + $(ir '*client_receive*' "${args[@]}") ))
  # resumed: one more (full) connection fetched the first ticket; it is counted in, over
  # n+1 connections (so the figure is at most 1/(n+1) of a full handshake too high).
  d=$n_hs; [[ $mode == resumed ]] && d=$((n_hs + 1))
  printf '%-28s %14s %14s\n' "$mode handshake ${variant:-1.3}" "$(per $s $d)" "$(per $c $d)"
done
