#!/usr/bin/env bash
# Undoes pki-init.sh / node-keys.sh: removes keys, certificates and kubeconfigs on this host.
set -euo pipefail
rm -rf /etc/vm-platform/pki /etc/vm-platform/*.kubeconfig
echo removed
