#!/usr/bin/env bash
# Team mode's benchmark (bench/team.py): the embedded store, one hookscope on
# PostgreSQL and two on the same PostgreSQL, in the same rounds.
#   bench/team.sh
#   ROUNDS=5 DURATION=10s CONNECTIONS=128 bench/team.sh
set -euo pipefail
cd "$(dirname "$0")/.."
missing=""
command -v wrk >/dev/null || missing="$missing wrk"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
command -v pgbench >/dev/null || missing="$missing postgresql-contrib"
if [ -n "$missing" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
cargo build --release --bin hookscope
python3 bench/team.py
