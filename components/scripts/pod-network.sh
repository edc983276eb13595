#!/usr/bin/env bash
# Stores the flannel pod-network config (stdin, JSON) in etcd, writing only when it differs,
# so re-runs are no-ops and nodes' leases are untouched.
# Usage: ETCD_PREFIX=/coreos.com/network pod-network.sh < network.json
set -euo pipefail
. /usr/local/lib/vm-platform/lib.sh
: "${ETCD_PREFIX:?}"
want=$(cat)
export ETCDCTL_API=3
ctl() { etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/vm-platform/pki/etcd-ca.crt \
  --cert=/etc/vm-platform/pki/etcd-admin.crt --key=/etc/vm-platform/pki/etcd-admin.key "$@"; }
have=$(ctl get --print-value-only "$ETCD_PREFIX/config")
if [ "$have" = "$want" ]; then echo unchanged; else ctl put "$ETCD_PREFIX/config" "$want" >/dev/null; echo changed; fi
ctl get --print-value-only "$ETCD_PREFIX/config"
