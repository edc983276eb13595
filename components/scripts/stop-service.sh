#!/usr/bin/env bash
# Undoes a unit: stops and disables it and removes its unit file (and DATA_DIR when given).
# Tolerates a unit that is already gone.
set -euo pipefail
: "${UNIT:?UNIT is required}"
systemctl disable --now "$UNIT" >/dev/null 2>&1 || true
rm -f "/etc/systemd/system/$UNIT.service"
# DATA_DIR: state the service kept (e.g. etcd's data): a destroyed cluster keeps no state.
[ -z "${DATA_DIR:-}" ] || rm -rf -- "$DATA_DIR"
systemctl daemon-reload 2>/dev/null || true
echo stopped
