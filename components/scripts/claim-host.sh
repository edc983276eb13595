#!/usr/bin/env bash
# Runs first on every host, inside the script bundle, before anything else touches the host:
# the host belongs to one stack. A second stack pointed at the same hosts (another state backend,
# a copy of the project) would otherwise silently take over its services and, through the
# cluster's API, every Kubernetes object the first stack manages.
# Usage: OWNER_ID=<16 hex> OWNER=<project/stack> claim-host.sh     (self-contained: no lib.sh yet)
set -euo pipefail
: "${OWNER_ID:?}" "${OWNER:?}"
marker=${VMP_ETC:-/etc/vm-platform}/owner
if [ -s "$marker" ]; then
  read -r id rest < "$marker" || true
  if [ "$id" != "$OWNER_ID" ]; then
    printf '[vm-platform %s] this host is managed by another stack (%s, id %s); refusing to take it over for %s (id %s).\n' \
      "$HOSTNAME" "$rest" "$id" "$OWNER" "$OWNER_ID" >&2
    printf '  Run pulumi from that stack (same state backend and stack file), or, if that stack is gone for good,\n' >&2
    printf '  remove %s on this host and run pulumi up again.\n' "$marker" >&2
    exit 1
  fi
  exit 0
fi
install -d -m 0755 "$(dirname "$marker")"
printf '%s %s\n' "$OWNER_ID" "$OWNER" > "$marker.tmp"
mv -f "$marker.tmp" "$marker"
printf '[vm-platform %s] claimed for %s\n' "$HOSTNAME" "$OWNER" >&2
