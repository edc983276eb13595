package netpol

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// The filter table's chains the enforcer owns. FORWARD jumps to Chain first; Chain sends each
// isolated pod's traffic through that pod's chain, which returns what a policy allows and
// rejects the rest. Only forwarded traffic is judged: the node's own traffic to its pods (the
// kubelet's probes) passes through OUTPUT, and the API allows it anyway. Replies and related
// packets of connections already allowed are not judged again.
const (
	Chain         = "VMP-NETPOL"
	ingressPrefix = "VMP-NP-I-"
	egressPrefix  = "VMP-NP-E-"
)

func podChain(prefix string, r PodRules) string {
	sum := sha256.Sum256([]byte(r.Namespace + "/" + r.Name))
	return prefix + strings.ToUpper(hex.EncodeToString(sum[:8]))
}

// Render is the iptables-restore input (for --noflush) that makes the filter table's chains of
// the enforcer say rules, and deletes the chains of pods no longer isolated (stale: chain names
// found in the table now). The jump from FORWARD is not part of it (the agent keeps it first).
func Render(rules []PodRules, existing []string) string {
	decl := []string{":" + Chain + " - [0:0]"}
	jumps := []string{"-A " + Chain + " -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"}
	var body []string
	keep := map[string]bool{Chain: true}
	for _, r := range rules {
		who := r.Namespace + "/" + r.Name
		for _, d := range []struct {
			isolated          bool
			prefix, name      string
			podFlag, peerFlag string
			allows            []Allow
		}{
			{r.IngressIsolated, ingressPrefix, "ingress", "-d", "-s", r.Ingress},
			{r.EgressIsolated, egressPrefix, "egress", "-s", "-d", r.Egress},
		} {
			if !d.isolated {
				continue
			}
			c := podChain(d.prefix, r)
			keep[c] = true
			decl = append(decl, ":"+c+" - [0:0]")
			jumps = append(jumps, fmt.Sprintf("-A %s %s %s/32 -m comment --comment %q -j %s", Chain, d.podFlag, r.IP, who+" "+d.name, c))
			body = append(body, allowRules(c, d.peerFlag, "--dport", d.allows)...)
			body = append(body, fmt.Sprintf("-A %s -m comment --comment %q -j REJECT --reject-with icmp-port-unreachable", c, who+": no NetworkPolicy allows this "+d.name))
		}
	}
	var stale []string
	for _, c := range existing {
		if !keep[c] && owned(c) {
			stale = append(stale, c)
		}
	}
	sort.Strings(stale)
	var b strings.Builder
	b.WriteString("*filter\n")
	for _, l := range decl {
		b.WriteString(l + "\n")
	}
	for _, c := range stale {
		b.WriteString(":" + c + " - [0:0]\n") // flushed, so nothing it held refers on
	}
	// Chain's own lines (the conntrack rule, then the jumps), then the pods' chains.
	for _, l := range append(jumps, body...) {
		b.WriteString(l + "\n")
	}
	for _, c := range stale {
		b.WriteString("-X " + c + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// owned: a chain of the enforcer's.
func owned(c string) bool {
	return c == Chain || strings.HasPrefix(c, ingressPrefix) || strings.HasPrefix(c, egressPrefix)
}

// allowRules: one RETURN per (peer, port range) of each allow; peerFlag is -s (ingress) or -d.
func allowRules(chain, peerFlag, portFlag string, allows []Allow) []string {
	var out []string
	for _, a := range allows {
		for _, p := range a.Peers {
			peer := ""
			if p.Bits() != 0 {
				peer = fmt.Sprintf(" %s %s", peerFlag, p)
			}
			if a.Ports == nil {
				out = append(out, fmt.Sprintf("-A %s%s -j RETURN", chain, peer))
				continue
			}
			for _, pr := range a.Ports {
				proto := strings.ToLower(pr.Protocol)
				switch {
				case pr.From == 0:
					out = append(out, fmt.Sprintf("-A %s%s -p %s -j RETURN", chain, peer, proto))
				case pr.From == pr.To:
					out = append(out, fmt.Sprintf("-A %s%s -p %s -m %s %s %d -j RETURN", chain, peer, proto, proto, portFlag, pr.From))
				default:
					out = append(out, fmt.Sprintf("-A %s%s -p %s -m %s %s %d:%d -j RETURN", chain, peer, proto, proto, portFlag, pr.From, pr.To))
				}
			}
		}
	}
	return out
}

// Chains lists the user chains an `iptables-save -t filter` output declares.
func Chains(save string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(save))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, ":") {
			if f := strings.Fields(line[1:]); len(f) > 0 {
				out = append(out, f[0])
			}
		}
	}
	return out
}

// Cleanup is the restore input that empties and deletes every chain of the enforcer found in
// existing; the jump from FORWARD must be gone first.
func Cleanup(existing []string) string {
	var mine []string
	for _, c := range existing {
		if owned(c) {
			mine = append(mine, c)
		}
	}
	sort.Strings(mine)
	var b strings.Builder
	b.WriteString("*filter\n")
	for _, c := range mine {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	for _, c := range mine {
		b.WriteString("-X " + c + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
