#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Writes the node's CNI config from the subnet flanneld leased (/run/flannel/subnet.env):
# a bridge with host-local addresses in that subnet; flanneld routes between nodes.
# Prints the node's pod subnet.
# Usage: CNI_CONF=/etc/cni/net.d/10-vm-platform.conflist cni-config.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${CNI_CONF:?}"
wait_for 60 "flannel subnet lease" test -s /run/flannel/subnet.env
# shellcheck source=/dev/null  # written by flanneld at run time: FLANNEL_SUBNET, FLANNEL_MTU
. /run/flannel/subnet.env
# flanneld writes the node's gateway address (10.244.8.1/24); host-local wants the network.
network_of() {
  local ip=${1%/*} len=${1#*/} a b c d n
  IFS=. read -r a b c d <<< "$ip"
  n=$(( (a << 24 | b << 16 | c << 8 | d) & (0xFFFFFFFF << (32 - len)) & 0xFFFFFFFF ))
  echo "$((n >> 24 & 255)).$((n >> 16 & 255)).$((n >> 8 & 255)).$((n & 255))/$len"
}
subnet=$(network_of "$FLANNEL_SUBNET")
cat << JSON | write_file "$CNI_CONF" 0644
{
  "cniVersion": "0.4.0",
  "name": "vm-platform",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "mtu": ${FLANNEL_MTU},
     "ipam": {"type": "host-local", "subnet": "${subnet}", "gateway": "${FLANNEL_SUBNET%/*}", "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
echo "$subnet"
