# Shared helpers for the vm-platform host scripts. Sourced, never executed.
# Every script converges: running it twice leaves the host as running it once did.

log() { printf '[vm-platform %s] %s\n' "$(hostname)" "$*" >&2; }

# write_file DEST MODE: stdin -> temp file beside DEST -> mv, only when the content differs.
# Prints "changed" or "unchanged" so callers (and the Pulumi log) can tell what happened.
write_file() {
  local dest=$1 mode=$2 tmp
  install -d -m 0755 "$(dirname "$dest")"
  tmp=$(mktemp "$(dirname "$dest")/.vmp.XXXXXX")
  cat > "$tmp"
  chmod "$mode" "$tmp"
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest"; then
    rm -f "$tmp"; echo unchanged
  else
    mv -f "$tmp" "$dest"; echo changed
  fi
}

# wait_for SECONDS DESCRIPTION CMD...: poll CMD once a second until it succeeds.
wait_for() {
  local timeout=$1 what=$2; shift 2
  local start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - start >= timeout )); then log "timed out after ${timeout}s waiting for $what"; return 1; fi
    sleep 1
  done
  log "$what ready after $((SECONDS - start))s"
}

b64() { base64 -w0 < "$1"; }
