#!/usr/bin/env bash
# (Re)starts one systemd unit and waits until it is active and, when HEALTH is given, healthy.
# Run by a restart resource whose triggers are the hashes of exactly the files UNIT reads, so
# a change to one of them restarts this unit and no other.
# Usage: UNIT=kubelet [HEALTH='curl -sk https://127.0.0.1:10250/healthz'] [TIMEOUT=120] restart-service.sh
set -euo pipefail
. /usr/local/lib/vm-platform/lib.sh
: "${UNIT:?UNIT is required}"
systemctl daemon-reload
systemctl enable "$UNIT" >/dev/null 2>&1
log "restarting $UNIT"
systemctl restart "$UNIT"
if ! wait_for "${TIMEOUT:-120}" "$UNIT" bash -c "systemctl is-active --quiet '$UNIT' && ${HEALTH:-true}"; then
  systemctl status --no-pager "$UNIT" >&2 || true
  journalctl -u "$UNIT" -n 40 --no-pager >&2 || true
  exit 1
fi
systemctl show -p ActiveEnterTimestampMonotonic --value "$UNIT"
