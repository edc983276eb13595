#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# On the control plane, when a worker leaves the stack (before its host is stopped and cleaned):
# drains the node (PodDisruptionBudgets respected) and deletes its Node object. A node whose host
# is already gone drains too: pods it can no longer confirm deleted are skipped after a while,
# and deleting the Node lets their controllers recreate them elsewhere (a StatefulSet's pod too).
# Usage: NODE_NAME=w1 remove-node.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${NODE_NAME:?}"
export KUBECONFIG=$VMP_ETC/admin.kubeconfig
if kubectl get node "$NODE_NAME" > /dev/null 2>&1; then
  log "draining node $NODE_NAME"
  kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --timeout=300s --skip-wait-for-delete-timeout=20 >&2
  kubectl delete node "$NODE_NAME" --wait=true > /dev/null
  log "deleted node $NODE_NAME"
fi
