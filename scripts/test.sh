#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, and every test,
# including the ones against a real etcd. Nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

# The API server tests hold a thousand watches open at once: allow the file
# descriptors they need (up to the hard limit; no privilege needed).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast
fi
