package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
)

// exitCodeBail is what pulumi-language-python-exec exits with after it has
// already reported the error to the engine, so the engine must not report it
// a second time.
const exitCodeBail = 32

// interruptGrace is how long a child gets to exit after SIGINT before it is
// killed, so the Python SDK can flush pending RPCs when an operation is
// cancelled.
const interruptGrace = 5 * time.Second

type languageHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	execScript string
	tracing    string

	mu            sync.Mutex
	engineAddress string
	rootDir       string
	programDir    string
	children      map[*exec.Cmd]struct{}
}

func newLanguageHost(execScript string, opts options) *languageHost {
	return &languageHost{
		execScript:    execScript,
		tracing:       opts.tracing,
		engineAddress: opts.engineAddress,
		rootDir:       opts.root,
		children:      map[*exec.Cmd]struct{}{},
	}
}

func (h *languageHost) Handshake(
	ctx context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.engineAddress = req.GetEngineAddress()
	h.rootDir = req.GetRootDirectory()
	h.programDir = req.GetProgramDirectory()
	logging.V(5).Infof("handshake: engine=%s root=%s program=%s", h.engineAddress, h.rootDir, h.programDir)
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *languageHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: sdkVersion}, nil
}

func (h *languageHost) GetRequiredPackages(
	ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	py, err := resolvePython(req.GetInfo())
	if err != nil {
		return nil, err
	}
	if py.virtualenv == "" {
		// Without a venv we do not know which site-packages the program will
		// use; the engine still loads providers on demand.
		return &pulumirpc.GetRequiredPackagesResponse{}, nil
	}
	pkgs, err := requiredPackages(py.virtualenv)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: pkgs}, nil
}

// GetRequiredPlugins is the pre-parameterization form of GetRequiredPackages,
// still called by some engine code paths.
func (h *languageHost) GetRequiredPlugins(
	ctx context.Context, req *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	resp, err := h.GetRequiredPackages(ctx, &pulumirpc.GetRequiredPackagesRequest{Info: req.GetInfo()})
	if err != nil {
		return nil, err
	}
	var plugins []*pulumirpc.PluginDependency
	for _, pkg := range resp.GetPackages() {
		plugins = append(plugins, &pulumirpc.PluginDependency{
			Name: pkg.GetName(), Kind: pkg.GetKind(), Version: pkg.GetVersion(), Server: pkg.GetServer(),
		})
	}
	return &pulumirpc.GetRequiredPluginsResponse{Plugins: plugins}, nil
}

// InstallDependencies (`pulumi install`, or a missing-dependencies retry)
// deliberately does nothing: the project builds its virtualenvs itself.
func (h *languageHost) InstallDependencies(
	*pulumirpc.InstallDependenciesRequest, pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	return nil
}

func (h *languageHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	py, err := resolvePython(req.GetInfo())
	if err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, py.python, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("running %s --version: %w", py.python, err)
	}
	return &pulumirpc.AboutResponse{
		Executable: py.python,
		Version:    strings.TrimPrefix(strings.TrimSpace(string(out)), "Python "),
	}, nil
}

func (h *languageHost) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	py, err := resolvePython(req.GetInfo())
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetProgramDependenciesResponse{}
	if py.virtualenv != "" {
		resp.Dependencies = installedDistributions(py.virtualenv)
	}
	return resp, nil
}

func (h *languageHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	if _, err := os.Stat(h.execScript); err != nil {
		return nil, fmt.Errorf("%s must be installed next to the language host: %w", execScriptName, err)
	}
	py, err := resolvePython(req.GetInfo())
	if err != nil {
		return nil, err
	}

	// The Python SDK parses these with json.loads and expects an object and
	// a list, so never send JSON null for an empty config.
	config := req.GetConfig()
	if config == nil {
		config = map[string]string{}
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	secretKeysJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}

	h.mu.Lock()
	engineAddress := h.engineAddress
	h.mu.Unlock()

	args := []string{"-u", h.execScript}
	addFlag := func(name, value string) {
		if value != "" {
			args = append(args, "--"+name, value)
		}
	}
	addFlag("monitor", req.GetMonitorAddress())
	addFlag("engine", engineAddress)
	addFlag("project", req.GetProject())
	addFlag("root_directory", req.GetInfo().GetRootDirectory())
	addFlag("stack", req.GetStack())
	addFlag("pwd", req.GetPwd())
	addFlag("dry_run", strconv.FormatBool(req.GetDryRun()))
	// Always sent: the exec script calls int() on it unconditionally.
	addFlag("parallel", strconv.Itoa(int(req.GetParallel())))
	addFlag("organization", req.GetOrganization())
	addFlag("tracing", h.tracing)
	program := req.GetInfo().GetEntryPoint()
	if program == "" {
		program = req.GetProgram() //nolint:staticcheck // older engines only set the deprecated field
	}
	if program == "" {
		program = "."
	}
	args = append(args, program)
	args = append(args, req.GetArgs()...)

	cmd := exec.CommandContext(ctx, py.python, args...)
	cmd.Dir = req.GetPwd()
	cmd.Env = append(py.environ(os.Environ()),
		"PULUMI_CONFIG="+string(configJSON),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeysJSON))
	// Inheriting our descriptors lets the engine, which reads our output,
	// show the program's prints without an extra copy through this process.
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	logging.V(5).Infof("Run: %s", cmd.String())

	err = h.runChild(cmd)
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() == exitCodeBail:
		return &pulumirpc.RunResponse{Error: "Program exited after reporting an error", Bail: true}, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() > 0:
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode()),
		}, nil
	case errors.As(err, &exitErr):
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited unexpectedly: %v", exitErr)}, nil
	default:
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("Problem executing program (could not run %s): %v", py.python, err),
		}, nil
	}
}

// RunPlugin runs a Python plugin directory, which for us means a policy pack
// started by `pulumi preview --policy-pack DIR`. Like the official host, it
// runs `python <dir> <args...>` so the directory's __main__.py executes; the
// engine reads the plugin's port from the streamed stdout.
func (h *languageHost) RunPlugin(
	req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer,
) error {
	info := req.GetInfo()
	dir := info.GetProgramDirectory()
	if _, err := os.Stat(filepath.Join(dir, "__main__.py")); err != nil {
		return fmt.Errorf("plugin directory %q has no __main__.py (packaged plugins run through "+
			"pulumi.run.plugin are not supported by this minimal language host): %w", dir, err)
	}
	// Plugins are never meant to run in the ambient Python, so a venv/ or
	// .venv/ next to the plugin is used even without a runtime option.
	py, err := resolvePython(info, "venv", ".venv")
	if err != nil {
		return err
	}

	// The engine sends its complete environment (plus plugin-specific
	// variables), so it replaces ours rather than extending it.
	env := req.GetEnv()
	if len(env) == 0 {
		env = os.Environ()
	}
	args := append([]string{"-u", dir}, req.GetArgs()...)
	cmd := exec.CommandContext(server.Context(), py.python, args...)
	cmd.Dir = req.GetPwd()
	cmd.Env = py.environ(env)
	streams := &pluginStreams{server: server}
	cmd.Stdout = writerFunc(func(p []byte) error {
		return streams.send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: p}})
	})
	cmd.Stderr = writerFunc(func(p []byte) error {
		return streams.send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: p}})
	})
	logging.V(5).Infof("RunPlugin: %s", cmd.String())

	err = h.runChild(cmd)
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return fmt.Errorf("running plugin %s: %w", dir, err)
	}
	code := 0
	if exitErr != nil {
		code = exitErr.ExitCode() // -1 if killed by a signal
	}
	return streams.send(&pulumirpc.RunPluginResponse{
		Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(code)}, //nolint:gosec // exit codes fit
	})
}

// Cancel is the engine's request to stop everything in flight.
func (h *languageHost) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	h.killChildren()
	return &emptypb.Empty{}, nil
}

// runChild starts cmd, tracking it so Cancel and shutdown can kill it.
func (h *languageHost) runChild(cmd *exec.Cmd) error {
	// When the RPC is cancelled, interrupt first so Python can unwind, and
	// only kill if it does not exit in time.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = interruptGrace
	if err := cmd.Start(); err != nil {
		return err
	}
	h.mu.Lock()
	h.children[cmd] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.children, cmd)
		h.mu.Unlock()
	}()
	return cmd.Wait()
}

func (h *languageHost) killChildren() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cmd := range h.children {
		if err := cmd.Process.Kill(); err != nil {
			logging.V(5).Infof("killing pid %d: %v", cmd.Process.Pid, err)
		}
	}
}

// pluginStreams serializes sends: exec copies stdout and stderr on separate
// goroutines, and a gRPC stream must not be written concurrently.
type pluginStreams struct {
	mu     sync.Mutex
	server pulumirpc.LanguageRuntime_RunPluginServer
}

func (s *pluginStreams) send(resp *pulumirpc.RunPluginResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.server.Send(resp)
}

// writerFunc adapts a send function to io.Writer. Send marshals the message
// before returning, so exec may reuse p afterwards.
type writerFunc func(p []byte) error

func (f writerFunc) Write(p []byte) (int, error) {
	if err := f(p); err != nil {
		return 0, err
	}
	return len(p), nil
}
