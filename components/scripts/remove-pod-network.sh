#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Undoes pod-network.sh. Tolerates an etcd that is already gone.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${ETCD_PREFIX:?}"
if vmp_etcdctl --command-timeout=5s del --prefix "$ETCD_PREFIX" > /dev/null 2>&1; then
  log "removed the pod-network config under $ETCD_PREFIX"
fi
