#!/usr/bin/env bash
# Takes a fresh machine to a running mast and the example: installs what is missing,
# builds mast, starts `mast server` (SQLite in the data dir) in the background unless
# it already runs, and sends examples/web.yaml to it with kubectl. Idempotent: running
# it again reuses the running server and leaves the example in place.
#
# mast is being built bottom-up. Today the server is API server, scheduler and
# controllers: the example's Deployment becomes a ReplicaSet and Pods, which wait for a
# node (Pending) until the kubelet runs real containers; `mast up` then replaces this
# script's server.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cargo build --release --locked -p mast
mast=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/mast
echo "built: $("$mast" --version)"

state=${MAST_STATE_DIR:-$HOME/.local/share/mast/start}
port=${MAST_PORT:-6443}
export KUBECONFIG=$state/kubeconfig
mkdir -p "$state"

running() { [[ -f $state/server.pid ]] && kill -0 "$(cat "$state/server.pid")" 2>/dev/null; }
if running; then
    echo "mast server already running (pid $(cat "$state/server.pid"))"
else
    rm -f "$KUBECONFIG"
    nohup "$mast" server --data-dir "$state/data" --bind-address 127.0.0.1 --secure-port "$port" \
        --write-kubeconfig "$KUBECONFIG" >"$state/server.log" 2>&1 &
    echo $! >"$state/server.pid"
    echo "started mast server (pid $!), log: $state/server.log"
fi

# Wait for the kubeconfig, then for readiness, with a deadline.
for _ in $(seq 1 100); do
    if [[ -f $KUBECONFIG ]] && curl -fsS "$(awk '/server:/ {print $2}' "$KUBECONFIG")/readyz" >/dev/null 2>&1; then
        break
    fi
    running || { echo "error: mast server exited; see $state/server.log" >&2; tail -5 "$state/server.log" >&2; exit 1; }
    sleep 0.1
done
curl -fsS "$(awk '/server:/ {print $2}' "$KUBECONFIG")/readyz" >/dev/null || { echo "error: mast server not ready after 10 s" >&2; exit 1; }

if kubectl get -f examples/web.yaml >/dev/null 2>&1; then
    echo "the example is already there"
else
    kubectl create -f examples/web.yaml
fi
kubectl get deployments,replicasets,pods,services -o wide
cat <<MSG

mast server is running. Try:
  export KUBECONFIG=$KUBECONFIG
  kubectl get deployment web -o yaml
  kubectl scale deployment web --replicas=5
Stop it with: kill \$(cat $state/server.pid)
MSG
