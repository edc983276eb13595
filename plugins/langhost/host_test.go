package main

import (
	"os"
	"path/filepath"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestParseArgsTakesTheEngineAddressAndKnownFlags(t *testing.T) {
	opts := parseArgs([]string{"-root", "/p", "--tracing=x", "-logtostderr", "-v=9", "--unknown", "127.0.0.1:4242"})
	if opts.engineAddress != "127.0.0.1:4242" || opts.root != "/p" || opts.tracing != "x" || !opts.logToStderr || opts.verbose != 9 {
		t.Fatalf("unexpected options: %+v", opts)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestResolvePythonUsesTheConfiguredVirtualenv(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "venv", "bin", "python"), "#!/bin/sh\n")
	opts, _ := structpb.NewStruct(map[string]any{"virtualenv": "venv"})
	env, err := resolvePython(&pulumirpc.ProgramInfo{RootDirectory: root, Options: opts})
	if err != nil || env.virtualenv != filepath.Join(root, "venv") || env.python != filepath.Join(root, "venv", "bin", "python") {
		t.Fatalf("got %+v, %v", env, err)
	}
	missing, _ := structpb.NewStruct(map[string]any{"virtualenv": "nope"})
	if _, err := resolvePython(&pulumirpc.ProgramInfo{RootDirectory: root, Options: missing}); err == nil {
		t.Fatal("a missing virtualenv must be a clear error, not a silent fallback")
	}
}

func TestRequiredPackagesReadsResourcePluginsFromSitePackages(t *testing.T) {
	venv := t.TempDir()
	sp := filepath.Join(venv, "lib", "python3.11", "site-packages")
	writeFile(t, filepath.Join(sp, "pulumi_kubernetes", "pulumi-plugin.json"), `{"resource": true, "name": "kubernetes", "version": "4.25.0"}`)
	writeFile(t, filepath.Join(sp, "pulumi_command", "pulumi-plugin.json"), `{"resource": true, "name": "command", "version": "1.2.1"}`)
	writeFile(t, filepath.Join(sp, "pulumi_policy", "pulumi-plugin.json"), `{"resource": false}`)
	deps, err := requiredPackages(venv)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range deps {
		got[d.GetName()] = d.GetVersion()
	}
	if len(got) != 2 || got["kubernetes"] != "4.25.0" || got["command"] != "1.2.1" {
		t.Fatalf("unexpected packages: %v", got)
	}
}
