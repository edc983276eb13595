#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# On the control plane, when a worker leaves the stack (before its host is stopped and cleaned):
# drains the node (PodDisruptionBudgets respected), deletes its Node object and its flannel
# subnet lease in etcd. A node whose host is already gone drains too: pods it can no longer
# confirm deleted are skipped after a while, and deleting the Node lets their controllers
# recreate them elsewhere (a StatefulSet's pod included).
# Usage: NODE_NAME=w1 NODE_ADDR=10.0.0.11 ETCD_PREFIX=/coreos.com/network remove-node.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${NODE_NAME:?}" "${NODE_ADDR:?}" "${ETCD_PREFIX:?}"
export KUBECONFIG=$VMP_ETC/admin.kubeconfig
if kubectl get node "$NODE_NAME" > /dev/null 2>&1; then
  log "draining node $NODE_NAME"
  kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --timeout=300s --skip-wait-for-delete-timeout=20 >&2
  kubectl delete node "$NODE_NAME" --wait=true > /dev/null
  log "deleted node $NODE_NAME"
fi
# flannel's lease: key <prefix>/subnets/<subnet>, value JSON naming the node's PublicIP.
keys=$(vmp_etcdctl get --prefix "$ETCD_PREFIX/subnets/" --print-value-only=false |
  awk -v ip="\"PublicIP\":\"$NODE_ADDR\"" 'NR % 2 == 1 {key = $0} NR % 2 == 0 && index($0, ip) {print key}')
for key in $keys; do
  vmp_etcdctl del "$key" > /dev/null
  log "released flannel lease $key"
done
