#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# OS prerequisites: packages (installed only when missing, so offline hosts with them baked in
# are a no-op), kernel settings for pod networking, swap off for good (the kubelet refuses to
# run with it, also after a reboot), and the platform's directories.
# Usage: PACKAGES="openssl curl ..." prereqs.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
missing=()
for p in ${PACKAGES:-}; do
  if command -v dpkg-query > /dev/null; then
    dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q 'install ok installed' || missing+=("$p")
  else
    rpm -q "$p" > /dev/null 2>&1 || missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  start=$SECONDS
  if command -v apt-get > /dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    vmp_quietly apt-get update -q
    vmp_quietly apt-get install -y -q "${missing[@]}"
  else
    vmp_quietly yum install -y "${missing[@]}"
  fi
  log "installed ${missing[*]} ($((SECONDS - start))s)"
fi
# Kernel modules and sysctls: built-in or read-only on some hosts (containers), so tolerated.
for m in overlay br_netfilter; do modprobe "$m" 2> /dev/null || true; done
for kv in net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1; do
  sysctl -q -w "$kv" 2> /dev/null || log "could not set $kv (read-only or absent); continuing"
done
printf 'net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\n' | write_file /etc/sysctl.d/90-vm-platform.conf 0644
vmp_disable_swap
install -d -m 0755 "$VMP_ETC" /var/lib/vm-platform /usr/local/bin
install -d -m 0700 "$PKI"
