#!/usr/bin/env bash
# The specification's HA topology on one machine, on loopback:
#   3 etcd members, 2 masters (`mast server`: API server, scheduler, controller-manager,
#   both sharing the etcd cluster), and 2 nodes, each with its own nginx balancing over
#   both masters and a kubelet talking to that nginx on loopback.
#
#   hack/ha-cluster.sh up     start everything, print the kubeconfig to use
#   hack/ha-cluster.sh down   stop everything and remove the state
#   hack/ha-cluster.sh status what runs, and who leads
#
# The nodes are hollow (`mast kubelet --runtime fake`): two real agents on one host would
# share one network stack (bridge, nftables, routes). On real machines each node runs
# `mast agent` and its nginx instead; docs/ha.md shows that by hand.
#
# Environment: MAST_HA_DIR (state, default /tmp/mast-ha), MAST_HA_PORT_BASE (default
# 27000; ports BASE+11.. are used), MAST_BIN (default: target/debug/mast, built if missing).
set -euo pipefail

cd "$(dirname "$0")/.."
DIR=${MAST_HA_DIR:-/tmp/mast-ha}
BASE=${MAST_HA_PORT_BASE:-27000}
MAST=${MAST_BIN:-${CARGO_TARGET_DIR:-target}/debug/mast}
ETCD_CLIENT=($((BASE + 11)) $((BASE + 12)) $((BASE + 13)))
ETCD_PEER=($((BASE + 21)) $((BASE + 22)) $((BASE + 23)))
MASTER=($((BASE + 31)) $((BASE + 32)))
NODE_LB=($((BASE + 41)) $((BASE + 42)))

die() { echo "ha-cluster: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing (bash scripts/install-deps.sh installs it)"; }

# Starts "$@" in the background with its log and pid file under $DIR/NAME.
spawn() {
    local name=$1; shift
    "$@" >"$DIR/$name.log" 2>&1 &
    echo $! >"$DIR/$name.pid"
}

# Polls a command until it succeeds, for at most $1 seconds.
wait_for() {
    local seconds=$1 what=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "timed out waiting for $what (logs in $DIR)"
        sleep 0.1
    done
}

join() { local IFS=,; echo "$*"; }

up() {
    need etcd; need etcdctl; need nginx; need curl
    [ -e "$DIR/etcd-0.pid" ] && die "already up (state in $DIR); run: $0 down"
    if [ ! -x "$MAST" ]; then
        echo "building mast..."
        cargo build -q -p mast
    fi
    mkdir -p "$DIR"
    local started=$SECONDS
    # Half a cluster is worse than none: undo everything if a step fails.
    trap 'echo "ha-cluster: up failed; stopping what started (logs were in $DIR)" >&2; down' EXIT

    local cluster="" endpoints=()
    for i in 0 1 2; do
        cluster+="${cluster:+,}e$i=http://127.0.0.1:${ETCD_PEER[$i]}"
        endpoints+=("http://127.0.0.1:${ETCD_CLIENT[$i]}")
    done
    for i in 0 1 2; do
        spawn "etcd-$i" etcd --name "e$i" --data-dir "$DIR/etcd-$i" \
            --listen-client-urls "${endpoints[$i]}" --advertise-client-urls "${endpoints[$i]}" \
            --listen-peer-urls "http://127.0.0.1:${ETCD_PEER[$i]}" \
            --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER[$i]}" \
            --initial-cluster "$cluster" --initial-cluster-state new \
            --initial-cluster-token "mast-ha-$BASE"
    done
    wait_for 30 "etcd" etcdctl --endpoints "$(join "${endpoints[@]}")" endpoint health
    echo "etcd: 3 members at $(join "${endpoints[@]}")"

    local servers=()
    for i in 0 1; do
        mkdir -p "$DIR/master-$i"
        spawn "master-$i" "$MAST" server --data-dir "$DIR/master-$i" \
            --bind-address 127.0.0.1 --secure-port "${MASTER[$i]}" \
            --advertise-address 127.0.0.1 \
            --datastore-endpoint "$(join "${endpoints[@]}")" \
            --write-kubeconfig "$DIR/master-$i/kubeconfig"
        servers+=("127.0.0.1:${MASTER[$i]}")
        wait_for 30 "master $i" curl -sf "http://127.0.0.1:${MASTER[$i]}/readyz"
    done
    echo "masters: $(join "${servers[@]}")"

    for n in 1 2; do
        local node="$DIR/node-$n" lb=${NODE_LB[$((n - 1))]}
        mkdir -p "$node/nginx/logs"
        "$MAST" nginx-config --servers "$(join "${servers[@]}")" \
            --listen "127.0.0.1:$lb" --prefix "$node/nginx" >"$node/nginx/nginx.conf"
        spawn "nginx-$n" nginx -p "$node/nginx" -c "$node/nginx/nginx.conf"
        sed "s#http://127.0.0.1:${MASTER[0]}#http://127.0.0.1:$lb#" \
            "$DIR/master-0/kubeconfig" >"$node/kubeconfig"
        wait_for 10 "node-$n's nginx" curl -sf "http://127.0.0.1:$lb/readyz"
        spawn "kubelet-$n" "$MAST" kubelet --runtime fake --node-name "node-$n" \
            --kubeconfig "$node/kubeconfig" --data-dir "$node/data" --port 0
    done
    cp "$DIR/node-1/kubeconfig" "$DIR/kubeconfig"
    wait_for 30 "both nodes Ready" kubectl --kubeconfig "$DIR/kubeconfig" wait \
        --for=condition=Ready node/node-1 node/node-2 --timeout=1s
    trap - EXIT
    echo "nodes: node-1 (nginx 127.0.0.1:${NODE_LB[0]}), node-2 (nginx 127.0.0.1:${NODE_LB[1]})"
    echo "up in $((SECONDS - started)) s; state and logs in $DIR"
    echo
    echo "export KUBECONFIG=$DIR/kubeconfig   # through node-1's nginx"
    echo "kubectl get nodes; kubectl get lease -n kube-system"
}

status() {
    for pidfile in "$DIR"/*.pid; do
        [ -e "$pidfile" ] || { echo "not up"; return; }
        local name pid
        name=$(basename "$pidfile" .pid)
        pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then echo "$name: running (pid $pid)"; else echo "$name: gone"; fi
    done
    kubectl --kubeconfig "$DIR/kubeconfig" get lease -n kube-system 2>/dev/null || true
}

down() {
    [ -d "$DIR" ] || { echo "not up"; return; }
    # Nodes first, then masters (they release their Leases), then etcd.
    for name in kubelet-1 kubelet-2 nginx-1 nginx-2 master-0 master-1 etcd-0 etcd-1 etcd-2; do
        local pidfile="$DIR/$name.pid"
        [ -e "$pidfile" ] || continue
        local pid
        pid=$(cat "$pidfile")
        kill -CONT "$pid" 2>/dev/null || true
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
    rm -rf "$DIR"
    echo "down"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
