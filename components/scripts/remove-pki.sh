#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Undoes pki-init.sh / node-keys.sh: removes keys, certificates and kubeconfigs on this host.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
if [ -d "$PKI" ] || compgen -G "$VMP_ETC/*.kubeconfig" > /dev/null; then
  rm -rf "$PKI" "$VMP_ETC"/*.kubeconfig
  log "removed $PKI and the kubeconfigs in $VMP_ETC"
fi
