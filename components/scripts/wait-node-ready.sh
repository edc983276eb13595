#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# On the control plane: waits until a node has registered and reports Ready. Prints the
# kubelet version the API server reports for it.
# Usage: NODE_NAME=w1 TIMEOUT=300 wait-node-ready.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${NODE_NAME:?}"
export KUBECONFIG=$VMP_ETC/admin.kubeconfig
start=$SECONDS
wait_for "${TIMEOUT:-300}" "node $NODE_NAME registered" kubectl get node "$NODE_NAME"
kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout="${TIMEOUT:-300}s" > /dev/null
if (( SECONDS - start > 1 )); then log "node $NODE_NAME Ready after $((SECONDS - start))s"; fi
kubectl get node "$NODE_NAME" -o jsonpath='{.status.nodeInfo.kubeletVersion}'
