#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Control-plane PKI: cluster CA, etcd CA, service-account keys and every control-plane cert and
# kubeconfig. Runs on the control-plane host, so CA keys never leave it. Prints the CA
# certificates (public) as name=base64 lines for the workers, and an "expiry" line (pki_expiry)
# for every certificate on this host.
# Usage: CP_NAME=master CP_ADDR=10.0.0.1 SERVICE_IP=10.254.0.1 CLUSTER_DOMAIN=cluster.local API_PORT=6443 \
#        [CA_DAYS=3650] [CERT_DAYS=365] [RENEW=name,name@notAfter] pki-init.sh
# RENEW (components/previous.py: leaf certificates the last deployment reported within
# pki.renewDays of expiry) reissues those certificates with their own keys; CAs are never renewed
# here (README, Certificate lifetime).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=pki-lib.sh
. "$(dirname "$0")/pki-lib.sh"
: "${CP_NAME:?}" "${CP_ADDR:?}" "${SERVICE_IP:?}" "${CLUSTER_DOMAIN:?}" "${API_PORT:?}"
install -d -m 0700 "$PKI"
renew=${RENEW:-}
renew=${renew%@*}
for name in ${renew//,/ }; do
  case $name in
    ca | etcd-ca) log "RENEW names the CA '$name': CAs are rotated by hand (README)"; exit 1 ;;
    *[!a-z-]* | '') log "RENEW: not a certificate name: '$name'"; exit 1 ;;
  esac
  rm -f "$PKI/$name.stamp"  # issue() then signs it again
done
new_ca ca vm-platform-ca
new_ca etcd-ca vm-platform-etcd-ca
new_key "$PKI/sa.key"
openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2> /dev/null
api_sans="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:$CP_NAME,DNS:localhost,IP:$CP_ADDR,IP:$SERVICE_IP,IP:127.0.0.1"
issue apiserver ca server "$api_sans" "CN=kube-apiserver"
issue apiserver-kubelet-client ca client "" "CN=kube-apiserver-kubelet-client,O=system:masters"
issue apiserver-etcd-client etcd-ca client "" "CN=kube-apiserver-etcd-client"
issue etcd-server etcd-ca both "DNS:$CP_NAME,DNS:localhost,IP:$CP_ADDR,IP:127.0.0.1" "CN=$CP_NAME"
issue etcd-admin etcd-ca client "" "CN=etcd-admin"
issue controller-manager ca client "" "CN=system:kube-controller-manager"
issue scheduler ca client "" "CN=system:kube-scheduler"
issue admin ca client "" "CN=vm-platform-admin,O=system:masters"
issue registry ca server "DNS:$CP_NAME,IP:$CP_ADDR,IP:127.0.0.1" "CN=$CP_NAME-registry"
local_api="https://127.0.0.1:$API_PORT"
kubeconfig "$VMP_ETC/controller-manager.kubeconfig" "$local_api" controller-manager system:kube-controller-manager
kubeconfig "$VMP_ETC/scheduler.kubeconfig" "$local_api" scheduler system:kube-scheduler
kubeconfig "$VMP_ETC/admin.kubeconfig" "$local_api" admin vm-platform-admin
pki_report
vmp_b64_emit ca "$PKI/ca.crt"
vmp_b64_emit etcd_ca "$PKI/etcd-ca.crt"
pki_expiry "$PKI"/*.crt
