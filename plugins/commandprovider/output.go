package main

import (
	"bytes"
	"context"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// loggingMode is the `logging` input of remote.Command.
type loggingMode string

const (
	logStdout          loggingMode = "stdout"
	logStderr          loggingMode = "stderr"
	logStdoutAndStderr loggingMode = "stdoutAndStderr"
	logNone            loggingMode = "none"
)

func (l loggingMode) valid() bool {
	switch l {
	case logStdout, logStderr, logStdoutAndStderr, logNone:
		return true
	}
	return false
}

func (l loggingMode) stdout() bool { return l == logStdout || l == logStdoutAndStderr }
func (l loggingMode) stderr() bool { return l == logStderr || l == logStdoutAndStderr }

// lockedBuffer is a bytes.Buffer safe for the concurrent writers that an SSH
// session uses for stdout and stderr.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lineLogger sends each complete line written to it to the engine as an Info
// message for the resource; Flush sends a trailing partial line.
type lineLogger struct {
	mu      sync.Mutex
	pending []byte
	emit    func(line string)
}

func newLineLogger(ctx context.Context, p *commandProvider, urn resource.URN) *lineLogger {
	return &lineLogger{emit: func(line string) { p.log(ctx, diag.Info, urn, line) }}
}

func (l *lineLogger) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = append(l.pending, b...)
	for {
		i := bytes.IndexByte(l.pending, '\n')
		if i < 0 {
			break
		}
		l.emit(strings.TrimSuffix(string(l.pending[:i]), "\r"))
		l.pending = l.pending[i+1:]
	}
	return len(b), nil
}

func (l *lineLogger) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) > 0 {
		l.emit(string(l.pending))
		l.pending = nil
	}
}
