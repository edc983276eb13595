#!/usr/bin/env bash
# Writes the node's CNI config from the subnet flanneld leased (/run/flannel/subnet.env):
# a bridge with host-local addresses in that subnet; flanneld routes between nodes.
# Usage: CNI_CONF=/etc/cni/net.d/10-vm-platform.conflist cni-config.sh
set -euo pipefail
. /usr/local/lib/vm-platform/lib.sh
wait_for 60 "flannel subnet lease" test -s /run/flannel/subnet.env
. /run/flannel/subnet.env
cat <<JSON | write_file "${CNI_CONF:?}" 0644
{
  "cniVersion": "0.4.0",
  "name": "vm-platform",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "mtu": ${FLANNEL_MTU},
     "ipam": {"type": "host-local", "subnet": "${FLANNEL_SUBNET}", "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
echo "$FLANNEL_SUBNET"
