#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# etcd snapshots on a systemd timer (etcdSnapshots.intervalMinutes; 0 turns the timer off).
#   ACTION=schedule INTERVAL=360 DIR=/var/backups/vm-platform/etcd KEEP=14 etcd-snapshot.sh
#   ACTION=unschedule etcd-snapshot.sh   # the step's delete: the timer goes, the snapshots stay
#   ACTION=save [KIND=scheduled] DIR=... KEEP=... etcd-snapshot.sh   # what the timer runs; prints the path
#   ACTION=list DIR=... etcd-snapshot.sh      # newest first: name, bytes, time (UTC)
#   ACTION=restore DIR=... [SNAPSHOT=latest|NAME] etcd-snapshot.sh    # python3 -m tools.etcd restore
# Restore: the control plane's services stop; etcdutl restores the snapshot into a fresh data
# directory (revisions bumped and marked compacted: every watcher relists); the data it replaces
# is kept beside it (<data dir>.before-restore-<time>); everything starts again.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=etcd-lib.sh
. "$(dirname "$0")/etcd-lib.sh"
units=/etc/systemd/system
case "${ACTION:?}" in
  save)
    vmp_etcd_snapshot "${KIND:-scheduled}" "${DIR:?}" "${KEEP:?}"
    ;;
  list)
    { find "${DIR:?}" -maxdepth 1 -name '*.db' -printf '%T@ %f %s %TY-%Tm-%TdT%TH:%TM:%TSZ\n' 2> /dev/null || true; } | sort -rn | cut -d' ' -f2-
    ;;
  restore)
    vmp_etcd_restore "${DIR:?}" "${SNAPSHOT:-latest}"
    ;;
  schedule)
    : "${INTERVAL:?}" "${DIR:?}" "${KEEP:?}"
    if [ "$INTERVAL" = 0 ]; then
      ACTION=unschedule "$0"
      exit 0
    fi
    printf '%s\n' "[Unit]" "Description=etcd snapshot (vm-platform)" "After=etcd.service" "Requires=etcd.service" "" \
      "[Service]" "Type=oneshot" "Environment=ACTION=save KIND=scheduled DIR=$DIR KEEP=$KEEP" \
      "ExecStart=$VMP_LIB/etcd-snapshot.sh" | write_file "$units/etcd-snapshot.service" 0644 quiet
    changed=$VMP_CHANGED
    printf '%s\n' "[Unit]" "Description=etcd snapshot every ${INTERVAL} min (vm-platform)" "" \
      "[Timer]" "OnBootSec=${INTERVAL}min" "OnUnitActiveSec=${INTERVAL}min" "AccuracySec=1min" "" \
      "[Install]" "WantedBy=timers.target" | write_file "$units/etcd-snapshot.timer" 0644 quiet
    changed=$((changed | VMP_CHANGED))
    systemctl daemon-reload
    vmp_quietly systemctl enable etcd-snapshot.timer
    if (( changed )) || ! systemctl is-active --quiet etcd-snapshot.timer; then
      systemctl restart etcd-snapshot.timer
      log "etcd snapshots every ${INTERVAL} min into $DIR (keeping $KEEP)"
    fi
    ;;
  unschedule)
    systemctl disable --now etcd-snapshot.timer > /dev/null 2>&1 || true
    if [ -e "$units/etcd-snapshot.timer" ] || [ -e "$units/etcd-snapshot.service" ]; then
      rm -f "$units/etcd-snapshot.timer" "$units/etcd-snapshot.service"
      systemctl daemon-reload 2> /dev/null || true
      log "removed the etcd snapshot timer (the snapshots stay)"
    fi
    ;;
  *) log "ACTION must be save, list, restore, schedule or unschedule, not '$ACTION'"; exit 2 ;;
esac
