#!/usr/bin/env bash
# Installs the Debian 12 packages the peer comparison harness (bench/) needs:
# the peer echo servers' runtimes and toolchains. Not needed to build or test eco.
# Idempotent: does nothing (and needs no network) when everything is present.
set -euo pipefail

packages=(
  python3 python3-uvloop           # asyncio and asyncio-on-uvloop peers, the harness itself
  golang-go                        # Go net peer (standard library only)
  cargo rustc librust-tokio-dev    # Rust tokio peer, built offline from /usr/share/cargo/registry
  libasio-dev g++                  # standalone Asio peer
  socat                            # socat fork peer
  util-linux                       # taskset
  gnuplot-nox                      # the chart (docs/peers.png)
)
# Node.js: any installed `node` will do (Debian's nodejs or a vendor build).
command -v node >/dev/null 2>&1 || packages+=(nodejs)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-bench-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
