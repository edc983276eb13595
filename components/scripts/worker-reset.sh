#!/usr/bin/env bash
# Undoes what running pods left on a worker, on destroy (after kubelet has stopped, before the
# runtime's config goes): kills and removes every container and sandbox, stops containerd,
# removes the pod network's interfaces and kube-proxy's iptables rules, and kubelet's state.
# Tolerates a host where any of it is already gone.
set -uo pipefail
if command -v ctr >/dev/null && systemctl is-active --quiet containerd; then
  for t in $(ctr -n k8s.io tasks ls -q 2>/dev/null); do ctr -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
  sleep 1
  for t in $(ctr -n k8s.io tasks ls -q 2>/dev/null); do ctr -n k8s.io tasks delete -f "$t" >/dev/null 2>&1; done
  for c in $(ctr -n k8s.io containers ls -q 2>/dev/null); do ctr -n k8s.io containers delete "$c" >/dev/null 2>&1; done
fi
systemctl disable --now containerd flanneld >/dev/null 2>&1
[ -x /usr/local/bin/kube-proxy ] && /usr/local/bin/kube-proxy --cleanup >/dev/null 2>&1
for link in cni0 flannel.1; do ip link delete "$link" >/dev/null 2>&1; done
for m in $(awk '$2 ~ "^/var/lib/kubelet/" {print $2}' /proc/mounts | sort -r); do umount "$m" 2>/dev/null; done
rm -rf /var/lib/kubelet /var/lib/cni /run/flannel /etc/cni/net.d/10-vm-platform.conflist /var/lib/vm-platform/runtime-reset
echo reset
