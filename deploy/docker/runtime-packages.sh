#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries a binary links, one a line,
# so the runtime image installs exactly those (and follows new dependencies by itself).
# Usage: runtime-packages.sh BINARY
set -euo pipefail
bin=${1:?usage: runtime-packages.sh BINARY}
[ -x "$bin" ] || { echo "runtime-packages: $bin is not an executable" >&2; exit 2; }
libs=$(ldd "$bin" | awk '/=> \// {print $3}')
[ -n "$libs" ] || { echo "runtime-packages: ldd found no shared libraries in $bin" >&2; exit 1; }
for lib in $libs; do
  real=$(readlink -f "$lib")
  # Debian 12 is usr-merged: a library may be registered under /lib or /usr/lib.
  pkg=$(dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null || dpkg -S "/usr$real" 2>/dev/null) \
    || { echo "runtime-packages: no package owns $real" >&2; exit 1; }
  echo "${pkg%%:*}"
done | sort -u
