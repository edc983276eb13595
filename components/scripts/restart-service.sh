#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# (Re)starts one systemd unit and waits until it is active and, when HEALTH is given, healthy.
# Run by a restart resource whose triggers are the hashes of exactly the files UNIT reads, so
# a change to one of them restarts this unit and no other. HEALTH is shell text run in a bash
# that has lib.sh's functions (e.g. 'vmp_etcdctl endpoint health'). Prints the unit's
# ActiveEnterTimestampMonotonic (when this start happened).
# Usage: UNIT=kubelet [HEALTH='vmp_node_ready https://10.0.0.1:6443 w1'] [TIMEOUT=120] restart-service.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${UNIT:?UNIT is required}"
systemctl daemon-reload
vmp_quietly systemctl enable "$UNIT"
systemctl restart "$UNIT"
healthy() { systemctl is-active --quiet "$UNIT" && vmp_health "${HEALTH:-true}"; }
if ! wait_for "${TIMEOUT:-120}" "$UNIT" healthy; then
  systemctl status --no-pager "$UNIT" >&2 || true
  journalctl -u "$UNIT" -n 40 --no-pager >&2 || true
  exit 1
fi
log "restarted $UNIT: ready after ${WAITED}s"
systemctl show -p ActiveEnterTimestampMonotonic --value "$UNIT"
