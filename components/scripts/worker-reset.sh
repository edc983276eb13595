#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Undoes what running pods left on a worker, on destroy (after kubelet has stopped, before the
# runtime's config goes): kills and removes every container and sandbox, stops containerd,
# removes the pod network's interfaces and kube-proxy's iptables rules, and kubelet's state.
# Tolerates a host where any of it is already gone: each step's failure is ignored on purpose.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ctr_ids() { ctr -n k8s.io "$@" ls -q 2> /dev/null || true; }
if command -v ctr > /dev/null && systemctl is-active --quiet containerd; then
  for t in $(ctr_ids tasks); do ctr -n k8s.io tasks kill -s SIGKILL "$t" > /dev/null 2>&1 || true; done
  sleep 1
  for t in $(ctr_ids tasks); do ctr -n k8s.io tasks delete -f "$t" > /dev/null 2>&1 || true; done
  for c in $(ctr_ids containers); do ctr -n k8s.io containers delete "$c" > /dev/null 2>&1 || true; done
fi
systemctl disable --now containerd flanneld > /dev/null 2>&1 || true
if [ -x /usr/local/bin/kube-proxy ]; then /usr/local/bin/kube-proxy --cleanup > /dev/null 2>&1 || true; fi
if [ -x /usr/local/bin/vmp-netpol ]; then /usr/local/bin/vmp-netpol --cleanup > /dev/null 2>&1 || true; fi
for link in cni0 flannel.1; do ip link delete "$link" > /dev/null 2>&1 || true; done
# Deepest first; read line by line (mount points are one per line, never split on spaces).
awk '$2 ~ "^/var/lib/kubelet/" {print $2}' /proc/mounts | sort -r | while IFS= read -r m; do
  umount "$m" 2> /dev/null || true
done
rm -rf /var/lib/kubelet /var/lib/cni /run/flannel /etc/cni/net.d/10-vm-platform.conflist /var/lib/vm-platform/runtime-reset
log "reset the container runtime, pod network and kubelet state"
