#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# On the control plane, before any Kubernetes binary is replaced: compares the installed
# version (kube-apiserver --version) with TARGET. Refuses a downgrade and a step of more than
# one minor version; for an upgrade, takes an etcd snapshot first (DIR, KEEP). Prints
# `from=<installed or none> to=<TARGET> snapshot=<path or none>`.
# Usage: TARGET=v1.34.4 DIR=/var/backups/vm-platform/etcd KEEP=14 upgrade-gate.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=etcd-lib.sh
. "$(dirname "$0")/etcd-lib.sh"
: "${TARGET:?}" "${DIR:?}" "${KEEP:?}"
installed=
if [ -x /usr/local/bin/kube-apiserver ]; then
  installed=$(/usr/local/bin/kube-apiserver --version | awk '{print $2}')
fi
snapshot=none
if [ -n "$installed" ] && [ "$installed" != "$TARGET" ]; then
  IFS=. read -r from_major from_minor from_patch <<< "${installed#v}"
  IFS=. read -r to_major to_minor to_patch <<< "${TARGET#v}"
  from=$(( from_major * 1000000 + from_minor * 1000 + ${from_patch%%[!0-9]*} ))
  to=$(( to_major * 1000000 + to_minor * 1000 + ${to_patch%%[!0-9]*} ))
  if (( to < from )); then
    log "kubernetesVersion: refusing to downgrade the cluster from $installed to $TARGET (the API server may already have stored objects in newer versions); set kubernetesVersion back to $installed"
    exit 1
  fi
  if (( to_major != from_major || to_minor > from_minor + 1 )); then
    log "kubernetesVersion: refusing to upgrade from $installed to $TARGET in one step (one minor version at a time); set kubernetesVersion to v$from_major.$((from_minor + 1)).<patch> first"
    exit 1
  fi
  if systemctl is-active --quiet etcd; then
    log "upgrading Kubernetes $installed -> $TARGET: etcd snapshot first"
    snapshot=$(vmp_etcd_snapshot pre-upgrade "$DIR" "$KEEP" "$installed-to-$TARGET")
  fi
fi
echo "from=${installed:-none} to=$TARGET snapshot=$snapshot"
