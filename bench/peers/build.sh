#!/usr/bin/env bash
# Builds the compiled peer echo servers into OUT/bin (default build/peers/bin),
# offline, from Debian's toolchains and crates only. A peer whose toolchain is
# missing or whose build fails is reported and skipped; the harness then
# leaves it out of the table and says why (OUT/bin/<peer>.skipped).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "${1:-build/peers}" && cd "${1:-build/peers}" && pwd)"
bin="$out/bin"
work="$out/work"
mkdir -p "$bin" "$work"
jobs="${JOBS:-1}"

skip() { # peer reason
  echo "build-peers: SKIP $1: $2" >&2
  echo "$2" >"$bin/$1.skipped"
}
built() { rm -f "$bin/$1.skipped"; echo "build-peers: ok   $1"; }

# tight C: single-threaded edge-triggered epoll.
if gcc -O2 -Wall -Wextra -o "$bin/tight_epoll" "$here/tight_epoll.c" 2>"$work/tight_epoll.log"; then
  built tight_epoll
else
  skip tight_epoll "gcc failed: $(tail -n1 "$work/tight_epoll.log")"
fi

# Standalone Asio (libasio-dev), header-only.
if [ ! -f /usr/include/asio.hpp ]; then
  skip asio_echo "libasio-dev not installed (/usr/include/asio.hpp missing)"
elif g++ -std=c++20 -O2 -Wall -Wextra -pthread -o "$bin/asio_echo" "$here/asio_echo.cpp" 2>"$work/asio_echo.log"; then
  built asio_echo
else
  skip asio_echo "g++ failed: $(tail -n1 "$work/asio_echo.log")"
fi

# Go: standard library only, no module downloads; caches kept under OUT.
if ! command -v go >/dev/null 2>&1; then
  skip go_net "go not installed (golang-go)"
elif (cd "$here/go_net" && GOCACHE="$work/go-cache" GOPATH="$work/go-path" GOFLAGS=-mod=mod GOPROXY=off \
        GOTOOLCHAIN=local go build -o "$bin/go_net" .) 2>"$work/go_net.log"; then
  built go_net
else
  skip go_net "go build failed: $(tail -n1 "$work/go_net.log")"
fi

# Rust tokio: Debian's cargo and rustc (not a rustup toolchain that may be on
# PATH), crates only from Debian's registry directory, no network. The source
# is copied so Cargo.lock and target/ stay out of the source tree.
cargo_bin=/usr/bin/cargo
rustc_bin=/usr/bin/rustc
if [ ! -x "$cargo_bin" ] || [ ! -x "$rustc_bin" ]; then
  skip tokio_echo "Debian cargo/rustc not installed"
elif [ ! -d /usr/share/cargo/registry ] || ! ls -d /usr/share/cargo/registry/tokio-1.* >/dev/null 2>&1; then
  skip tokio_echo "librust-tokio-dev not installed (/usr/share/cargo/registry/tokio-1.*)"
else
  mkdir -p "$work/cargo-home" "$work/rust_tokio"
  cat >"$work/cargo-home/config.toml" <<'CFG'
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "/usr/share/cargo/registry"
[net]
offline = true
CFG
  cp -r "$here/rust_tokio/Cargo.toml" "$here/rust_tokio/src" "$work/rust_tokio/"
  if (cd "$work/rust_tokio" && CARGO_HOME="$work/cargo-home" RUSTC="$rustc_bin" CARGO_TARGET_DIR="$work/cargo-target" \
        "$cargo_bin" build --release --offline -j "$jobs") >"$work/tokio_echo.log" 2>&1; then
    cp "$work/cargo-target/release/tokio_echo" "$bin/tokio_echo"
    built tokio_echo
  else
    skip tokio_echo "offline cargo build failed: $(grep -m1 -i error "$work/tokio_echo.log")"
  fi
fi
exit 0
