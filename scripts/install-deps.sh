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
# `install-deps.sh bench` the peer echo servers' runtimes and toolchains (make bench-peers);
# `install-deps.sh packaging` what `make deb` and its tests need (make check, make test).
need_promtool=0
for group in "$@"; do
  case "$group" in
    fuzz) packages+=(clang libclang-rt-14-dev) ;;
    packaging)
      # dpkg-shlibdeps, lintian, man, the shells the completions are for, readelf, and socat
      # to echo through the installed package (tests/packaging)
      packages+=(dpkg-dev binutils file lintian man-db zsh socat)
      need_promtool=1
      ;;
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
    *) echo "install-deps: unknown group '$group' (known: fuzz, bench, packaging)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# promtool checks and unit-tests the Prometheus alert rules (tests/packaging). It comes
# from Debian's prometheus package, unpacked rather than installed: installing it would
# set up and start a Prometheus server (port 9090, all addresses) just to get the checker.
PROMTOOL=/usr/local/libexec/eco/promtool
[ -x "$PROMTOOL" ] && need_promtool=0

if [ ${#missing[@]} -eq 0 ] && [ $need_promtool -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ $need_promtool -eq 1 ]; then
  echo "install-deps: unpacking promtool from Debian's prometheus package into $PROMTOOL"
  tmp=$(mktemp -d)
  chmod 755 "$tmp"  # apt downloads as user _apt
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download -qq prometheus)
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
  $sudo install -D -m 755 "$tmp/usr/bin/promtool" "$PROMTOOL"
fi
