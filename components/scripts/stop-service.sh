#!/usr/bin/env bash
# Undoes a unit: stops and disables it and removes its unit file. Tolerates one already gone.
set -euo pipefail
: "${UNIT:?UNIT is required}"
systemctl disable --now "$UNIT" >/dev/null 2>&1 || true
rm -f "/etc/systemd/system/$UNIT.service"
systemctl daemon-reload 2>/dev/null || true
echo stopped
