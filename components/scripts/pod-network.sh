#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Stores the flannel pod-network config (stdin, JSON) in etcd, writing only when it differs,
# so re-runs are no-ops and nodes' leases are untouched. Prints the stored config.
# Usage: ETCD_PREFIX=/coreos.com/network pod-network.sh < network.json
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${ETCD_PREFIX:?}"
want=$(cat)
have=$(vmp_etcdctl get --print-value-only "$ETCD_PREFIX/config")
if [ "$have" != "$want" ]; then
  vmp_etcdctl put "$ETCD_PREFIX/config" "$want" > /dev/null
  log "stored the pod-network config at $ETCD_PREFIX/config"
fi
vmp_etcdctl get --print-value-only "$ETCD_PREFIX/config"
