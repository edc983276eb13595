#!/usr/bin/env bash
# On the control plane: signs one worker's CSRs (stdin, name=base64 lines from node-keys.sh)
# with subjects and SANs fixed here, never taken from the request. Prints certs the same way.
# Usage: NODE_NAME=w1 NODE_ADDR=10.0.0.2 sign-node.sh < csrs
set -euo pipefail
. /usr/local/lib/vm-platform/lib.sh
. /usr/local/lib/vm-platform/pki-lib.sh
: "${NODE_NAME:?}" "${NODE_ADDR:?}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# name=base64 per line; split by hand: `IFS== read` would drop a trailing "=" of the padding.
while IFS= read -r line || [ -n "$line" ]; do
  name=${line%%=*} data=${line#*=}
  [ -n "$line" ] && [ "$name" != "$line" ] || continue
  echo "$data" | base64 -d > "$work/$name.csr"
done
sign_csr "$work/kubelet.csr" ca both "DNS:$NODE_NAME,IP:$NODE_ADDR" "CN=system:node:$NODE_NAME,O=system:nodes" > "$work/kubelet.crt"
sign_csr "$work/kube-proxy.csr" ca client "" "CN=system:kube-proxy" > "$work/kube-proxy.crt"
sign_csr "$work/flanneld.csr" etcd-ca client "" "CN=flanneld-$NODE_NAME" > "$work/flanneld.crt"
for name in kubelet kube-proxy flanneld; do echo "$name=$(b64 "$work/$name.crt")"; done
