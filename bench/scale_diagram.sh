#!/usr/bin/env bash
# Renders docs/scaling.dot (the scale-out bed's architecture) into docs/scaling.png.
# Needs graphviz (scripts/install-deps.sh bench).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
command -v dot >/dev/null 2>&1 || { echo "scale_diagram: needs graphviz's dot (scripts/install-deps.sh bench)" >&2; exit 2; }
dot -Tpng -Gdpi=110 "$root/docs/scaling.dot" -o "$root/docs/scaling.png"
echo "wrote docs/scaling.png"
