#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Installs stdin as DEST with MODE (default 0644), atomically and only when it changed.
# Usage: DEST=/etc/x.conf MODE=0600 install-file.sh < content
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${DEST:?DEST is required}"
write_file "$DEST" "${MODE:-0644}"
