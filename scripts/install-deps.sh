#!/usr/bin/env bash
# Installs what building and testing mast needs, from Debian's packages. Idempotent:
# installs only what is missing, so it is cheap to run every time.
#   protoc      (protobuf-compiler)  etcd-client compiles etcd's protobufs at build time
#   etcd        (etcd-server)        the etcd backend's tests and the benchmark run a real one
#   etcdctl     (etcd-client)        for people poking at that etcd by hand
#   kubectl     (kubernetes-client)  the API server's tests and start.sh drive it (only if none is on PATH)
#   curl        (curl)               start.sh waits on the server's /readyz
#   kubernetes  (PyPI)               the official Python client, used by the API tests
#   containerd, ctr (containerd)     the container runtime the kubelet drives through CRI
#   runc        (runc)               containerd's OCI runtime
#   CNI plugins (containernetworking-plugins)  bridge, host-local, portmap, loopback
#   busybox     (busybox-static)     scripts/build-images.sh builds the test images from it
#   nft         (nftables)           the proxy's data path and pod masquerading
#   ip          (iproute2)           network namespaces in the container tests
set -euo pipefail

need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-pip)
command -v containerd >/dev/null 2>&1 || need+=(containerd)
command -v runc >/dev/null 2>&1 || need+=(runc)
dpkg -s containernetworking-plugins >/dev/null 2>&1 || need+=(containernetworking-plugins)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)

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

# The official Python client comes from PyPI, pinned to the version the tests were
# written against. Debian's Python refuses system-wide pip installs (PEP 668); then the
# flag below lets pip install for this machine's tests.
if ! python3 -c 'import kubernetes' >/dev/null 2>&1; then
    echo "installing: kubernetes (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check 'kubernetes==37.0.2' \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'kubernetes==37.0.2'
fi
