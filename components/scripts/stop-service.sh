#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Undoes a unit: stops and disables it and removes its unit file (and DATA_DIR when given).
# Tolerates a unit that is already gone.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${UNIT:?UNIT is required}"
systemctl disable --now "$UNIT" > /dev/null 2>&1 || true
if [ -e "/etc/systemd/system/$UNIT.service" ]; then
  rm -f "/etc/systemd/system/$UNIT.service"
  log "stopped $UNIT and removed its unit file"
fi
# DATA_DIR: state the service kept (e.g. etcd's data): a destroyed cluster keeps no state.
if [ -n "${DATA_DIR:-}" ] && [ -e "$DATA_DIR" ]; then
  rm -rf -- "$DATA_DIR"
  log "removed $DATA_DIR"
fi
systemctl daemon-reload 2> /dev/null || true
