package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// pythonEnv is the interpreter chosen for a program or plugin.
type pythonEnv struct {
	// python is the interpreter to execute. For a virtualenv it is the venv's
	// own bin/python (not the resolved symlink target), since that path is how
	// Python detects that it runs inside the venv.
	python string
	// virtualenv is the absolute virtualenv directory, or "" when python3 is
	// taken from PATH.
	virtualenv string
}

// resolvePython picks the interpreter for a program: the `virtualenv` runtime
// option if set (relative to the project root), else the first of
// fallbackVenvs that exists under the root, else python3 from PATH.
func resolvePython(info *pulumirpc.ProgramInfo, fallbackVenvs ...string) (pythonEnv, error) {
	root := info.GetRootDirectory()
	if venv := info.GetOptions().GetFields()["virtualenv"].GetStringValue(); venv != "" {
		dir := venv
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(root, dir)
		}
		py := filepath.Join(dir, "bin", "python")
		if _, err := os.Stat(py); err != nil {
			return pythonEnv{}, fmt.Errorf(
				"the virtualenv %q named in the runtime options is not usable (%w); "+
					"this language host does not create virtualenvs, create it with "+
					"`python3 -m venv %s` and install the requirements", venv, err, dir)
		}
		return pythonEnv{python: py, virtualenv: dir}, nil
	}
	for _, name := range fallbackVenvs {
		dir := filepath.Join(root, name)
		py := filepath.Join(dir, "bin", "python")
		if _, err := os.Stat(py); err == nil {
			return pythonEnv{python: py, virtualenv: dir}, nil
		}
	}
	for _, name := range []string{"python3", "python"} {
		if py, err := exec.LookPath(name); err == nil {
			return pythonEnv{python: py}, nil
		}
	}
	return pythonEnv{}, errors.New("no virtualenv is configured and neither python3 nor python is on PATH")
}

// environ returns base adjusted the way `source venv/bin/activate` would, so
// that tools the program spawns (pip, other scripts) resolve to the venv too.
// exec.Cmd uses the last value of duplicated keys, so appending overrides.
func (p pythonEnv) environ(base []string) []string {
	if p.virtualenv == "" {
		return base
	}
	env := make([]string, 0, len(base)+2)
	for _, kv := range base {
		// PYTHONHOME would point the venv interpreter at another installation's stdlib.
		if !strings.HasPrefix(kv, "PYTHONHOME=") {
			env = append(env, kv)
		}
	}
	path := filepath.Join(p.virtualenv, "bin")
	if old := lookupEnv(base, "PATH"); old != "" {
		path += string(os.PathListSeparator) + old
	}
	return append(env, "VIRTUAL_ENV="+p.virtualenv, "PATH="+path)
}

// lookupEnv finds the effective (last) value of key in an environment list.
func lookupEnv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// sitePackages lists the venv's site-packages directories (normally one).
func sitePackages(venv string) []string {
	dirs, _ := filepath.Glob(filepath.Join(venv, "lib", "python*", "site-packages"))
	return dirs
}

// requiredPackages reads the pulumi-plugin.json files that Pulumi provider
// SDKs ship inside their Python package. Reading files instead of running
// `pip list`/`pip show` keeps every preview free of extra Python start-ups.
func requiredPackages(venv string) ([]*pulumirpc.PackageDependency, error) {
	var files []string
	for _, sp := range sitePackages(venv) {
		// pulumiplugin.json is the name used by older provider SDKs.
		for _, name := range []string{"pulumi-plugin.json", "pulumiplugin.json"} {
			matches, err := filepath.Glob(filepath.Join(sp, "*", name))
			if err != nil {
				return nil, err
			}
			files = append(files, matches...)
		}
	}
	sort.Strings(files)

	seen := map[string]bool{}
	var deps []*pulumirpc.PackageDependency
	for _, file := range files {
		meta, err := plugin.LoadPulumiPluginJSON(file)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", file, err)
		}
		if !meta.Resource {
			continue
		}
		name := meta.Name
		if name == "" {
			// Provider SDK modules are conventionally named pulumi_<plugin>.
			name = strings.ReplaceAll(strings.TrimPrefix(filepath.Base(filepath.Dir(file)), "pulumi_"), "_", "-")
		}
		if meta.Version == "" {
			// The official host derives it from the distribution version; we
			// leave the choice to the engine, which resolves plugins on demand.
			logging.V(5).Infof("skipping %s: no plugin version", file)
			continue
		}
		key := name + "@" + meta.Version
		if meta.Parameterization != nil {
			key += "/" + meta.Parameterization.Name + "@" + meta.Parameterization.Version
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		deps = append(deps, &pulumirpc.PackageDependency{
			Name:             name,
			Kind:             "resource",
			Version:          meta.Version,
			Server:           meta.Server,
			Parameterization: toRPCParameterization(meta.Parameterization),
			Extension:        toRPCParameterization(meta.ExtensionParameterization),
		})
	}
	return deps, nil
}

func toRPCParameterization(p *plugin.PulumiParameterizationJSON) *pulumirpc.PackageParameterization {
	if p == nil {
		return nil
	}
	return &pulumirpc.PackageParameterization{Name: p.Name, Version: p.Version, Value: p.Value}
}

// installedDistributions lists name and version of every distribution in the
// venv from the `<name>-<version>.dist-info` directory names, which (unlike
// running pip) costs no Python start-up.
func installedDistributions(venv string) []*pulumirpc.DependencyInfo {
	var deps []*pulumirpc.DependencyInfo
	for _, sp := range sitePackages(venv) {
		matches, _ := filepath.Glob(filepath.Join(sp, "*.dist-info"))
		for _, m := range matches {
			// Distribution names in these directory names never contain '-'.
			name, version, ok := strings.Cut(strings.TrimSuffix(filepath.Base(m), ".dist-info"), "-")
			if ok {
				deps = append(deps, &pulumirpc.DependencyInfo{Name: name, Version: version})
			}
		}
	}
	return deps
}
