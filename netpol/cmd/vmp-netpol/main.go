// vmp-netpol enforces Kubernetes NetworkPolicies on one node: it watches pods, namespaces and
// NetworkPolicies and keeps the node's iptables filter table (chains VMP-NETPOL and VMP-NP-*,
// jumped to first from FORWARD) equal to what they allow for the pods on this node.
//
//	vmp-netpol --kubeconfig <file> --node <name> [--resync 30s]
//	vmp-netpol --cleanup        # removes the jump and every chain of the enforcer
//
// It writes one line per change it makes (the pods it isolates, the rules, the time taken) and
// one per policy it cannot read. It runs beside kube-proxy, with kube-proxy's identity.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"vmplatform.local/netpol"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the identity to watch with")
	node := flag.String("node", "", "this node's name (default: the host name)")
	resync := flag.Duration("resync", 30*time.Second, "how often the table is compared and repaired without any change seen")
	cleanup := flag.Bool("cleanup", false, "remove the enforcer's jump and chains, then exit")
	flag.Parse()
	log.SetFlags(0)
	if *cleanup {
		if err := removeAll(); err != nil {
			log.Fatalf("vmp-netpol: cleanup: %v", err)
		}
		return
	}
	if *node == "" {
		h, err := os.Hostname()
		if err != nil {
			log.Fatalf("vmp-netpol: --node not given and no host name: %v", err)
		}
		*node = h
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatalf("vmp-netpol: --kubeconfig %s: %v", *kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatalf("vmp-netpol: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	factory := informers.NewSharedInformerFactory(client, 0)
	pods := factory.Core().V1().Pods()
	namespaces := factory.Core().V1().Namespaces()
	policies := factory.Networking().V1().NetworkPolicies()
	changed := make(chan struct{}, 1)
	poke := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { signalChange(changed) },
		UpdateFunc: func(any, any) { signalChange(changed) },
		DeleteFunc: func(any) { signalChange(changed) },
	}
	for _, inf := range []cache.SharedIndexInformer{pods.Informer(), namespaces.Informer(), policies.Informer()} {
		if _, err := inf.AddEventHandler(poke); err != nil {
			log.Fatalf("vmp-netpol: %v", err)
		}
	}
	// The chains and the jump first, isolating nothing yet: the table entry exists from the
	// start (the unit's health check looks for it), and the first sync fills it. Until then, as
	// before the enforcer ran, policies are not enforced: the read access it waits for is
	// granted by the stack after the nodes are up.
	if _, err := sync(nil, ""); err != nil {
		log.Fatalf("vmp-netpol: %v", err)
	}
	t0 := time.Now()
	waitForAccess(ctx, client)
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			log.Fatalf("vmp-netpol: the %v cache did not sync", typ)
		}
	}
	log.Printf("vmp-netpol: node %s: watching pods, namespaces and NetworkPolicies (synced in %.1f s; until then nothing was isolated)", *node, time.Since(t0).Seconds())

	last := ""
	lastProblems := ""
	tick := time.NewTicker(*resync)
	defer tick.Stop()
	for {
		snapshot := func() netpol.Cluster {
			c := netpol.Cluster{}
			ps, _ := pods.Lister().List(labels.Everything())
			ns, _ := namespaces.Lister().List(labels.Everything())
			np, _ := policies.Lister().List(labels.Everything())
			c.Pods = append([]*corev1.Pod(nil), ps...)
			c.Namespaces = append([]*corev1.Namespace(nil), ns...)
			c.Policies = append([]*netv1.NetworkPolicy(nil), np...)
			return c
		}
		rules, problems := netpol.Compute(snapshot(), *node)
		if p := fmt.Sprint(problems); p != lastProblems {
			for _, pr := range problems {
				log.Printf("vmp-netpol: NetworkPolicy %s: %s (its pods are isolated; the rule allows nothing)", pr.Policy, pr.Reason)
			}
			lastProblems = p
		}
		if text, err := sync(rules, last); err != nil {
			log.Printf("vmp-netpol: %v (retrying)", err)
			last = ""
		} else {
			last = text
		}
		select {
		case <-ctx.Done():
			log.Printf("vmp-netpol: stopping; the rules stay in force until the next start or --cleanup")
			return
		case <-changed:
			time.Sleep(200 * time.Millisecond) // let a burst of changes (a rollout) settle into one write
			drain(changed)
		case <-tick.C:
		}
	}
}

// waitForAccess returns once the identity may list pods, namespaces and NetworkPolicies (the
// stack grants it with the cluster's objects, after the nodes are up): asked every 2 s, so the
// first sync follows the grant within seconds (the informers' own retries back off to 30 s).
func waitForAccess(ctx context.Context, client kubernetes.Interface) {
	one := metav1.ListOptions{Limit: 1}
	said := ""
	for ctx.Err() == nil {
		_, err := client.CoreV1().Pods("").List(ctx, one)
		if err == nil {
			_, err = client.CoreV1().Namespaces().List(ctx, one)
		}
		if err == nil {
			_, err = client.NetworkingV1().NetworkPolicies("").List(ctx, one)
		}
		if err == nil {
			return
		}
		if msg := err.Error(); msg != said {
			log.Printf("vmp-netpol: waiting for read access to pods, namespaces and NetworkPolicies: %v", err)
			said = msg
		}
		time.Sleep(2 * time.Second)
	}
}

func signalChange(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func drain(c chan struct{}) {
	select {
	case <-c:
	default:
	}
}

// sync makes the table hold rules, with the jump to them first in FORWARD (before kube-proxy's
// KUBE-FORWARD, which accepts the packets it marked for masquerading, such as LoadBalancer
// traffic). It writes only when the rules differ from what it last wrote or the table lost
// its jump, its place or its chains. Returns the rules' text as written.
func sync(rules []netpol.PodRules, last string) (string, error) {
	save, err := run(nil, "iptables-save", "-t", "filter")
	if err != nil {
		return "", err
	}
	text := netpol.Render(rules, netpol.Chains(save))
	want := netpol.Render(rules, nil)
	jump := "-A FORWARD -j " + netpol.Chain
	first := firstRule(save, "FORWARD") == jump
	if want == last && first && text == want {
		return want, nil
	}
	t0 := time.Now()
	if _, err := run([]byte(text), "iptables-restore", "--noflush", "-w", "5"); err != nil {
		return "", err
	}
	if !first {
		for strings.Contains(save, jump+"\n") { // not first: take it out, then put it first
			if _, err := run(nil, "iptables", "-w", "5", "-D", "FORWARD", "-j", netpol.Chain); err != nil {
				break
			}
			save = strings.Replace(save, jump+"\n", "", 1)
		}
		if _, err := run(nil, "iptables", "-w", "5", "-I", "FORWARD", "1", "-j", netpol.Chain); err != nil {
			return "", err
		}
	}
	n := 0
	for _, r := range rules {
		n += len(r.Ingress) + len(r.Egress)
	}
	log.Printf("vmp-netpol: %d pods isolated here, %d allow rules, %d table lines written in %d ms", len(rules), n, strings.Count(text, "\n-A "), time.Since(t0).Milliseconds())
	return want, nil
}

// firstRule is the first rule line of chain in an iptables-save output ("" if none).
func firstRule(save, chain string) string {
	for _, line := range strings.Split(save, "\n") {
		if strings.HasPrefix(line, "-A "+chain+" ") {
			return line
		}
	}
	return ""
}

func removeAll() error {
	for { // every jump from FORWARD (a crash between restore and check could leave two)
		if _, err := run(nil, "iptables", "-w", "5", "-D", "FORWARD", "-j", netpol.Chain); err != nil {
			break
		}
	}
	save, err := run(nil, "iptables-save", "-t", "filter")
	if err != nil {
		return err
	}
	_, err = run([]byte(netpol.Cleanup(netpol.Chains(save))), "iptables-restore", "--noflush", "-w", "5")
	return err
}

func run(stdin []byte, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}
