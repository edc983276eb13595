// Command pulumi-language-python is a MINIMAL, PROJECT-WRITTEN implementation of
// Pulumi's LanguageRuntime gRPC protocol (pulumirpc.LanguageRuntimeServer from
// github.com/pulumi/pulumi/sdk/v3) for Python programs.
//
// It exists only because the official Python language host's Go module
// (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3) is not
// served by the Go module proxy available to this project, so the official
// binary cannot be built here. It is not a port of the official host and
// deliberately supports far less: pip-style virtualenvs only, no uv/poetry
// toolchains, no dependency installation, no code generation, Linux/macOS only.
//
// Implemented RPCs:
//   - Handshake              records engine address, root and program directory
//   - GetPluginInfo          reports the SDK version this host was written against
//   - GetRequiredPlugins,
//     GetRequiredPackages    scan the virtualenv's site-packages for
//     pulumi-plugin.json files declaring a resource plugin
//   - GetProgramDependencies lists the virtualenv's installed distributions
//   - InstallDependencies    no-op: the project creates and fills its own venv
//   - About                  python executable and version
//   - Run                    runs the program via pulumi-language-python-exec
//   - RunPlugin              runs a Python plugin such as a policy pack
//   - Cancel                 kills running child processes
//
// Everything else answers codes.Unimplemented via the embedded
// UnimplementedLanguageRuntimeServer.
//
// The engine starts the host like any plugin: `[flags] <engine-address>`. The
// host listens on 127.0.0.1 on a kernel-chosen port, prints that port on the
// first line of stdout, and serves until it is signalled or the engine goes
// away. The pulumi-language-python-exec script must sit next to this binary.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
)

// sdkVersion is the version of the Pulumi SDK whose protocol this host speaks;
// the engine only uses it for display and diagnostics.
const sdkVersion = "3.274.1"

// execScriptName is the Python shim (shipped in the Pulumi SDK sources) that
// configures the pulumi runtime from command-line flags and runs the program.
const execScriptName = "pulumi-language-python-exec"

// options holds what we understand from the command line.
type options struct {
	engineAddress string
	root          string
	tracing       string
	logToStderr   bool
	logFlow       bool
	verbose       int
}

// flagsWithValue lists flags that the engine (or older engines) may pass as
// "-name value" instead of "-name=value"; their value must not be mistaken
// for the positional engine address.
var flagsWithValue = map[string]bool{
	"tracing":      true,
	"root":         true,
	"virtualenv":   true,
	"toolchain":    true,
	"typechecker":  true,
	"use-executor": true,
}

// parseArgs parses the command line by hand rather than with package flag,
// because the engine forwards whatever logging/tracing flags it was given and
// an unknown flag must never stop the host from starting.
func parseArgs(args []string) options {
	var opts options
	var positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			positional = append(positional, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !hasValue && flagsWithValue[name] && i+1 < len(args) {
			i++
			value, hasValue = args[i], true
		}
		switch name {
		case "root":
			opts.root = value
		case "tracing":
			opts.tracing = value
		case "logtostderr":
			opts.logToStderr = !hasValue || value == "true"
		case "logflow":
			opts.logFlow = !hasValue || value == "true"
		case "v":
			if n, err := strconv.Atoi(value); err == nil {
				opts.verbose = n
			}
		}
	}
	// The engine always passes its address as the last positional argument.
	if len(positional) > 0 {
		opts.engineAddress = positional[len(positional)-1]
	}
	return opts
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	opts := parseArgs(os.Args[1:])
	logging.InitLogging(opts.logToStderr, opts.verbose, opts.logFlow)

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating own executable: %w", err)
	}
	host := newLanguageHost(filepath.Join(filepath.Dir(self), execScriptName), opts)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// If the engine disappears without killing us (e.g. it crashed), stop
	// serving instead of lingering as an orphan.
	if opts.engineAddress != "" {
		if err := rpcutil.Healthcheck(ctx, opts.engineAddress, 5*time.Minute, stop); err != nil {
			return fmt.Errorf("starting engine health check: %w", err)
		}
	}

	// A killed engine (SIGKILL, a crash) cannot stop its plugins, and the health check above
	// only notices after minutes: when the parent process is gone (we were re-parented), stop.
	go watchParent(stop)

	cancel := make(chan bool)
	go func() {
		<-ctx.Done()
		host.killChildren()
		close(cancel)
	}()

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("starting gRPC server: %w", err)
	}

	// The plugin protocol: the first line of stdout is the port we serve on.
	fmt.Printf("%d\n", handle.Port)

	if err := <-handle.Done; err != nil {
		return fmt.Errorf("gRPC server stopped: %w", err)
	}
	return nil
}

// watchParent calls stop once this process's parent (the engine) has exited.
func watchParent(stop func()) {
	parent := os.Getppid()
	for range time.Tick(time.Second) {
		if os.Getppid() != parent {
			stop()
			return
		}
	}
}
