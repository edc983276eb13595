// Command pause is the pod-sandbox ("infra") container of the platform's Kubernetes nodes.
//
// It does what the upstream Kubernetes pause container (build/pause/linux/pause.c) does:
// it holds the pod's namespaces open by blocking forever, exits 0 on SIGINT or SIGTERM, and,
// running as PID 1 of a pod that shares its PID namespace, reaps zombie children on SIGCHLD.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const version = "3.10"

func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Printf("pause.go %s (vmplatform)\n", version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		switch sig {
		case syscall.SIGINT, syscall.SIGTERM:
			fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", sig)
			os.Exit(0)
		case syscall.SIGCHLD:
			reap()
		}
	}
}
