#!/usr/bin/env bash
# `ildtrack analyze` end to end (load + segment + quantify + write) against the SimpleITK peer
# (scripts/peer_simpleitk.py) on the same phantom series, same machine, same run.
# Usage: scripts/bench_analyze.sh [SIZE=512x512x300] [RUNS=3]
#   COMPARE=/path/to/other/ildtrack scripts/bench_analyze.sh ...   also times that binary, the two
#   alternating run by run on the same series (e.g. the start and end binaries of a change).
# Needs: a release build (cargo build --release -p ildtrack-cli), python3 with SimpleITK
# (pip install SimpleITK), GNU time (/usr/bin/time, Debian package `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-512x512x300}
runs=${2:-3}
bin=target/release/ildtrack
[ -x "$bin" ] || cargo build --release -p ildtrack-cli
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" phantom --out "$work/series" --size "$size" --preset ild >/dev/null
cat "$work"/series/* > /dev/null   # page cache
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "series: $size phantom, $(du -sh "$work/series" | cut -f1)"
for i in $(seq "$runs"); do
  /usr/bin/time -f "ildtrack analyze: %e s wall, peak RSS %M KiB" "$bin" analyze "$work/series" --out "$work/out$i" --backend cpu >/dev/null
  if [ -n "${COMPARE:-}" ]; then
    /usr/bin/time -f "compared binary ($COMPARE) analyze: %e s wall, peak RSS %M KiB" "$COMPARE" analyze "$work/series" --out "$work/cmp$i" --backend cpu >/dev/null
  fi
done 2>&1 | grep -v '^backend:'
for i in $(seq "$runs"); do
  python3 scripts/peer_simpleitk.py "$work/series" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("SimpleITK peer: %.2f s wall (load %.2f, segment %.2f, quantify %.2f)" % tuple(d["timings_ms"][k]/1000 for k in ("total","load","segment","quantify")))'
done
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("ildtrack timings_ms:", {k: round(v) for k, v in d["timings_ms"].items()})' "$work/out1/visit.json"
