#!/usr/bin/env bash
# Forward mode against nginx, in one run: wrk -> hookscope --forward -> the bare baseline,
# and wrk -> nginx proxy_pass -> the same baseline, at 1 KB and 64 KB, as ratios to nginx.
#   bench/forward.sh                         # 3 rounds, 5 s per run, 64 connections
#   ROUNDS=5 CONNECTIONS=64,256 bench/forward.sh
set -euo pipefail
cd "$(dirname "$0")/.."

missing=""
command -v wrk >/dev/null || missing="$missing wrk"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$missing nginx-light"
if [ -n "$missing" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
command -v taskset >/dev/null || { echo "bench/forward.sh needs taskset (util-linux)" >&2; exit 2; }

# mitmproxy's reverse proxy, what many would pick instead, from PyPI into its own venv.
if [ -z "${ONLY:-}" ] || echo "$ONLY" | grep -q mitmdump; then
  [ -x target/bench/peers/venv/bin/mitmdump ] || {
    python3 -m venv target/bench/peers/venv
    target/bench/peers/venv/bin/pip install -q --disable-pip-version-check mitmproxy==11.0.2
  }
fi
cargo build --release --bin hookscope --example baseline
python3 bench/payloads.py target/bench
python3 bench/forward.py
