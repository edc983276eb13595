# shellcheck shell=bash
# etcd snapshots on the control-plane host, for etcd-snapshot.sh (the timer's job) and
# upgrade-gate.sh (the snapshot before a version change). Sourced after lib.sh.

# vmp_etcd_snapshot KIND DIR KEEP [SUFFIX]: a snapshot of the local etcd as
# DIR/KIND-<UTC time>[-SUFFIX].db (mode 0600: it holds every Secret), keeping the newest KEEP
# snapshots of KIND. Prints the path; logs its size and how long it took.
vmp_etcd_snapshot() {
  local kind=$1 dir=$2 keep=$3 suffix=${4:-} path start=$SECONDS old
  [ -d "$dir" ] || install -d -m 0700 "$dir"
  path="$dir/$kind-$(date -u +%Y%m%dT%H%M%SZ)${suffix:+-$suffix}.db"
  # etcdctl writes PATH.part and renames it: an interrupted save leaves no file named .db.
  (umask 077 && vmp_quietly vmp_etcdctl snapshot save "$path")
  log "etcd snapshot $path: $(stat -c %s "$path") bytes in $((SECONDS - start))s"
  find "$dir" -maxdepth 1 -name "$kind-*.db" -printf '%T@ %p\n' | sort -rn | tail -n +"$((keep + 1))" | while read -r _ old; do
    rm -f -- "$old"
    log "removed the old snapshot $old (etcdSnapshots.keep: $keep)"
  done
  printf '%s\n' "$path"
}
