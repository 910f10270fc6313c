#!/usr/bin/env bash
# Installs what building and testing mast needs, from Debian's packages. Idempotent:
# installs only what is missing, so it is cheap to run every time.
#   protoc      (protobuf-compiler)  etcd-client compiles etcd's protobufs at build time
#   etcd        (etcd-server)        the etcd backend's tests and the benchmark run a real one
#   etcdctl     (etcd-client)        for people poking at that etcd by hand
set -euo pipefail

need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)

if ((${#need[@]})); then
    echo "installing: ${need[*]}"
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || { echo "error: need root (or sudo) to install ${need[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Package lists may be missing or stale on a fresh machine: refresh once on failure.
    "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}" >/dev/null \
        || { "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi

command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found; install Rust (rustup) first" >&2; exit 1; }
