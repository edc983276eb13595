"""The local lab: two (or more) "VMs" on this machine that the `local` stack deploys to for real.

Each host is a systemd-nspawn container booting real systemd on its own overlay root (one cached
Debian image), in its own network namespace with a veth into a bridge on the machine, and
reachable over SSH with a lab key and pinned host keys. Several labs (instances) can run side
by side, each with its own bridge and /24.

    instance.py   which lab: names, network, state dir and stack file of each instance
    rootfs.py     the Debian image (debootstrap), shared by every host
    network.py    the bridge, the hosts' network namespaces and veths
    hosts.py      the hosts: identity files, nspawn boot and stop, SSH, machine sysctls
    cgroups.py    each host's own cgroups
    stackfile.py  the `local` stack's config and its stack file (Pulumi.local.yaml)
    binaries.py   the cluster binaries the `local` stack copies to the hosts
    cli.py        up / down / status (`python3 -m tools.lab`)

LAB-NOTES.md has the measurements and the reason for every flag and workaround.
"""
