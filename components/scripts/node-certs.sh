#!/usr/bin/env bash
# On a worker: installs its signed certs and the CA certs (stdin, name=base64 lines) and writes
# the kubelet and kube-proxy kubeconfigs that point at the API server.
# Usage: API_SERVER=https://10.0.0.1:6443 node-certs.sh < certs
set -euo pipefail
. /usr/local/lib/vm-platform/lib.sh
. /usr/local/lib/vm-platform/pki-lib.sh
: "${API_SERVER:?}"
# name=base64 per line; split by hand: `IFS== read` would drop a trailing "=" of the padding.
while IFS= read -r line || [ -n "$line" ]; do
  name=${line%%=*} data=${line#*=}
  [ -n "$line" ] && [ "$name" != "$line" ] || continue
  echo "$data" | base64 -d | write_file "$PKI/${name//_/-}.crt" 0644  # etcd_ca -> etcd-ca.crt
done
kubeconfig /etc/vm-platform/kubelet.kubeconfig "$API_SERVER" kubelet kubelet
kubeconfig /etc/vm-platform/kube-proxy.kubeconfig "$API_SERVER" kube-proxy kube-proxy
