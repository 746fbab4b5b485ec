#!/usr/bin/env bash
# hookscope's benchmark: hookscope against a bare hyper server (the ceiling) and
# the Node.js server of Panther's docs, in one run, as ratios.
#   bench/run.sh                          # 3 rounds, 5 s per run, then the 1M-request memory run
#   ROUNDS=5 DURATION=10s bench/run.sh    # longer
#   SKIP_MEMORY=1 bench/run.sh            # without the memory run
#   BENCH_DIR=/tmp bench/run.sh           # record and stdout on disk (default /dev/shm)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
command -v node >/dev/null || { echo "bench/run.sh needs node for the node-example target" >&2; exit 2; }
command -v taskset >/dev/null || { echo "bench/run.sh needs taskset (util-linux)" >&2; exit 2; }

# The same-work ceilings are examples/baseline.rs, which needs the dev-dependencies:
# built only when a ceiling is asked for (ONLY=hookscope,node-example needs none).
if [ -z "${ONLY:-}" ] || echo "$ONLY" | grep -qE 'baseline|typed|print|record'; then
  cargo build --release --bin hookscope --example baseline
else
  cargo build --release --bin hookscope
fi
python3 bench/payloads.py target/bench
python3 bench/bench.py
