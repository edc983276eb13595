#!/usr/bin/env bash
# On the control plane: waits until a node has registered and reports Ready.
# Usage: NODE_NAME=w1 TIMEOUT=300 wait-node-ready.sh
set -euo pipefail
. /usr/local/lib/vm-platform/lib.sh
: "${NODE_NAME:?}"
export KUBECONFIG=/etc/vm-platform/admin.kubeconfig
wait_for "${TIMEOUT:-300}" "node $NODE_NAME registered" kubectl get node "$NODE_NAME"
kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout="${TIMEOUT:-300}s" >&2
kubectl get node "$NODE_NAME" -o jsonpath='{.status.nodeInfo.kubeletVersion}'
