#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Writes the registry's htpasswd (bcrypt) for USERNAME from the password on stdin.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${USERNAME:?}" "${DEST:?}"
entry=$(htpasswd -iBn "$USERNAME")
printf '%s\n' "$entry" | write_file "$DEST" 0600
