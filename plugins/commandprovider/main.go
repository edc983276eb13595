// Command pulumi-resource-command is a PROJECT-WRITTEN, MINIMAL, COMPATIBLE
// implementation of the Pulumi "command" resource provider plugin.
//
// Why it exists: the Python program in this repository uses
// pulumi_command.remote.Command and pulumi_command.remote.CopyToRemote (PyPI
// package pulumi-command==1.2.1). Those SDK classes need the provider plugin
// binary "pulumi-resource-command", and the official plugin cannot be obtained
// on this machine: plugin downloads are unreachable and the official Go module
// (github.com/pulumi/pulumi-command/provider) is not served by the Go module
// proxy available here. This program is NOT the official provider and shares no
// code with it; it was written from scratch against the public provider gRPC
// protocol of github.com/pulumi/pulumi/sdk/v3, and it reports version 1.2.1 so
// that the engine matches it to the 1.2.1 Python SDK. Replace it with the
// official plugin whenever that can be installed.
//
// What it implements (same type tokens and camelCase property names as the
// official provider, so state is interchangeable for these fields):
//
//   - command:remote:Command: connection {host, port=22, user=root, password,
//     privateKey, privateKeyPassword, hostKey, dialErrorLimit=10,
//     perDialTimeout=15}, create, update, delete, stdin, environment, triggers,
//     logging (stdout | stderr | stdoutAndStderr | none),
//     addPreviousOutputInEnv=true; outputs are the inputs plus stdout/stderr.
//     Changes to triggers or connection.host replace the resource; any other
//     change updates it in place (runs update, or create when update is unset).
//   - command:remote:CopyToRemote: connection, source (FileAsset, StringAsset,
//     or FileArchive pointing to a local directory or file), remotePath,
//     triggers; copies over SFTP. Changes to the source hash, remotePath or
//     triggers replace it; connection changes update it without copying.
//     Delete is a no-op, as in the official provider.
//   - SSH authentication with a private key (optionally encrypted) and/or a
//     password; optional host key pinning through connection.hostKey (a line in
//     authorized_keys format); retrying dials with a per-dial timeout.
//   - Secrets and unknowns are preserved when inputs are echoed as outputs;
//     command output is streamed to the engine log unless logging is "none".
//
// What it does NOT implement: local.Command and local.run, remote.CopyFile,
// invokes, ssh-agent authentication (agentSocketPath / SSH_AUTH_SOCK), bastion
// proxies (connection.proxy), AssetArchive / remote (URI) assets and archives,
// and the full provider schema (GetSchema returns only a stub).
//
// Plugin protocol: invoked as `pulumi-resource-command [flags] <engine-address>`;
// it listens on 127.0.0.1 on a free port, prints that port and a newline to
// stdout, and serves the ResourceProvider gRPC service until it is killed.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
)

// version is reported by GetPluginInfo; override with -ldflags "-X main.version=...".
var version = "1.2.1"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-command: %v\n", err)
		os.Exit(1)
	}
}

// engineAddressFromArgs returns the last positional argument. Flags that the
// engine may pass (-tracing, -logtostderr, -v=N, ...) are ignored.
func engineAddressFromArgs(args []string) string {
	addr := ""
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		addr = a
	}
	return addr
}

func run(args []string) error {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version") {
		fmt.Println(version)
		return nil
	}

	var host *provider.HostClient
	if addr := engineAddressFromArgs(args); addr != "" {
		h, err := provider.NewHostClient(addr)
		if err != nil {
			return fmt.Errorf("connecting to the engine at %s: %w", addr, err)
		}
		defer h.Close()
		host = h
	}

	prov := newCommandProvider(host)
	// A killed engine (SIGKILL, a crash) cannot stop its plugins: when the parent process is
	// gone (we were re-parented), stop serving instead of lingering as an orphan.
	cancel := make(chan bool)
	go watchParent(cancel)
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterResourceProviderServer(srv, prov)
			return nil
		},
	})
	if err != nil {
		return err
	}

	// The engine reads the port from the first line of stdout.
	fmt.Printf("%d\n", handle.Port)
	return <-handle.Done
}

// watchParent closes cancel once this process's parent (the engine) has exited.
func watchParent(cancel chan<- bool) {
	parent := os.Getppid()
	for range time.Tick(time.Second) {
		if os.Getppid() != parent {
			close(cancel)
			return
		}
	}
}
