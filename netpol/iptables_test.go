package netpol

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestRenderOneIsolatedPod(t *testing.T) {
	r := PodRules{Namespace: "a", Name: "db", IP: netip.MustParseAddr("10.244.2.3"), IngressIsolated: true, EgressIsolated: true,
		Ingress: []Allow{{Peers: []netip.Prefix{netip.MustParsePrefix("10.244.1.2/32"), netip.MustParsePrefix("0.0.0.0/0")}, Ports: []PortRange{{"TCP", 5432, 5432}, {"UDP", 0, 0}, {"TCP", 9000, 9100}}}},
		Egress:  []Allow{{Peers: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}}},
	}
	in, out := podChain(ingressPrefix, r), podChain(egressPrefix, r)
	got := Render([]PodRules{r}, []string{"INPUT", Chain, "VMP-NP-I-OLD", "KUBE-FORWARD"})
	want := strings.Join([]string{
		"*filter",
		":VMP-NETPOL - [0:0]",
		":" + in + " - [0:0]",
		":" + out + " - [0:0]",
		":VMP-NP-I-OLD - [0:0]",
		"-A VMP-NETPOL -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
		`-A VMP-NETPOL -d 10.244.2.3/32 -m comment --comment "a/db ingress" -j ` + in,
		`-A VMP-NETPOL -s 10.244.2.3/32 -m comment --comment "a/db egress" -j ` + out,
		"-A " + in + " -s 10.244.1.2/32 -p tcp -m tcp --dport 5432 -j RETURN",
		"-A " + in + " -s 10.244.1.2/32 -p udp -j RETURN",
		"-A " + in + " -s 10.244.1.2/32 -p tcp -m tcp --dport 9000:9100 -j RETURN",
		"-A " + in + " -p tcp -m tcp --dport 5432 -j RETURN",
		"-A " + in + " -p udp -j RETURN",
		"-A " + in + " -p tcp -m tcp --dport 9000:9100 -j RETURN",
		"-A " + in + ` -m comment --comment "a/db: no NetworkPolicy allows this ingress" -j REJECT --reject-with icmp-port-unreachable`,
		"-A " + out + " -d 10.96.0.0/12 -j RETURN",
		"-A " + out + ` -m comment --comment "a/db: no NetworkPolicy allows this egress" -j REJECT --reject-with icmp-port-unreachable`,
		"-X VMP-NP-I-OLD",
		"COMMIT",
		"",
	}, "\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if len(in) > 28 || in == out || podChain(ingressPrefix, PodRules{Namespace: "a", Name: "web"}) == in {
		t.Errorf("chain names must be short and distinct: %s %s", in, out)
	}
}

func TestRenderNothingIsolatedKeepsOnlyTheMainChain(t *testing.T) {
	got := Render(nil, Chains("*filter\n:INPUT ACCEPT [0:0]\n:VMP-NETPOL - [0:0]\n:VMP-NP-E-AB - [0:0]\n-A FORWARD -j VMP-NETPOL\nCOMMIT\n"))
	want := "*filter\n:VMP-NETPOL - [0:0]\n:VMP-NP-E-AB - [0:0]\n-A VMP-NETPOL -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n-X VMP-NP-E-AB\nCOMMIT\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestCleanupDeletesOnlyTheEnforcersChains(t *testing.T) {
	got := Cleanup([]string{"INPUT", "KUBE-FORWARD", "VMP-NP-I-B", Chain, "VMP-NP-E-A"})
	want := "*filter\n:VMP-NETPOL - [0:0]\n:VMP-NP-E-A - [0:0]\n:VMP-NP-I-B - [0:0]\n-X VMP-NETPOL\n-X VMP-NP-E-A\n-X VMP-NP-I-B\nCOMMIT\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestIptablesRestoreTakesTheRender loads a render, a second one that drops a pod, and the
// cleanup into a real filter table: that of a network namespace made for the test (skipped
// without root or iptables).
func TestIptablesRestoreTakesTheRender(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a network namespace of its own)")
	}
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		t.Skip("no iptables-restore")
	}
	first := []PodRules{
		{Namespace: "a", Name: "db", IP: netip.MustParseAddr("10.244.2.3"), IngressIsolated: true, EgressIsolated: true,
			Ingress: []Allow{{Peers: []netip.Prefix{netip.MustParsePrefix("10.244.1.2/32")}, Ports: []PortRange{{"TCP", 5432, 5432}, {"SCTP", 0, 0}, {"UDP", 53, 60}}}},
			Egress:  []Allow{{Peers: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}}},
		{Namespace: "a", Name: "web", IP: netip.MustParseAddr("10.244.1.2"), IngressIsolated: true},
	}
	script := `set -e
iptables-restore --noflush < "$1"
iptables -w 5 -C FORWARD -j VMP-NETPOL 2>/dev/null || iptables -w 5 -I FORWARD 1 -j VMP-NETPOL
echo ---; iptables-save -t filter
iptables-restore --noflush < "$2"
echo ---; iptables-save -t filter
iptables -w 5 -D FORWARD -j VMP-NETPOL
iptables-restore --noflush < "$3"
echo ---; iptables-save -t filter
`
	dir := t.TempDir()
	files := []string{dir + "/1", dir + "/2", dir + "/3"}
	chains := []string{Chain, podChain(ingressPrefix, first[0]), podChain(egressPrefix, first[0]), podChain(ingressPrefix, first[1])}
	for i, text := range []string{Render(first, nil), Render(first[1:], chains), Cleanup([]string{Chain, chains[3]})} {
		if err := os.WriteFile(files[i], []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("unshare", "--net", "sh", "-c", script, "sh", files[0], files[1], files[2]).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	saves := strings.Split(string(out), "---\n")[1:]
	if len(saves) != 3 {
		t.Fatalf("expected 3 saves: %s", out)
	}
	for _, want := range []string{"-A FORWARD -j VMP-NETPOL", "-p tcp -m tcp --dport 5432 -j RETURN", "-p sctp -j RETURN", "--dport 53:60", "--reject-with icmp-port-unreachable"} {
		if !strings.Contains(saves[0], want) {
			t.Errorf("first load lacks %q:\n%s", want, saves[0])
		}
	}
	if got := Chains(saves[1]); contains(got, chains[1]) || contains(got, chains[2]) || !contains(got, chains[3]) {
		t.Errorf("second load: db's chains should be gone and web's kept: %v", got)
	}
	for _, c := range Chains(saves[2]) {
		if strings.HasPrefix(c, "VMP-") {
			t.Errorf("cleanup left %s:\n%s", c, saves[2])
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
