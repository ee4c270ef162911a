#!/usr/bin/env bash
# Builds every libFuzzer target in tests/fuzz (one per *_fuzz.cpp) and runs each for
# SECONDS over a copy of its committed seed corpus (so the seeds in git stay as they
# are), two at a time on the 2-core machine. Any crash, leak or failed invariant fails
# the run; the crashing input is left in $BUILD/ for reproduction:
#   $BUILD/tests/fuzz/<name>_fuzz $BUILD/crash-...
# Usage: tests/fuzz/run.sh [SECONDS] [BUILD_DIR]   (a long run: tests/fuzz/run.sh 3600)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-30}
build=${2:-build/fuzz}
jobs=${FUZZ_PARALLEL:-2}

targets=()
for f in tests/fuzz/*_fuzz.cpp; do
  t=$(basename "$f" .cpp); targets+=("${t%_fuzz}")
done

CXX=clang++ cmake -S . -B "$build" -G Ninja -DECO_FUZZ=ON -DECO_SANITIZE=address,undefined \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j 2 --target "${targets[@]/%/_fuzz}"

run_one() {
  local t=$1 corpus="$build/corpus/$1"
  rm -rf "$corpus" && mkdir -p "$corpus"
  if [ -d "tests/fuzz/corpus/$t" ]; then cp tests/fuzz/corpus/"$t"/* "$corpus"/; fi
  local extra=()
  [ -f "tests/fuzz/$t.dict" ] && extra+=("-dict=tests/fuzz/$t.dict")
  if "$build/tests/fuzz/${t}_fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
       "${extra[@]}" -artifact_prefix="$build/" "$corpus" >"$build/$t.log" 2>&1; then
    echo "fuzz: $t ok: $(grep -E '^Done|DONE' "$build/$t.log" | tail -1)"
  else
    tail -40 "$build/$t.log"
    echo "fuzz: $t FAILED (crash input in $build/, log $build/$t.log)"
    return 1
  fi
}

echo "fuzz: ${targets[*]} for $seconds s each, $jobs at a time"
pids=() names=() failed=0
for t in "${targets[@]}"; do
  run_one "$t" & pids+=($!) names+=("$t")
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}") names=("${names[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
exit $failed
