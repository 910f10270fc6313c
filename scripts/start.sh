#!/usr/bin/env bash
# Takes a fresh machine to the example: installs what is missing, builds mast, runs the
# example. Idempotent.
#
# mast is being built bottom-up. The store is what exists today, so the example is the
# store benchmark in quick mode: the embedded SQLite store and a real etcd side by side
# (throughput, watch latency, disk size). Later milestones turn this script into "start a
# cluster and run the example app" (see docs/architecture.md).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cargo build --release --locked -p mast
echo "built: $(cargo run --release --locked -q -p mast -- --version)"
cargo bench --locked -p mast-store --bench store -- --quick
