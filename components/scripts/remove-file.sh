#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Undoes install-file.sh. Tolerates a file (or a whole host) that is already gone.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${DEST:?DEST is required}"
if [ -e "$DEST" ] || [ -L "$DEST" ]; then
  rm -f -- "$DEST"
  log "removed $DEST"
fi
