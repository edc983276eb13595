#!/usr/bin/env bash
# Writes the registry's htpasswd (bcrypt) for USERNAME from the password on stdin.
set -euo pipefail
. /usr/local/lib/vm-platform/lib.sh
: "${USERNAME:?}" "${DEST:?}"
entry=$(htpasswd -iBn "$USERNAME")
printf '%s\n' "$entry" | write_file "$DEST" 0600
