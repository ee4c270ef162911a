#!/usr/bin/env bash
# Installs the Debian 12 packages eco needs to build and test. Idempotent:
# does nothing (and needs no network) when everything is already present.
set -euo pipefail

packages=(
  build-essential g++ cmake ninja-build pkg-config make
  libcli11-dev libfmt-dev liburing-dev
  libgtest-dev libgmock-dev
  python3 iproute2 procps
  systemd  # systemd-socket-activate, for the socket-activation tests
  zlib1g-dev nlohmann-json3-dev libhdrhistogram-java default-jre-headless
  clang llvm libbpf-dev bpftool  # the sockmap engine's BPF program, built into the binary
  libcpp-httplib-dev libtomlplusplus-dev libseccomp-dev  # --metrics, --config, --seccomp
  util-linux  # setpriv, for the CAP_NET_BIND_SERVICE test
  haproxy python3-yaml  # the scale-out test bed's balancer; deploy manifest checks (tests/scale)
  nftables  # packet loss in the namespace fault tests (tests/faults)
  libssl-dev openssl  # TLS (src/tls: OpenSSL 3 through memory BIOs)
  gnutls-bin socat  # outside TLS echo servers the TLS client tests talk to (gnutls-serv, socat OPENSSL-LISTEN)
)

# Optional groups: `install-deps.sh fuzz` adds what `make fuzz` needs (clang + libFuzzer);
# `install-deps.sh bench` the peer echo servers' runtimes and toolchains (make bench-peers).
for group in "$@"; do
  case "$group" in
    fuzz) packages+=(clang libclang-rt-14-dev) ;;
    bench)
      packages+=(
        python3 python3-uvloop           # asyncio and asyncio-on-uvloop peers, the harness itself
        golang-go                        # Go net peer (standard library only)
        cargo rustc librust-tokio-dev    # Rust tokio peer, built offline from /usr/share/cargo/registry
        libasio-dev g++                  # standalone Asio peer
        socat                            # socat fork peer
        util-linux                       # taskset
        gnuplot-nox                      # the chart (docs/peers.png)
        strace valgrind                  # bench/profile_peers.sh: syscalls and instructions per round trip
        graphviz                         # docs/scaling.png (bench/scale_diagram.sh)
      )
      # Node.js: any installed `node` will do (Debian's nodejs or a vendor build).
      command -v node >/dev/null 2>&1 || packages+=(nodejs)
      ;;
    *) echo "install-deps: unknown group '$group' (known: fuzz, bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
