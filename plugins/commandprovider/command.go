package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

const (
	envPreviousStdout = "PULUMI_COMMAND_STDOUT"
	envPreviousStderr = "PULUMI_COMMAND_STDERR"
)

// checkCommand validates remote.Command inputs and applies the defaults.
func checkCommand(news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	inputs := news.Copy()
	var failures []*pulumirpc.CheckFailure
	fail := func(prop, reason string) {
		failures = append(failures, &pulumirpc.CheckFailure{Property: prop, Reason: reason})
	}

	if create := unwrapSecret(inputs["create"]); !isUnknown(create) &&
		(!create.IsString() || create.StringValue() == "") {
		fail("create", "create must be set to a non-empty command string")
	}
	for _, k := range []resource.PropertyKey{"update", "delete", "stdin"} {
		if v := unwrapSecret(inputs[k]); !v.IsNull() && !isUnknown(v) && !v.IsString() {
			fail(string(k), fmt.Sprintf("%s must be a string", k))
		}
	}
	if v := unwrapSecret(inputs["logging"]); !v.IsNull() && !isUnknown(v) {
		if !v.IsString() || !loggingMode(v.StringValue()).valid() {
			fail("logging", `logging must be one of "stdout", "stderr", "stdoutAndStderr", "none"`)
		}
	}
	if v := unwrapSecret(inputs["environment"]); !v.IsNull() && !isUnknown(v) && !v.IsObject() {
		fail("environment", "environment must be a map of strings")
	}
	if v := unwrapSecret(inputs["triggers"]); !v.IsNull() && !isUnknown(v) && !v.IsArray() {
		fail("triggers", "triggers must be an array")
	}
	for _, r := range checkConnection(inputs) {
		fail("connection", r)
	}

	if v, ok := inputs["connection"]; ok {
		inputs["connection"] = applyConnectionDefaults(v)
	}
	setDefault(inputs, "addPreviousOutputInEnv", resource.NewBoolProperty(true))
	return inputs, failures
}

// commandInputs holds the parsed inputs needed to run a command.
type commandInputs struct {
	conn          *connection
	stdin         string
	environment   map[string]string
	logging       loggingMode
	addPrevOutput bool
}

func parseCommandInputs(m resource.PropertyMap) (*commandInputs, error) {
	conn, err := parseConnection(m["connection"])
	if err != nil {
		return nil, err
	}
	in := &commandInputs{conn: conn, environment: map[string]string{}}
	if in.stdin, _, err = optString(m, "stdin"); err != nil {
		return nil, err
	}
	mode, ok, err := optString(m, "logging")
	if err != nil {
		return nil, err
	}
	in.logging = logStdoutAndStderr
	if ok {
		in.logging = loggingMode(mode)
		if !in.logging.valid() {
			return nil, fmt.Errorf("invalid logging mode %q", mode)
		}
	}
	if in.addPrevOutput, err = optBool(m, "addPreviousOutputInEnv", true); err != nil {
		return nil, err
	}
	if env := unwrapSecret(m["environment"]); env.IsObject() {
		for k := range env.ObjectValue() {
			s, ok, err := optString(env.ObjectValue(), k)
			if err != nil {
				return nil, fmt.Errorf("environment.%w", err)
			}
			if ok {
				in.environment[string(k)] = s
			}
		}
	}
	return in, nil
}

// commandText returns the command stored under key, whether it is set, and a
// form safe to show in errors (secret commands are not shown).
func commandText(m resource.PropertyMap, key resource.PropertyKey) (cmd string, ok bool, display string, err error) {
	cmd, ok, err = optString(m, key)
	if err != nil || !ok || cmd == "" {
		return "", false, "", err
	}
	display = fmt.Sprintf("%q", cmd)
	if isSecret(m[key]) {
		display = "[secret]"
	}
	return cmd, true, display, nil
}

// previousOutputs returns the stdout/stderr recorded in a resource state.
func previousOutputs(state resource.PropertyMap) (stdout, stderr string) {
	if v := unwrapSecret(state["stdout"]); v.IsString() {
		stdout = v.StringValue()
	}
	if v := unwrapSecret(state["stderr"]); v.IsString() {
		stderr = v.StringValue()
	}
	return stdout, stderr
}

// runCommand connects to the host and runs cmd in a new session, returning
// stdout and stderr with one trailing newline trimmed. A failing command
// returns an error that includes its exit status and (as far as `logging`
// allows) its output.
func (p *commandProvider) runCommand(ctx context.Context, urn resource.URN, in *commandInputs,
	cmd, display, prevStdout, prevStderr string,
) (string, string, error) {
	client, err := p.dial(ctx, in.conn)
	if err != nil {
		return "", "", err
	}
	defer p.closeClient(client)

	session, err := client.NewSession()
	if err != nil {
		return "", "", fmt.Errorf("opening an SSH session: %w", err)
	}
	defer session.Close()

	keys := make([]string, 0, len(in.environment))
	for k := range in.environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := session.Setenv(k, in.environment[k]); err != nil {
			return "", "", fmt.Errorf("could not set environment variable %q (the SSH server must allow it "+
				"with AcceptEnv; alternatively prefix the command with VAR=value): %w", k, err)
		}
	}
	if in.addPrevOutput {
		for name, val := range map[string]string{envPreviousStdout: prevStdout, envPreviousStderr: prevStderr} {
			if val == "" {
				continue
			}
			if err := session.Setenv(name, val); err != nil {
				p.log(ctx, diag.Warning, urn, fmt.Sprintf("Unable to set '%s': the SSH server accepts it only "+
					"if configured with AcceptEnv.", name))
			}
		}
	}
	if in.stdin != "" {
		session.Stdin = strings.NewReader(in.stdin)
	}

	var stdout, stderr, combined lockedBuffer
	outWriters := []io.Writer{&stdout, &combined}
	errWriters := []io.Writer{&stderr, &combined}
	var loggers []*lineLogger
	if in.logging.stdout() {
		l := newLineLogger(ctx, p, urn)
		loggers = append(loggers, l)
		outWriters = append(outWriters, l)
	}
	if in.logging.stderr() {
		l := newLineLogger(ctx, p, urn)
		loggers = append(loggers, l)
		errWriters = append(errWriters, l)
	}
	session.Stdout = io.MultiWriter(outWriters...)
	session.Stderr = io.MultiWriter(errWriters...)

	// Closing the session aborts a command when the operation is cancelled.
	stop := context.AfterFunc(ctx, func() { _ = session.Close() })
	err = session.Run(cmd)
	stop()
	for _, l := range loggers {
		l.Flush()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return "", "", fmt.Errorf("%w: running %s:\n%s", err, display,
			outputForError(in.logging, stdout.String(), stderr.String(), combined.String()))
	}
	return strings.TrimSuffix(stdout.String(), "\n"), strings.TrimSuffix(stderr.String(), "\n"), nil
}

// outputForError returns the command output to include in an error message.
// The official provider always includes stdout and stderr; this one leaves
// out the streams that `logging` keeps out of the logs, so that output marked
// secret (logging "none") does not leak through error messages.
func outputForError(mode loggingMode, stdout, stderr, combined string) string {
	switch mode {
	case logStdout:
		return withNewline(stdout) + "(stderr not shown: logging is \"stdout\")"
	case logStderr:
		return withNewline(stderr) + "(stdout not shown: logging is \"stderr\")"
	case logNone:
		return "(output not shown: logging is \"none\")"
	default:
		return combined
	}
}

func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

func withComputedOutputs(props resource.PropertyMap) resource.PropertyMap {
	outs := props.Copy()
	outs["stdout"] = resource.MakeComputed(resource.NewStringProperty(""))
	outs["stderr"] = resource.MakeComputed(resource.NewStringProperty(""))
	return outs
}

func withOutputs(props resource.PropertyMap, stdout, stderr string) resource.PropertyMap {
	outs := props.Copy()
	outs["stdout"] = resource.NewStringProperty(stdout)
	outs["stderr"] = resource.NewStringProperty(stderr)
	return outs
}

func (p *commandProvider) createCommand(ctx context.Context, urn resource.URN, props resource.PropertyMap,
	preview bool,
) (string, resource.PropertyMap, error) {
	id, err := resource.NewUniqueHex(urn.Name(), 8, 0)
	if err != nil {
		return "", nil, err
	}
	if preview {
		return id, withComputedOutputs(props), nil
	}
	in, err := parseCommandInputs(props)
	if err != nil {
		return "", nil, err
	}
	cmd, ok, display, err := commandText(props, "create")
	if err != nil {
		return "", nil, err
	}
	if !ok {
		return "", nil, errors.New("create must be set")
	}
	stdout, stderr, err := p.runCommand(ctx, urn, in, cmd, display, "", "")
	if err != nil {
		return "", nil, err
	}
	return id, withOutputs(props, stdout, stderr), nil
}

func (p *commandProvider) updateCommand(ctx context.Context, urn resource.URN, olds, news resource.PropertyMap,
	preview bool,
) (resource.PropertyMap, error) {
	if preview {
		return withComputedOutputs(news), nil
	}
	in, err := parseCommandInputs(news)
	if err != nil {
		return nil, err
	}
	cmd, ok, display, err := commandText(news, "update")
	if err != nil {
		return nil, err
	}
	if !ok {
		if cmd, ok, display, err = commandText(news, "create"); err != nil {
			return nil, err
		}
	}
	prevStdout, prevStderr := previousOutputs(olds)
	if !ok {
		// Nothing to run: keep the previous outputs.
		return withOutputs(news, prevStdout, prevStderr), nil
	}
	stdout, stderr, err := p.runCommand(ctx, urn, in, cmd, display, prevStdout, prevStderr)
	if err != nil {
		return nil, err
	}
	return withOutputs(news, stdout, stderr), nil
}

func (p *commandProvider) deleteCommand(ctx context.Context, urn resource.URN, state resource.PropertyMap) error {
	cmd, ok, display, err := commandText(state, "delete")
	if err != nil || !ok {
		return err
	}
	in, err := parseCommandInputs(state)
	if err != nil {
		return err
	}
	prevStdout, prevStderr := previousOutputs(state)
	_, _, err = p.runCommand(ctx, urn, in, cmd, display, prevStdout, prevStderr)
	return err
}
