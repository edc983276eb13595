#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# On the control plane: signs one worker's CSRs (stdin, name=base64 lines from node-keys.sh)
# with subjects and SANs fixed here, never taken from the request. Prints certs the same way,
# then their "expiry" line (pki_expiry).
# Usage: NODE_NAME=w1 NODE_ADDR=10.0.0.2 [CERT_DAYS=365] sign-node.sh < csrs
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=pki-lib.sh
. "$(dirname "$0")/pki-lib.sh"
: "${NODE_NAME:?}" "${NODE_ADDR:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
store_csr() { cat > "$work/$1.csr"; }
vmp_b64_parse store_csr
for name in kubelet kube-proxy flanneld; do
  [ -s "$work/$name.csr" ] || { log "no $name CSR in the input"; exit 1; }
done
sign_csr "$work/kubelet.csr" ca both "DNS:$NODE_NAME,IP:$NODE_ADDR" "CN=system:node:$NODE_NAME,O=system:nodes" > "$work/kubelet.crt"
sign_csr "$work/kube-proxy.csr" ca client "" "CN=system:kube-proxy" > "$work/kube-proxy.crt"
sign_csr "$work/flanneld.csr" etcd-ca client "" "CN=flanneld-$NODE_NAME" > "$work/flanneld.crt"
for name in kubelet kube-proxy flanneld; do vmp_b64_emit "$name" "$work/$name.crt"; done
pki_expiry "$work"/kubelet.crt "$work"/kube-proxy.crt "$work"/flanneld.crt
log "signed the kubelet, kube-proxy and flanneld certificates of $NODE_NAME ($CERT_DAYS days)"
