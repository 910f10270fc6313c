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
#   nginx       (nginx, libnginx-mod-stream)  the TCP balancer over the masters (`mast nginx-config`)
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
# nginx is under /usr/sbin, often not on a user's PATH: ask dpkg.
dpkg -s nginx >/dev/null 2>&1 || need+=(nginx)
dpkg -s libnginx-mod-stream >/dev/null 2>&1 || need+=(libnginx-mod-stream)

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
    # Debian's nginx package starts a system nginx on :80 where an init system runs.
    # mast runs its own nginx (unprivileged, its own config): stop and disable that one.
    if [[ " ${need[*]} " == *" nginx "* ]]; then
        if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
            "${sudo[@]}" systemctl disable --now nginx >/dev/null 2>&1 || true
        elif command -v service >/dev/null 2>&1 && service nginx status >/dev/null 2>&1; then
            "${sudo[@]}" service nginx stop >/dev/null 2>&1 || true
            "${sudo[@]}" update-rc.d nginx disable >/dev/null 2>&1 || true
        fi
    fi
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
