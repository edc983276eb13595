# shellcheck shell=bash
# Shared helpers for the vm-platform host scripts. Sourced, never executed; scripts find it
# beside themselves (`. "$(dirname "$0")/lib.sh"`), installed or in the repo (tests).
# Every script converges: running it twice leaves the host as running it once did.
# Human lines go to stderr through `log` (what changed, how long until ready); stdout carries
# only the machine data a step's caller reads (digests, certificates, timestamps).

# The last stage of a pipeline runs in this shell, so `... | write_file` can set VMP_CHANGED.
shopt -s lastpipe

VMP_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The platform's config, kubeconfigs and (in pki/) keys and certificates. VMP_ETC is for tests
# only (they run the scripts against a temp directory); the program never sets it.
VMP_ETC=${VMP_ETC:-/etc/vm-platform}
PKI=$VMP_ETC/pki
# Results for the scripts that source this file: write_file sets VMP_CHANGED, wait_for WAITED.
VMP_CHANGED=0 WAITED=0

log() { printf '[vm-platform %s] %s\n' "$HOSTNAME" "$*" >&2; }

# vmp_quietly CMD...: run CMD with its output held back; shown (on stderr) only if CMD fails.
vmp_quietly() {
  local out rc=0
  out=$(mktemp)
  "$@" > "$out" 2>&1 || rc=$?
  if (( rc )); then cat "$out" >&2; fi
  rm -f "$out"
  return "$rc"
}

# write_file DEST MODE [quiet]: stdin -> temp file beside DEST -> mv, only when the content
# differs. Sets VMP_CHANGED to 1 (written) or 0 (already so); prints nothing. Logs the write
# unless "quiet" (for callers that sum several writes up in one line).
write_file() {
  local dest=$1 mode=$2 quiet=${3:-} dir tmp
  dir=$(dirname "$dest")
  # Only a missing directory is made: install -d -m would also re-mode an existing one (pki/).
  [ -d "$dir" ] || install -d -m 0755 "$dir"
  tmp=$(mktemp "$dir/.vmp.XXXXXX")
  cat > "$tmp"
  chmod "$mode" "$tmp"
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest"; then
    rm -f "$tmp"
    VMP_CHANGED=0
  else
    mv -f "$tmp" "$dest"
    # shellcheck disable=SC2034  # read by the scripts that source this file
    VMP_CHANGED=1
    [ "$quiet" = quiet ] || log "wrote $dest"
  fi
}

# wait_for SECONDS DESCRIPTION CMD...: poll CMD once a second until it succeeds. Sets WAITED
# to the seconds it took (callers say how long it took when that helps); logs only a timeout.
wait_for() {
  local timeout=$1 what=$2 start=$SECONDS
  shift 2
  until "$@" > /dev/null 2>&1; do
    if (( SECONDS - start >= timeout )); then
      log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 1
  done
  # shellcheck disable=SC2034  # read by the scripts that source this file
  WAITED=$((SECONDS - start))
}

# vmp_health CMD: run a health command (shell text from the program, e.g. HEALTH of
# restart-service.sh) in a fresh bash that has these functions (vmp_etcdctl, vmp_admin_curl, ...).
vmp_health() {
  bash -c '. "$1/lib.sh" && eval "$2"' vmp-health "$VMP_LIB" "$1"
}

b64() { base64 -w0 < "$1"; }

# vmp_join SEP ITEMS...: the items with SEP between them (for log lines listing what changed).
vmp_join() {
  local sep=$1 out=${2-} item
  shift 2 || shift
  for item; do out+="$sep$item"; done
  printf '%s' "$out"
}

# vmp_b64_emit NAME [FILE]: one "NAME=<base64 of FILE or stdin>" line, the format in which steps
# hand certificates and CSRs to each other through the program.
vmp_b64_emit() {
  local data
  vmp_b64_name_ok "$1" || return 1
  data=$(base64 -w0 < "${2:-/dev/stdin}") || return 1
  printf '%s=%s\n' "$1" "$data"
}

# vmp_b64_parse CMD [ARGS...]: for each NAME=base64 line on stdin, run `CMD ARGS... NAME` with
# the decoded content on its stdin. Lines without "=" are skipped. Split by hand: `IFS== read`
# would drop a trailing "=" of the padding.
vmp_b64_parse() {
  local line name data
  while IFS= read -r line || [ -n "$line" ]; do
    name=${line%%=*} data=${line#*=}
    if [ -z "$line" ] || [ "$name" = "$line" ]; then continue; fi
    vmp_b64_name_ok "$name" || return 1
    printf '%s' "$data" | base64 -d > /dev/null 2>&1 || { log "'$name' is not valid base64"; return 1; }
    # Plain (not under || or if), so a failing CMD stops the script under set -e.
    printf '%s' "$data" | base64 -d | "$@" "$name"
  done
}

# Names become file names (etcd_ca -> etcd-ca.crt): letters, digits, "_" and "-" only.
vmp_b64_name_ok() {
  [[ $1 =~ ^[A-Za-z0-9_-]+$ ]] || { log "refusing name '$1' in name=base64 input"; return 1; }
}

# vmp_etcdctl ARGS...: etcdctl against the local etcd with the etcd-admin client cert. No
# ETCDCTL_API: v3 is the only API of etcd 3.4+, and 3.6 warns about the variable on every call.
vmp_etcdctl() {
  etcdctl --endpoints=https://127.0.0.1:2379 --cacert="$PKI/etcd-ca.crt" \
    --cert="$PKI/etcd-admin.crt" --key="$PKI/etcd-admin.key" "$@"
}

# vmp_admin_curl URL [CURL ARGS...]: curl (fail on HTTP errors, quiet) as the cluster admin,
# trusting only the cluster CA.
vmp_admin_curl() {
  local url=$1
  shift
  curl -fs --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$@" "$url"
}

# vmp_node_ready API_SERVER NODE: the local kubelet answers its healthz and the API server
# reports NODE Ready, asked with the node's own kubelet cert (the Node authorizer allows a node
# to read itself). No pipes: `curl | grep -q` can fail on SIGPIPE under pipefail.
vmp_node_ready() {
  local api=$1 node=$2 body
  curl -fs -o /dev/null http://127.0.0.1:10248/healthz || return 1
  body=$(curl -fs --cacert "$PKI/ca.crt" --cert "$PKI/kubelet.crt" --key "$PKI/kubelet.key" "$api/api/v1/nodes/$node") || return 1
  body=${body//[[:space:]]/}
  [[ $body == *'"type":"Ready","status":"True"'* ]]
}

# vmp_netpol_ready: vmp-netpol (the NetworkPolicy enforcer) has written its chains and its
# jump is FORWARD's first rule (before kube-proxy's, which accepts the packets it marked).
vmp_netpol_ready() {
  local first
  first=$(iptables -w 5 -S FORWARD 1 2> /dev/null) || return 1
  [[ $first == "-A FORWARD -j VMP-NETPOL" ]]
}

# vmp_disable_swap: the kubelet refuses to run with swap on, also after a reboot. Turns swap
# off now and keeps it off: swap entries in fstab commented out (the first original kept as
# fstab.vmp-backup), active swap units masked, zram-generator masked.
# FSTAB, SWAPS, SYSTEMD_ETC and SYSTEMD_LIB are for tests only.
vmp_disable_swap() {
  local fstab=${FSTAB:-/etc/fstab} swaps=${SWAPS:-/proc/swaps} sd_etc=${SYSTEMD_ETC:-/etc/systemd} unit lib
  if [ -r "$swaps" ] && [ "$(wc -l < "$swaps")" -gt 1 ]; then
    # Tolerated as before: some hosts (containers) may not turn swap off themselves.
    if swapoff -a 2> /dev/null; then log "turned swap off"; else log "could not turn swap off (kubelet will refuse to start)"; fi
  fi
  if [ -f "$fstab" ] && awk '!/^[[:space:]]*#/ && $3 == "swap" {found = 1} END {exit !found}' "$fstab"; then
    [ -e "$fstab.vmp-backup" ] || cp -p "$fstab" "$fstab.vmp-backup"
    awk '!/^[[:space:]]*#/ && $3 == "swap" {print "# vm-platform: kubelet needs swap off: " $0; next} {print}' "$fstab" \
      | write_file "$fstab" "$(stat -c %a "$fstab")" quiet
    log "commented out the swap entries in $fstab (original: $fstab.vmp-backup)"
  fi
  if command -v systemctl > /dev/null; then
    # No systemd running (a container): nothing to list, nothing to mask.
    { systemctl list-units --type=swap --state=active --plain --no-legend 2> /dev/null || true; } | while read -r unit _; do
      if [ "$(systemctl is-enabled "$unit" 2> /dev/null)" = masked ]; then continue; fi
      vmp_quietly systemctl mask --now "$unit" < /dev/null
      log "masked swap unit $unit"
    done
  fi
  for lib in ${SYSTEMD_LIB:-/usr/lib/systemd /lib/systemd}; do
    if [ -e "$lib/system-generators/zram-generator" ] && [ "$(readlink "$sd_etc/system-generators/zram-generator")" != /dev/null ]; then
      install -d -m 0755 "$sd_etc/system-generators"
      ln -sfn /dev/null "$sd_etc/system-generators/zram-generator"
      log "masked zram-generator (no zram swap after a reboot)"
    fi
  done
}
