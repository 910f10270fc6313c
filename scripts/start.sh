#!/usr/bin/env bash
# Takes a fresh machine to the running example: installs what is missing (containerd,
# runc, CNI plugins, nftables, protoc, …), builds mast, starts `mast up` (a whole
# cluster on this machine, SQLite in its data dir) in the background, imports the
# example images, applies examples/web.yaml, waits for it, and prints the answers of
# its Service, which go round-robin over the pods (scripts/example.sh does the part
# after the build). Idempotent: running it again reuses the running cluster.
#
# usage: scripts/start.sh          start (needs root: containers and network rules)
#        scripts/start.sh stop     stop the cluster (its state stays for the next start)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${1:-} != stop ]]; then
    bash scripts/install-deps.sh
fi
cargo build --release --locked -p mast
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
mast=$target/release/mast
echo "built: $("$mast" --version)"
exec bash scripts/example.sh "$mast" "$@"
