#!/usr/bin/env bash
# Runs the example on this machine with a built mast: starts `mast up` in the background
# (unless it already runs), imports the example images, applies examples/web.yaml, waits
# for the rollout, and prints the Service's answers (each pod answers with its name, so
# the round-robin shows). Idempotent: running it again reuses the running cluster.
# `scripts/start.sh` calls it after installing and building; tests call it with a debug
# build inside a network namespace.
#
# usage: scripts/example.sh MAST_BINARY          start (or reuse) and run the example
#        scripts/example.sh MAST_BINARY stop     stop the cluster (what Ctrl-C on `mast up` does)
# env:   MAST_DATA_DIR  the data dir (default: /var/lib/mast for root, ~/.local/share/mast)
#        MAST_PORT      the API server's port (default 6443)
#        MAST_UP_FLAGS  more flags for `mast up` (e.g. --node-ip 192.168.77.1)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 MAST_BINARY [stop]" >&2
    exit 2
fi
mast=$1
if [[ $(id -u) == 0 ]]; then default_data=/var/lib/mast; else default_data=$HOME/.local/share/mast; fi
data=${MAST_DATA_DIR:-$default_data}
port=${MAST_PORT:-6443}
pidfile=$data/up.pid
out=$data/up.out
export KUBECONFIG=$data/kubeconfig

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

# Waits until `mast up` (pid $1) exits, for at most $2 tenths of a second.
wait_exit() {
    for _ in $(seq 1 "$2"); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

if [[ ${2:-} == stop ]]; then
    if ! running; then
        echo "mast up is not running (no live pid in $pidfile)"
        exit 0
    fi
    pid=$(cat "$pidfile")
    echo "stopping mast up (pid $pid): pods, containerd, network rules, control plane"
    kill -INT "$pid"
    if ! wait_exit "$pid" 600; then
        echo "error: mast up (pid $pid) did not stop within 60 s; see $data/mast.log" >&2
        exit 1
    fi
    tail -n 1 "$out"
    rm -f "$pidfile"
    exit 0
fi

# The images: built offline from busybox-static, imported for the kubelet (into its
# images dir before the first start, into its containerd at once when it runs).
bash scripts/build-images.sh "$data/images" >/dev/null
"$mast" images import --data-dir "$data/kubelet" "$data/images/pause.tar" "$data/images/web.tar" \
    | sed 's/^/  /'

if running; then
    echo "mast up already running (pid $(cat "$pidfile")); using it"
else
    # A new session: the cluster outlives this script, and a Ctrl-C typed here later
    # does not reach it.
    # shellcheck disable=SC2086 # MAST_UP_FLAGS is a list of flags
    setsid "$mast" up --data-dir "$data" --port "$port" ${MAST_UP_FLAGS:-} >"$out" 2>&1 </dev/null &
    echo $! >"$pidfile"
    # Show `mast up`'s progress as it comes, until the cluster is ready.
    shown=0
    for _ in $(seq 1 600); do
        lines=$(wc -l <"$out")
        if ((lines > shown)); then
            sed -n "$((shown + 1)),${lines}p" "$out"
            shown=$lines
        fi
        grep -q '^cluster ready' "$out" && break
        if ! running; then
            echo "error: mast up exited; its output is above, its log in $data/mast.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    grep -q '^cluster ready' "$out" || { echo "error: the cluster was not ready within 60 s" >&2; exit 1; }
fi

echo
echo "applying examples/web.yaml"
"$mast" apply -f examples/web.yaml
"$mast" rollout status deployment/web --timeout 120s
"$mast" get deployments,pods,services -o wide
echo

# The Service answers once the proxy has its endpoints: wait (with a deadline) until
# as many requests as there are ready endpoints get as many different pods, then show
# six more, which go round the pods in turn.
python3 - "$mast" <<'PY'
import json, subprocess, sys, time, urllib.request

mast = sys.argv[1]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(kind):
    return json.loads(subprocess.check_output([mast, "get", kind, "web", "-o", "json"]))


def ask(url):
    try:
        with opener.open(url, timeout=3) as response:
            return response.read().decode().strip()
    except OSError:
        return None


url = "http://%s/" % get("service")["spec"]["clusterIP"]
deadline = time.monotonic() + 60
while True:
    subsets = get("endpoints").get("subsets") or []
    ready = sum(len(s.get("addresses") or []) for s in subsets)
    answers = [ask(url) for _ in range(ready)]
    if ready and None not in answers and len(set(answers)) == ready:
        break
    if time.monotonic() > deadline:
        sys.exit("error: the web Service did not answer from all %d endpoints within 60 s" % ready)
    time.sleep(0.2)
print("six requests to the web Service (%s), each answered by a pod with its name:" % url)
for i in range(1, 7):
    print("  %d: %s" % (i, ask(url)))
PY
cat <<MSG

The cluster keeps running (mast up, pid $(cat "$pidfile"); log: $data/mast.log). Try:
  export KUBECONFIG=$KUBECONFIG
  $mast get pods -o wide
  $mast scale deployment web --replicas 5
  $mast describe service web
Stop it (pods, containers, rules and routes go; the state stays in $data):
  bash $0 $mast stop
MSG
