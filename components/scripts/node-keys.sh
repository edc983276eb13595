#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# On a worker: makes its private keys (once) and prints CSRs (public) as name=base64 lines for
# the control plane to sign: the kubelet (client and serving), kube-proxy and flanneld (etcd).
# Usage: NODE_NAME=w1 node-keys.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=pki-lib.sh
. "$(dirname "$0")/pki-lib.sh"
: "${NODE_NAME:?}"
install -d -m 0700 "$PKI"
for pair in "kubelet:CN=system:node:$NODE_NAME,O=system:nodes" "kube-proxy:CN=system:kube-proxy" "flanneld:CN=flanneld-$NODE_NAME"; do
  name=${pair%%:*} subject=${pair#*:}
  new_key "$PKI/$name.key"
  openssl req -new -key "$PKI/$name.key" -subj "$(subj_arg "$subject")" | vmp_b64_emit "$name"
done
if (( ${#NEW_KEYS[@]} )); then log "made private keys $(vmp_join ", " "${NEW_KEYS[@]}")"; fi
