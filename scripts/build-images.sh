#!/usr/bin/env bash
# Builds mast's test images without a registry or docker, from Debian's busybox-static:
#   OUT_DIR/busybox.tar  docker.io/library/busybox:latest  (cmd `sh`; /bin/busybox, its
#                        applet links, /etc/passwd, /etc/group, /tmp; runs `httpd -f -p 80 -h /www`)
#   OUT_DIR/pause.tar    mast.local/pause:1  (the pod sandbox image: sleeps until SIGTERM)
#   OUT_DIR/web.tar      mast.local/web:1  (the example app: HTTP on 8080, `/` answers with
#                        the pod's host name, `/healthz` with `ok`)
# Each archive is an OCI image layout in a tar file, as `ctr images import` reads it:
# blobs/sha256/<layer, config, manifest>, index.json (naming the image through the
# `io.containerd.image.name` annotation) and oci-layout.
#
# The output is deterministic (fixed timestamps and owners, sorted entries, gzip without
# a name or time): the same busybox binary gives the same digests, so re-running is cheap
# and re-importing is a no-op for containerd. Archives are replaced atomically.
#
# usage: scripts/build-images.sh OUT_DIR
# env:   BUSYBOX (default: the busybox on PATH; it must be statically linked)
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
out=$1
busybox=${BUSYBOX:-$(command -v busybox || true)}
if [[ -z $busybox || ! -x $busybox ]]; then
    echo "error: busybox not found; install Debian's busybox-static (scripts/install-deps.sh)" >&2
    exit 1
fi
mkdir -p "$out"

python3 - "$busybox" "$out" <<'PY'
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

busybox, out = sys.argv[1], sys.argv[2]

# Fixed metadata makes the archives reproducible.
MTIME = 0
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def add(tar, name, kind, mode, data=b"", target=""):
    info = tarfile.TarInfo(name)
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = mode
    if kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif kind == "link":
        info.type = tarfile.SYMTYPE
        info.linkname = target
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def rootfs_tar():
    """The one layer both images share: busybox, its applets and a minimal /etc."""
    with open(busybox, "rb") as f:
        binary = f.read()
    applets = subprocess.run(
        [busybox, "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
    dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "tmp", "proc",
            "sys", "dev", "var", "var/run", "www"}
    entries = {}
    for d in dirs:
        entries[d] = ("dir", 0o1777 if d == "tmp" else 0o755, b"", "")
    entries["bin/busybox"] = ("file", 0o755, binary, "")
    for applet in applets:
        applet = applet.strip("/")
        if applet == "bin/busybox" or not applet:
            continue
        parent = os.path.dirname(applet)
        while parent and parent not in entries:
            entries[parent] = ("dir", 0o755, b"", "")
            parent = os.path.dirname(parent)
        entries[applet] = ("link", 0o777, b"", "/bin/busybox")
    entries["etc/passwd"] = ("file", 0o644,
        b"root:x:0:0:root:/root:/bin/sh\n"
        b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", "")
    entries["etc/group"] = ("file", 0o644, b"root:x:0:\nnogroup:x:65534:\n", "")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        # Sorted, so a directory always precedes what it holds.
        for name in sorted(entries):
            kind, mode, data, target = entries[name]
            add(tar, name, kind, mode, data, target)
    return buf.getvalue()


def gzip_bytes(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


layer_tar = rootfs_tar()
layer_gz = gzip_bytes(layer_tar)
diff_id = sha256(layer_tar)


def image(name, config, path):
    blobs = {}
    layer = {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": sha256(layer_gz),
        "size": len(layer_gz),
    }
    blobs[layer["digest"]] = layer_gz
    config_json = canonical({
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z",
                     "created_by": "mast scripts/build-images.sh"}],
    })
    blobs[sha256(config_json)] = config_json
    manifest = canonical({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(config_json),
            "size": len(config_json),
        },
        "layers": [layer],
    })
    blobs[sha256(manifest)] = manifest
    index = canonical({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(manifest),
            "size": len(manifest),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
            },
        }],
    })
    tmp = path + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, "blobs", "dir", 0o755)
        add(tar, "blobs/sha256", "dir", 0o755)
        for digest in sorted(blobs):
            add(tar, "blobs/sha256/" + digest.split(":", 1)[1], "file", 0o644, blobs[digest])
        add(tar, "index.json", "file", 0o644, index)
        add(tar, "oci-layout", "file", 0o644, canonical({"imageLayoutVersion": "1.0.0"}))
    os.replace(tmp, path)
    print(f"{path}: {name} {sha256(manifest)}")


image(
    "docker.io/library/busybox:latest",
    {"Env": [PATH_ENV], "Cmd": ["sh"], "WorkingDir": "/"},
    os.path.join(out, "busybox.tar"),
)
# PID 1 ignores signals it has no handler for, so a bare `sleep` would only die by
# SIGKILL; the trap makes SIGTERM (and SIGINT) end the sandbox at once.
image(
    "mast.local/pause:1",
    {
        "Env": [PATH_ENV],
        "Entrypoint": ["/bin/sh", "-c",
                       "trap 'exit 0' TERM INT; sleep 2147483647 & wait"],
        "WorkingDir": "/",
    },
    os.path.join(out, "pause.tar"),
)
# The example app (examples/web.yaml): each pod answers with its own name, which makes
# the Service's round-robin visible.
image(
    "mast.local/web:1",
    {
        "Env": [PATH_ENV],
        "Entrypoint": ["/bin/sh", "-c",
                       "mkdir -p /www && hostname > /www/index.html && echo ok > /www/healthz"
                       " && exec httpd -f -p 8080 -h /www"],
        "ExposedPorts": {"8080/tcp": {}},
        "WorkingDir": "/",
    },
    os.path.join(out, "web.tar"),
)
PY
