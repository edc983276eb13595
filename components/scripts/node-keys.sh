#!/usr/bin/env bash
# On a worker: makes its private keys (once) and prints CSRs (public) as name=base64 lines for
# the control plane to sign: the kubelet (client and serving), kube-proxy and flanneld (etcd).
# Usage: NODE_NAME=w1 node-keys.sh
set -euo pipefail
. /usr/local/lib/vm-platform/lib.sh
. /usr/local/lib/vm-platform/pki-lib.sh
: "${NODE_NAME:?}"
install -d -m 0700 "$PKI"
for pair in "kubelet:CN=system:node:$NODE_NAME,O=system:nodes" "kube-proxy:CN=system:kube-proxy" "flanneld:CN=flanneld-$NODE_NAME"; do
  name=${pair%%:*} subject=${pair#*:}
  new_key "$PKI/$name.key"
  echo "$name=$(openssl req -new -key "$PKI/$name.key" -subj "$(subj_arg "$subject")" | base64 -w0)"
done
