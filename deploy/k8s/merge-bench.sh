#!/usr/bin/env bash
# The merge step of the distributed benchmark: waits for every pod of the eco-bench Job
# (bench-job.yaml) to finish, takes the JSON result each printed, and combines them
# with `eco bench merge` into one report (histograms added, rates summed).
#
# Usage: merge-bench.sh [--json]    env: JOB=eco-bench NAMESPACE=default ECO=eco
#        OUT=dir (keeps the per-pod JSON there)  TIMEOUT=600 (seconds to wait)
# Needs kubectl and a local eco binary (or ECO="docker run --rm -i -v \$PWD:\$PWD -w \$PWD eco:0.1.0").
# Exit code: eco bench merge's (1 if any pod saw an error).
set -euo pipefail
job=${JOB:-eco-bench} ns=${NAMESPACE:-default} eco=${ECO:-eco} timeout=${TIMEOUT:-600}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
kc() { kubectl -n "$ns" "$@"; }

want=$(kc get job "$job" -o jsonpath='{.spec.completions}')
for ((waited = 0; ; waited += 2)); do
  done_pods=$(kc get job "$job" -o jsonpath='{.status.succeeded} {.status.failed}' | awk '{print $1 + $2}')
  [ "$done_pods" -ge "$want" ] && break
  [ "$waited" -ge "$timeout" ] && { echo "merge-bench: $job: $done_pods of $want pods finished after ${timeout}s" >&2; exit 3; }
  sleep 2
done

files=()
for pod in $(kc get pods -l "job-name=$job" -o jsonpath='{.items[*].metadata.name}'); do
  # Container logs mix stdout and stderr; the result is the one JSON object in them.
  kc logs "$pod" | python3 -c '
import json, sys
text = sys.stdin.read()
dec = json.JSONDecoder()
for i, ch in enumerate(text):
    if ch == "{":
        try:
            obj, _ = dec.raw_decode(text, i)
        except ValueError:
            continue
        if "eco_bench" in obj:
            json.dump(obj, sys.stdout); sys.exit(0)
sys.exit("no eco bench JSON in the log")' >"$out/$pod.json" || { echo "merge-bench: $pod: no result" >&2; continue; }
  files+=("$out/$pod.json")
done
[ ${#files[@]} -gt 0 ] || { echo "merge-bench: no results from job $job" >&2; exit 1; }
echo "merge-bench: ${#files[@]} of $want results in $out" >&2
# shellcheck disable=SC2086
$eco bench merge "$@" "${files[@]}"
