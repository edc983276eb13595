#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# On the control plane, around one worker's Kubernetes upgrade (one worker at a time):
#   ACTION=drain: a registered node whose kubelet is not TARGET yet is cordoned (annotated as
#     cordoned for the upgrade unless it already was unschedulable) and drained, respecting the
#     PodDisruptionBudgets. A new node, or one already at TARGET, is left alone.
#   ACTION=uncordon: waits until the node is Ready with a TARGET kubelet, then uncordons it if
#     the drain cordoned it (a node in maintenance.nodes stays cordoned). Prints the version.
# Usage: ACTION=drain|uncordon NODE_NAME=w1 TARGET=v1.34.4 [TIMEOUT=600] node-upgrade.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${ACTION:?}" "${NODE_NAME:?}" "${TARGET:?}"
export KUBECONFIG=$VMP_ETC/admin.kubeconfig
timeout=${TIMEOUT:-600}
mark=vm-platform/upgrade-cordoned
field() { kubectl get node "$NODE_NAME" -o jsonpath="$1"; }
at_target() { [ "$(field '{.status.nodeInfo.kubeletVersion}')" = "$TARGET" ] && ready; }
ready() { [ "$(field '{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
case "$ACTION" in
  drain)
    kubectl get node "$NODE_NAME" > /dev/null 2>&1 || exit 0
    version=$(field '{.status.nodeInfo.kubeletVersion}')
    [ "$version" != "$TARGET" ] || exit 0
    if [ "$(field '{.spec.unschedulable}')" != true ]; then
      kubectl annotate node "$NODE_NAME" --overwrite "$mark=$TARGET" > /dev/null
    fi
    log "upgrading node $NODE_NAME $version -> $TARGET: draining it"
    start=$SECONDS
    kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --timeout="${timeout}s" --skip-wait-for-delete-timeout=20 >&2
    log "drained $NODE_NAME in $((SECONDS - start))s"
    ;;
  uncordon)
    wait_for "$timeout" "node $NODE_NAME Ready at $TARGET" at_target
    if [ -n "$(field "{.metadata.annotations.vm-platform/upgrade-cordoned}")" ]; then
      kubectl uncordon "$NODE_NAME" > /dev/null
      kubectl annotate node "$NODE_NAME" "$mark-" > /dev/null
      log "node $NODE_NAME upgraded to $TARGET: uncordoned"
    fi
    field '{.status.nodeInfo.kubeletVersion}'
    ;;
  *) log "ACTION must be drain or uncordon, not '$ACTION'"; exit 2 ;;
esac
