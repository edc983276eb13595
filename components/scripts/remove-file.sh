#!/usr/bin/env bash
# Undoes install-file.sh. Tolerates a file (or a whole host) that is already gone.
set -euo pipefail
: "${DEST:?DEST is required}"
rm -f -- "$DEST"
echo removed
