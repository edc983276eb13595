#!/usr/bin/env bash
# Undoes pod-network.sh. Tolerates an etcd that is already gone.
set -euo pipefail
: "${ETCD_PREFIX:?}"
ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/vm-platform/pki/etcd-ca.crt \
  --cert=/etc/vm-platform/pki/etcd-admin.crt --key=/etc/vm-platform/pki/etcd-admin.key \
  --command-timeout=5s del --prefix "$ETCD_PREFIX" >/dev/null 2>&1 || true
echo removed
