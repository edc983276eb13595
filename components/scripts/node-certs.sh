#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# On a worker: installs its signed certs and the CA certs (stdin, name=base64 lines) and writes
# the kubelet and kube-proxy kubeconfigs that point at the API server.
# Usage: API_SERVER=https://10.0.0.1:6443 node-certs.sh < certs
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=pki-lib.sh
. "$(dirname "$0")/pki-lib.sh"
: "${API_SERVER:?}"
installed=()
store_cert() {  # etcd_ca -> etcd-ca.crt; the signer's expiry report is not a certificate
  if [ "$1" = expiry ]; then cat > /dev/null; return 0; fi
  write_file "$PKI/${1//_/-}.crt" 0644 quiet
  if (( VMP_CHANGED )); then installed+=("${1//_/-}"); fi
}
vmp_b64_parse store_cert
kubeconfig "$VMP_ETC/kubelet.kubeconfig" "$API_SERVER" kubelet kubelet
kubeconfig "$VMP_ETC/kube-proxy.kubeconfig" "$API_SERVER" kube-proxy kube-proxy
if (( ${#installed[@]} )); then log "installed certificates $(vmp_join ", " "${installed[@]}")"; fi
pki_report
