#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Keeps a marked block of "address name" lines (stdin) in /etc/hosts so every node resolves
# every other node by name. ACTION=remove deletes the block.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
begin='# BEGIN vm-platform nodes' end='# END vm-platform nodes'
block=$( [ "${ACTION:-apply}" = remove ] || { echo "$begin"; cat; echo "$end"; } )
current=$(sed "/^$begin\$/,/^$end\$/d" /etc/hosts)
{ printf '%s\n' "$current"; [ -z "$block" ] || printf '%s\n' "$block"; } | write_file /etc/hosts 0644
