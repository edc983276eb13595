#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# On the control plane: a worker's flannel subnet lease in etcd (key <prefix>/subnets/<subnet>,
# its value naming the node's PublicIP). ACTION=show prints the leased subnets (none before the
# worker's flanneld first starts); ACTION=release deletes them, once the worker leaves the stack
# and its flanneld has stopped.
# Usage: ACTION=show|release NODE_ADDR=10.0.0.11 ETCD_PREFIX=/coreos.com/network flannel-lease.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${ACTION:?}" "${NODE_ADDR:?}" "${ETCD_PREFIX:?}"
# etcdctl prints key and value on alternate lines.
keys=$(vmp_etcdctl get --prefix "$ETCD_PREFIX/subnets/" |
  awk -v ip="\"PublicIP\":\"$NODE_ADDR\"" 'NR % 2 == 1 {key = $0} NR % 2 == 0 && index($0, ip) {print key}')
case $ACTION in
  show) printf '%s\n' "$keys" | sed -n "s|^$ETCD_PREFIX/subnets/||p" ;;
  release)
    for key in $keys; do
      vmp_etcdctl del "$key" > /dev/null
      log "released flannel lease $key"
    done
    ;;
  *) log "ACTION must be show or release, not $ACTION"; exit 2 ;;
esac
