// Package netpol turns Kubernetes NetworkPolicies into per-pod allow lists: which peers (address
// prefixes) may reach a pod on which ports (ingress), and where it may connect (egress). It is
// the pure half of the platform's NetworkPolicy enforcer; the other half writes these lists
// into the node's packet filter.
//
// The semantics are the API's (networking.k8s.io/v1):
//   - A pod is isolated for ingress (egress) when a policy in its namespace selects it and has
//     Ingress (Egress) in its policyTypes. Without policyTypes a policy has Ingress, and Egress
//     when it has egress rules.
//   - An isolated pod accepts (opens) what any rule of any policy selecting it allows: the union.
//   - A rule without peers allows every address; without ports, every port of every protocol.
//   - A peer with a podSelector alone means pods of the policy's namespace; a namespaceSelector
//     alone, every pod of the namespaces it selects; both, the pods that match the first in the
//     namespaces matching the second; an ipBlock, its CIDR less its excepts.
//   - A named port is the target's: the selected pod's for ingress, the destination pod's for
//     egress (so an egress rule with a named port matches no ipBlock address).
//
// Pods on the host's network are neither targets nor peers (their address is the node's; the
// API leaves their treatment to the implementation), nor are pods without an address or that
// have finished.
package netpol

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// PortRange is a protocol and an inclusive port range; From 0 means every port of the protocol.
type PortRange struct {
	Protocol string // TCP, UDP or SCTP
	From, To uint16
}

func (p PortRange) String() string {
	switch {
	case p.From == 0:
		return p.Protocol
	case p.From == p.To:
		return fmt.Sprintf("%s/%d", p.Protocol, p.From)
	default:
		return fmt.Sprintf("%s/%d-%d", p.Protocol, p.From, p.To)
	}
}

// Allow lets the addresses in Peers use Ports. Nil Ports means every port of every protocol.
type Allow struct {
	Peers []netip.Prefix
	Ports []PortRange
}

// PodRules is what the filter enforces for one pod.
type PodRules struct {
	Namespace, Name string
	IP              netip.Addr
	// IngressIsolated: only Ingress may reach the pod; EgressIsolated: it may open only Egress.
	IngressIsolated, EgressIsolated bool
	Ingress, Egress                 []Allow
}

// Cluster is what the rules are computed from.
type Cluster struct {
	Pods       []*corev1.Pod
	Namespaces []*corev1.Namespace
	Policies   []*netv1.NetworkPolicy
}

// Problem is a policy the enforcer could not read (a selector that does not parse); the policy
// still isolates the pods it selects, and its unreadable rule allows nothing.
type Problem struct {
	Policy string
	Reason string
}

// Compute returns the rules of every pod on node that a policy isolates, in a stable order, and
// the problems met. node "" means every node.
func Compute(c Cluster, node string) ([]PodRules, []Problem) {
	nsLabels := map[string]labels.Set{}
	for _, ns := range c.Namespaces {
		nsLabels[ns.Name] = labels.Set(ns.Labels)
	}
	var peers []*corev1.Pod
	for _, p := range c.Pods {
		if _, ok := podIP(p); ok {
			peers = append(peers, p)
		}
	}
	e := &evaluator{ns: nsLabels, pods: peers}
	var out []PodRules
	for _, p := range peers {
		if node != "" && p.Spec.NodeName != node {
			continue
		}
		ip, _ := podIP(p)
		r := PodRules{Namespace: p.Namespace, Name: p.Name, IP: ip}
		for _, pol := range c.Policies {
			if pol.Namespace != p.Namespace {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(&pol.Spec.PodSelector)
			if err != nil {
				e.problem(pol, "spec.podSelector", err)
				sel = labels.Everything() // an unreadable selector isolates rather than opens
			}
			if !sel.Matches(labels.Set(p.Labels)) {
				continue
			}
			ingress, egress := policyTypes(pol)
			if ingress {
				r.IngressIsolated = true
				for i, rule := range pol.Spec.Ingress {
					if a, ok := e.allow(pol, fmt.Sprintf("spec.ingress[%d]", i), rule.From, rule.Ports, p, false); ok {
						r.Ingress = append(r.Ingress, a...)
					}
				}
			}
			if egress {
				r.EgressIsolated = true
				for i, rule := range pol.Spec.Egress {
					if a, ok := e.allow(pol, fmt.Sprintf("spec.egress[%d]", i), rule.To, rule.Ports, p, true); ok {
						r.Egress = append(r.Egress, a...)
					}
				}
			}
		}
		if r.IngressIsolated || r.EgressIsolated {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, e.problems
}

func policyTypes(p *netv1.NetworkPolicy) (ingress, egress bool) {
	if len(p.Spec.PolicyTypes) == 0 {
		return true, len(p.Spec.Egress) > 0
	}
	for _, t := range p.Spec.PolicyTypes {
		switch t {
		case netv1.PolicyTypeIngress:
			ingress = true
		case netv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

// podIP is the pod's IPv4 address when it can be a target or a peer.
func podIP(p *corev1.Pod) (netip.Addr, bool) {
	if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(p.Status.PodIP)
	if err != nil || !ip.Is4() {
		return netip.Addr{}, false
	}
	return ip, true
}

type evaluator struct {
	ns       map[string]labels.Set
	pods     []*corev1.Pod
	problems []Problem
}

func (e *evaluator) problem(p *netv1.NetworkPolicy, field string, err error) {
	pr := Problem{Policy: p.Namespace + "/" + p.Name, Reason: field + ": " + err.Error()}
	for _, seen := range e.problems { // each pod a policy selects meets the same problem
		if seen == pr {
			return
		}
	}
	e.problems = append(e.problems, pr)
}

// allow turns one rule into allows for target (the selected pod). For egress, named ports are
// resolved per destination pod, so a rule can become one allow per destination.
func (e *evaluator) allow(pol *netv1.NetworkPolicy, field string, peers []netv1.NetworkPolicyPeer, ports []netv1.NetworkPolicyPort, target *corev1.Pod, egress bool) ([]Allow, bool) {
	type dest struct {
		prefix netip.Prefix
		pod    *corev1.Pod // nil for an ipBlock address
	}
	var dests []dest
	if len(peers) == 0 {
		dests = []dest{{prefix: netip.MustParsePrefix("0.0.0.0/0")}}
	}
	for i, peer := range peers {
		where := fmt.Sprintf("%s.%s[%d]", field, map[bool]string{false: "from", true: "to"}[egress], i)
		if peer.IPBlock != nil {
			cidr, err := netip.ParsePrefix(peer.IPBlock.CIDR)
			if err != nil {
				e.problem(pol, where+".ipBlock.cidr", err)
				continue
			}
			if !cidr.Addr().Is4() {
				continue // the pod network is IPv4: an IPv6 block matches none of its traffic
			}
			var except []netip.Prefix
			for _, x := range peer.IPBlock.Except {
				p, err := netip.ParsePrefix(x)
				if err != nil {
					e.problem(pol, where+".ipBlock.except", err)
					continue
				}
				if p.Addr().Is4() {
					except = append(except, p)
				}
			}
			for _, p := range Subtract(cidr, except) {
				dests = append(dests, dest{prefix: p})
			}
			continue
		}
		pods, err := e.selectPods(pol.Namespace, peer)
		if err != nil {
			e.problem(pol, where, err)
			continue
		}
		for _, p := range pods {
			ip, _ := podIP(p)
			dests = append(dests, dest{prefix: netip.PrefixFrom(ip, 32), pod: p})
		}
	}
	if len(dests) == 0 {
		return nil, false
	}
	if len(ports) == 0 {
		a := Allow{}
		for _, d := range dests {
			a.Peers = append(a.Peers, d.prefix)
		}
		return []Allow{a}, true
	}
	if !egress {
		// Named ports are the target's own: one allow for the whole rule.
		pr := resolvePorts(ports, target)
		if len(pr) == 0 {
			return nil, false
		}
		a := Allow{Ports: pr}
		for _, d := range dests {
			a.Peers = append(a.Peers, d.prefix)
		}
		return []Allow{a}, true
	}
	// Egress: numeric ports are the same for every destination; named ones are each pod's.
	var out []Allow
	numeric := resolvePorts(ports, nil)
	if len(numeric) > 0 {
		a := Allow{Ports: numeric}
		for _, d := range dests {
			a.Peers = append(a.Peers, d.prefix)
		}
		out = append(out, a)
	}
	if hasNamed(ports) {
		if len(peers) == 0 { // every destination: each pod that has the named port
			dests = nil
			for _, p := range e.pods {
				ip, _ := podIP(p)
				dests = append(dests, dest{prefix: netip.PrefixFrom(ip, 32), pod: p})
			}
		}
		for _, d := range dests {
			if d.pod == nil {
				continue
			}
			if named := resolveNamed(ports, d.pod); len(named) > 0 {
				out = append(out, Allow{Peers: []netip.Prefix{d.prefix}, Ports: named})
			}
		}
	}
	return out, len(out) > 0
}

func (e *evaluator) selectPods(policyNS string, peer netv1.NetworkPolicyPeer) ([]*corev1.Pod, error) {
	podSel := labels.Everything()
	if peer.PodSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
		if err != nil {
			return nil, fmt.Errorf("podSelector: %w", err)
		}
		podSel = s
	}
	inNS := func(ns string) bool { return ns == policyNS }
	if peer.NamespaceSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
		if err != nil {
			return nil, fmt.Errorf("namespaceSelector: %w", err)
		}
		inNS = func(ns string) bool {
			l, ok := e.ns[ns]
			return ok && s.Matches(l)
		}
	} else if peer.PodSelector == nil {
		return nil, fmt.Errorf("a peer needs a podSelector, a namespaceSelector or an ipBlock")
	}
	var out []*corev1.Pod
	for _, p := range e.pods {
		if inNS(p.Namespace) && podSel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out, nil
}

func protocol(p *corev1.Protocol) string {
	if p == nil || *p == "" {
		return string(corev1.ProtocolTCP)
	}
	return strings.ToUpper(string(*p))
}

func hasNamed(ports []netv1.NetworkPolicyPort) bool {
	for _, p := range ports {
		if p.Port != nil && p.Port.StrVal != "" {
			return true
		}
	}
	return false
}

// resolvePorts turns the rule's ports into ranges; named ports are looked up in pod (none when
// pod is nil).
func resolvePorts(ports []netv1.NetworkPolicyPort, pod *corev1.Pod) []PortRange {
	var out []PortRange
	for _, p := range ports {
		proto := protocol(p.Protocol)
		switch {
		case p.Port == nil:
			out = append(out, PortRange{Protocol: proto})
		case p.Port.StrVal != "":
			if pod != nil {
				out = append(out, namedPort(p.Port.StrVal, proto, pod)...)
			}
		default:
			from := uint16(p.Port.IntVal)
			to := from
			if p.EndPort != nil && *p.EndPort >= p.Port.IntVal {
				to = uint16(*p.EndPort)
			}
			out = append(out, PortRange{Protocol: proto, From: from, To: to})
		}
	}
	return out
}

func resolveNamed(ports []netv1.NetworkPolicyPort, pod *corev1.Pod) []PortRange {
	var out []PortRange
	for _, p := range ports {
		if p.Port != nil && p.Port.StrVal != "" {
			out = append(out, namedPort(p.Port.StrVal, protocol(p.Protocol), pod)...)
		}
	}
	return out
}

func namedPort(name, proto string, pod *corev1.Pod) []PortRange {
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, cp := range c.Ports {
			if cp.Name == name && protocol(&cp.Protocol) == proto {
				return []PortRange{{Protocol: proto, From: uint16(cp.ContainerPort), To: uint16(cp.ContainerPort)}}
			}
		}
	}
	return nil
}
