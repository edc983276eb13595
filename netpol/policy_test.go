package netpol

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func pod(ns, name, node, ip string, lbl map[string]string, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbl},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Ports: ports}}},
		Status:     corev1.PodStatus{PodIP: ip, Phase: corev1.PodRunning},
	}
}

func namespace(name string, lbl map[string]string) *corev1.Namespace {
	l := map[string]string{"kubernetes.io/metadata.name": name}
	for k, v := range lbl {
		l[k] = v
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func tcp(port int) netv1.NetworkPolicyPort {
	p := intstr.FromInt32(int32(port))
	return netv1.NetworkPolicyPort{Port: &p}
}

func named(name string, proto corev1.Protocol) netv1.NetworkPolicyPort {
	p := intstr.FromString(name)
	return netv1.NetworkPolicyPort{Port: &p, Protocol: &proto}
}

func policy(ns, name string, podSel *metav1.LabelSelector, types []netv1.PolicyType, in []netv1.NetworkPolicyIngressRule, out []netv1.NetworkPolicyEgressRule) *netv1.NetworkPolicy {
	return &netv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       netv1.NetworkPolicySpec{PodSelector: *podSel, PolicyTypes: types, Ingress: in, Egress: out},
	}
}

// render is a compact, comparable form of the rules: "ns/name in|out: peers ports; ...".
func render(rules []PodRules) []string {
	var out []string
	for _, r := range rules {
		line := fmt.Sprintf("%s/%s", r.Namespace, r.Name)
		if r.IngressIsolated {
			line += " in:" + allows(r.Ingress)
		}
		if r.EgressIsolated {
			line += " out:" + allows(r.Egress)
		}
		out = append(out, line)
	}
	return out
}

func allows(as []Allow) string {
	if len(as) == 0 {
		return " none"
	}
	var parts []string
	for _, a := range as {
		var peers, ports []string
		for _, p := range a.Peers {
			peers = append(peers, p.String())
		}
		for _, p := range a.Ports {
			ports = append(ports, p.String())
		}
		if ports == nil {
			ports = []string{"any"}
		}
		parts = append(parts, strings.Join(peers, ",")+" "+strings.Join(ports, ","))
	}
	return " " + strings.Join(parts, "; ")
}

var (
	nsA     = namespace("a", map[string]string{"team": "x"})
	nsB     = namespace("b", map[string]string{"team": "y"})
	web     = pod("a", "web", "n1", "10.244.1.2", map[string]string{"app": "web"}, corev1.ContainerPort{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP})
	db      = pod("a", "db", "n2", "10.244.2.3", map[string]string{"app": "db"}, corev1.ContainerPort{Name: "sql", ContainerPort: 5432, Protocol: corev1.ProtocolTCP})
	client  = pod("b", "client", "n2", "10.244.2.4", map[string]string{"app": "web"})
	hostPod = func() *corev1.Pod {
		p := pod("a", "host", "n1", "10.78.0.11", map[string]string{"app": "web"})
		p.Spec.HostNetwork = true
		return p
	}()
	donePod = func() *corev1.Pod {
		p := pod("a", "done", "n1", "10.244.1.9", map[string]string{"app": "web"})
		p.Status.Phase = corev1.PodSucceeded
		return p
	}()
	allPods  = []*corev1.Pod{web, db, client, hostPod, donePod}
	bothNS   = []*corev1.Namespace{nsA, nsB}
	ingress  = []netv1.PolicyType{netv1.PolicyTypeIngress}
	egress   = []netv1.PolicyType{netv1.PolicyTypeEgress}
	inAndOut = []netv1.PolicyType{netv1.PolicyTypeIngress, netv1.PolicyTypeEgress}
)

func compute(t *testing.T, node string, pols ...*netv1.NetworkPolicy) []string {
	t.Helper()
	rules, problems := Compute(Cluster{Pods: allPods, Namespaces: bothNS, Policies: pols}, node)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	return render(rules)
}

func TestCases(t *testing.T) {
	cases := []struct {
		name string
		node string
		pols []*netv1.NetworkPolicy
		want []string
	}{
		{"no policy isolates nothing", "", nil, nil},
		{"default deny ingress selects every pod of its namespace alone", "",
			[]*netv1.NetworkPolicy{policy("a", "deny", sel(), ingress, nil, nil)},
			[]string{"a/db in: none", "a/web in: none"}},
		{"default deny both ways", "",
			[]*netv1.NetworkPolicy{policy("a", "deny", sel(), inAndOut, nil, nil)},
			[]string{"a/db in: none out: none", "a/web in: none out: none"}},
		{"only the node's pods", "n1",
			[]*netv1.NetworkPolicy{policy("a", "deny", sel(), ingress, nil, nil)},
			[]string{"a/web in: none"}},
		{"no policyTypes: ingress, and egress when there are egress rules", "",
			[]*netv1.NetworkPolicy{policy("a", "p", sel("app", "db"), nil, nil, []netv1.NetworkPolicyEgressRule{{}})},
			[]string{"a/db in: none out: 0.0.0.0/0 any"}},
		{"a podSelector peer is the policy's namespace only; hostNetwork and finished pods are no peers", "",
			[]*netv1.NetworkPolicy{policy("a", "p", sel("app", "db"), ingress, []netv1.NetworkPolicyIngressRule{{From: []netv1.NetworkPolicyPeer{{PodSelector: sel("app", "web")}}}}, nil)},
			[]string{"a/db in: 10.244.1.2/32 any"}},
		{"a namespaceSelector alone is every pod there", "",
			[]*netv1.NetworkPolicy{policy("a", "p", sel("app", "db"), ingress, []netv1.NetworkPolicyIngressRule{{From: []netv1.NetworkPolicyPeer{{NamespaceSelector: sel("team", "y")}}}}, nil)},
			[]string{"a/db in: 10.244.2.4/32 any"}},
		{"both selectors in one peer: the pods in those namespaces", "",
			[]*netv1.NetworkPolicy{policy("a", "p", sel("app", "db"), ingress, []netv1.NetworkPolicyIngressRule{{From: []netv1.NetworkPolicyPeer{{NamespaceSelector: sel(), PodSelector: sel("app", "web")}}}}, nil)},
			[]string{"a/db in: 10.244.1.2/32,10.244.2.4/32 any"}},
		{"ports: numeric, range, named (the target's), protocol", "",
			[]*netv1.NetworkPolicy{policy("a", "p", sel("app", "db"), ingress, []netv1.NetworkPolicyIngressRule{{Ports: []netv1.NetworkPolicyPort{
				tcp(80), func() netv1.NetworkPolicyPort { p := tcp(9000); e := int32(9100); p.EndPort = &e; return p }(),
				named("sql", corev1.ProtocolTCP), named("sql", corev1.ProtocolUDP), named("http", corev1.ProtocolTCP),
				{Protocol: func() *corev1.Protocol { u := corev1.ProtocolUDP; return &u }()},
			}}}, nil)},
			[]string{"a/db in: 0.0.0.0/0 TCP/80,TCP/9000-9100,TCP/5432,UDP"}},
		{"a rule whose only port is a name the target lacks allows nothing", "",
			[]*netv1.NetworkPolicy{policy("a", "p", sel("app", "db"), ingress, []netv1.NetworkPolicyIngressRule{{Ports: []netv1.NetworkPolicyPort{named("http", corev1.ProtocolTCP)}}}, nil)},
			[]string{"a/db in: none"}},
		{"egress named ports are each destination's; an ipBlock gets the numeric ones", "",
			[]*netv1.NetworkPolicy{policy("a", "p", sel("app", "web"), egress, nil, []netv1.NetworkPolicyEgressRule{{
				To:    []netv1.NetworkPolicyPeer{{PodSelector: sel()}, {IPBlock: &netv1.IPBlock{CIDR: "10.78.0.10/32"}}},
				Ports: []netv1.NetworkPolicyPort{named("sql", corev1.ProtocolTCP), tcp(6443)},
			}})},
			[]string{"a/web out: 10.244.1.2/32,10.244.2.3/32,10.78.0.10/32 TCP/6443; 10.244.2.3/32 TCP/5432"}},
		{"egress to everywhere on a named port: every pod that has it", "",
			[]*netv1.NetworkPolicy{policy("a", "p", sel("app", "web"), egress, nil, []netv1.NetworkPolicyEgressRule{{Ports: []netv1.NetworkPolicyPort{named("sql", corev1.ProtocolTCP)}}})},
			[]string{"a/web out: 10.244.2.3/32 TCP/5432"}},
		{"ipBlock with excepts", "",
			[]*netv1.NetworkPolicy{policy("a", "p", sel("app", "db"), ingress, []netv1.NetworkPolicyIngressRule{{From: []netv1.NetworkPolicyPeer{{IPBlock: &netv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.244.0.0/16", "10.78.0.10/32"}}}}}}, nil)},
			[]string{"a/db in: " + strings.Join(prefixes(Subtract(netip.MustParsePrefix("10.0.0.0/8"), []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("10.78.0.10/32")})), ",") + " any"}},
		{"the union of two policies; a policy in another namespace does not apply", "",
			[]*netv1.NetworkPolicy{
				policy("a", "deny", sel(), ingress, nil, nil),
				policy("a", "web", sel("app", "web"), ingress, []netv1.NetworkPolicyIngressRule{{Ports: []netv1.NetworkPolicyPort{tcp(8080)}}}, nil),
				policy("b", "other", sel(), ingress, []netv1.NetworkPolicyIngressRule{{}}, nil),
			},
			[]string{"a/db in: none", "a/web in: 0.0.0.0/0 TCP/8080", "b/client in: 0.0.0.0/0 any"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := compute(t, c.node, c.pols...); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got\n  %q\nwant\n  %q", got, c.want)
			}
		})
	}
}

func prefixes(ps []netip.Prefix) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func TestAnUnreadableSelectorIsolatesAndIsReported(t *testing.T) {
	bad := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Sideways"}}}
	pol := policy("a", "bad", bad, ingress, []netv1.NetworkPolicyIngressRule{{From: []netv1.NetworkPolicyPeer{{PodSelector: bad}}}}, nil)
	rules, problems := Compute(Cluster{Pods: allPods, Namespaces: bothNS, Policies: []*netv1.NetworkPolicy{pol}}, "")
	if got := render(rules); !reflect.DeepEqual(got, []string{"a/db in: none", "a/web in: none"}) {
		t.Errorf("got %q", got)
	}
	if len(problems) != 2 || !strings.Contains(problems[0].Reason, "spec.podSelector") || !strings.Contains(problems[1].Reason, "spec.ingress[0].from[0]") {
		t.Errorf("problems: %+v", problems)
	}
}

func TestSubtract(t *testing.T) {
	p := netip.MustParsePrefix
	cases := []struct {
		cidr   string
		except []string
		want   []string
	}{
		{"10.0.0.0/24", nil, []string{"10.0.0.0/24"}},
		{"10.0.0.0/24", []string{"10.0.0.0/16"}, nil},
		{"10.0.0.0/24", []string{"10.0.1.0/24"}, []string{"10.0.0.0/24"}},
		{"10.0.0.0/24", []string{"10.0.0.128/25"}, []string{"10.0.0.0/25"}},
		{"10.0.0.0/30", []string{"10.0.0.1/32"}, []string{"10.0.0.0/32", "10.0.0.2/31"}},
		{"10.0.0.5/24", []string{"10.0.0.0/26", "10.0.0.192/26"}, []string{"10.0.0.64/26", "10.0.0.128/26"}},
		{"0.0.0.0/0", []string{"128.0.0.0/1"}, []string{"0.0.0.0/1"}},
	}
	for _, c := range cases {
		var ex []netip.Prefix
		for _, x := range c.except {
			ex = append(ex, p(x))
		}
		got := prefixes(Subtract(p(c.cidr), ex))
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Subtract(%s, %v) = %v, want %v", c.cidr, c.except, got, c.want)
		}
		// Every address of the block is covered exactly when no except holds it.
		if b := p(c.cidr).Masked(); b.Bits() >= 24 {
			for a := b.Addr(); b.Contains(a); a = a.Next() {
				inExcept := false
				for _, x := range ex {
					inExcept = inExcept || x.Contains(a)
				}
				covered := 0
				for _, r := range Subtract(b, ex) {
					if r.Contains(a) {
						covered++
					}
				}
				if covered != map[bool]int{true: 0, false: 1}[inExcept] {
					t.Fatalf("%s in %s less %v: covered %d times", a, b, c.except, covered)
				}
			}
		}
	}
}
