#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Installs one executable as /usr/local/bin/NAME from either a release URL (sha256-checked) or a
# file already copied to the host (SRC). A tarball URL names the MEMBER to take out of it.
# Skips the work when the installed file already has the expected checksum.
# Usage: NAME=kubelet URL=https://... [SHA256=...] [MEMBER=dir/etcd] install-binary.sh
#        NAME=kubelet SRC=/var/lib/vm-platform/stage/kubelet SHA256=... install-binary.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${NAME:?NAME is required}"
dest=/usr/local/bin/$NAME
if [ -n "${SHA256:-}" ] && [ -f "$dest" ] && echo "$SHA256  $dest" | sha256sum -c --status; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${SRC:-}" ]; then
  cp "$SRC" "$work/bin"
  from=$SRC
else
  : "${URL:?URL or SRC is required}"
  from=$URL
  curl -fsSL --retry 3 -o "$work/download" "$URL"
  if [ -z "${SHA256:-}" ]; then
    # No pinned checksum in the stack: take the one published beside the release file.
    SHA256=$(curl -fsSL --retry 3 "$URL.sha256" | awk '{print $1}')
    [ "${#SHA256}" = 64 ] || { log "no sha256 published for $URL"; exit 1; }
    CHECK_ARCHIVE=1
  fi
  if [ -n "${MEMBER:-}" ]; then
    if [ "${CHECK_ARCHIVE:-0}" = 1 ] || [ -n "${ARCHIVE_SHA256:-}" ]; then
      echo "${ARCHIVE_SHA256:-$SHA256}  $work/download" | sha256sum -c --status || { log "checksum mismatch for $URL"; exit 1; }
      SHA256=
    fi
    tar -xzf "$work/download" -C "$work" "$MEMBER"
    mv "$work/$MEMBER" "$work/bin"
  else
    mv "$work/download" "$work/bin"
  fi
fi
if [ -n "${SHA256:-}" ]; then
  echo "$SHA256  $work/bin" | sha256sum -c --status || { log "checksum mismatch for $NAME"; exit 1; }
fi
install -m 0755 "$work/bin" "$dest.vmp-new"
mv -f "$dest.vmp-new" "$dest"
log "installed $dest from $from"
