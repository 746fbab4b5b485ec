#!/usr/bin/env bash
# hookscope's benchmark: hookscope against a bare hyper server (the ceiling) and
# the Node.js server of Panther's docs, in one run, as ratios.
#   bench/run.sh                          # 3 rounds, 5 s per run, then the 1M-request memory run
#   ROUNDS=5 DURATION=10s bench/run.sh    # longer
#   SKIP_MEMORY=1 bench/run.sh            # without the memory run
#   BENCH_DIR=/tmp bench/run.sh           # record and stdout on disk (default /dev/shm)
#   ONLY=hookscope-quiet,wiremock,node-example bench/run.sh   # hookscope beside its peers
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
# WireMock, what many would pick instead: its standalone jar ships in the npm package.
if [ -z "${ONLY:-}" ] || echo "$ONLY" | grep -q wiremock; then
  command -v java >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }
  ls target/bench/peers/node_modules/wiremock/build/wiremock-standalone-*.jar >/dev/null 2>&1 \
    || npm install --prefix target/bench/peers --no-audit --no-fund --silent wiremock@3.13.2
fi
python3 bench/payloads.py target/bench
python3 bench/bench.py
