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

# vmp_etcd_restore DIR SNAPSHOT: the local etcd's data replaced by SNAPSHOT (a file name in DIR,
# or "latest": the newest of any kind). etcd's identity (name, peer URL, cluster, data dir) is
# read from its unit, so the restored member is the one the unit runs. Prints one summary line.
vmp_etcd_restore() {
  local dir=$1 want=$2 snap unit=/etc/systemd/system/etcd.service name peer cluster data work kept start=$SECONDS svc
  if [ "$want" = latest ]; then
    # No directory yet is no snapshot (not a failed pipeline that ends the script unexplained).
    snap=$({ find "$dir" -maxdepth 1 -name '*.db' -printf '%T@ %p\n' 2> /dev/null || true; } | sort -rn | head -n 1 | cut -d' ' -f2-)
  else
    snap=$dir/${want##*/}
  fi
  if [ -z "$snap" ] || [ ! -f "$snap" ]; then
    log "no snapshot ${want} in $dir (python3 -m tools.etcd list shows them)"
    return 1
  fi
  flag() { grep -o -- "--$1=[^ ]*" "$unit" | head -n 1 | cut -d= -f2-; }
  name=$(flag name) peer=$(flag initial-advertise-peer-urls) cluster=$(flag initial-cluster) data=$(flag data-dir)
  if [ -z "$name" ] || [ -z "$data" ]; then
    log "cannot read etcd's --name and --data-dir from $unit: is this the control-plane host?"
    return 1
  fi
  log "restoring etcd from $snap ($(stat -c %s "$snap") bytes): stopping the control plane"
  systemctl stop etcd-snapshot.timer kube-scheduler kube-controller-manager kube-apiserver etcd 2> /dev/null || true
  work=$(mktemp -d "$data.restore.XXXXXX")
  vmp_quietly etcdutl snapshot restore "$snap" --data-dir "$work/data" --name "$name" --initial-cluster "$cluster" \
    --initial-advertise-peer-urls "$peer" --bump-revision 1000000000 --mark-compacted
  kept=
  if [ -e "$data" ]; then
    kept=$data.before-restore-$(date -u +%Y%m%dT%H%M%SZ)
    mv "$data" "$kept"
  fi
  mv "$work/data" "$data"
  chmod 0700 "$data"
  rmdir "$work"
  for svc in etcd kube-apiserver kube-controller-manager kube-scheduler; do
    systemctl start "$svc"
  done
  wait_for 120 "etcd healthy" vmp_etcdctl endpoint health
  wait_for 180 "the API server ready" vmp_admin_curl "https://127.0.0.1:$(grep -o -- '--secure-port=[0-9]*' /etc/systemd/system/kube-apiserver.service | cut -d= -f2)/readyz"
  systemctl start etcd-snapshot.timer 2> /dev/null || true
  log "restored etcd from $snap in $((SECONDS - start))s${kept:+; the data it replaced is kept in $kept}"
  echo "restored=$snap seconds=$((SECONDS - start)) kept=${kept:-none}"
}
