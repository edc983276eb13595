package main

// End-to-end tests of the provider's gRPC methods against an in-process SSH
// server (exec and SFTP), so that they run without sshd or the Pulumi CLI.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/archive"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/asset"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
	"google.golang.org/protobuf/types/known/structpb"
)

type testServer struct {
	addr      string
	hostKey   string // authorized_keys line
	clientKey string // PEM private key
	otherHost string // a host key that is not the server's
	listener  net.Listener
	wg        sync.WaitGroup
}

func genKey(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return signer, string(pem.EncodeToMemory(block))
}

// startTestServer runs an SSH server on loopback that executes commands with
// `sh -c`, accepts env requests for TEST_* and PULUMI_COMMAND_* (like sshd's
// AcceptEnv), and serves the sftp subsystem on the local file system.
func startTestServer(t *testing.T) *testServer {
	t.Helper()
	hostSigner, _ := genKey(t)
	otherSigner, _ := genKey(t)
	clientSigner, clientPEM := genKey(t)
	clientPub := clientSigner.PublicKey().Marshal()

	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(clientPub) {
				return nil, nil
			}
			return nil, fmt.Errorf("unknown key")
		},
	}
	cfg.AddHostKey(hostSigner)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{
		addr:      l.Addr().String(),
		hostKey:   strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostSigner.PublicKey()))),
		otherHost: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(otherSigner.PublicKey()))),
		clientKey: clientPEM,
		listener:  l,
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go s.serveConn(nc, cfg)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		s.wg.Wait()
	})
	return s
}

func (s *testServer) serveConn(nc net.Conn, cfg *ssh.ServerConfig) {
	_, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		_ = nc.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		go serveSession(ch, creqs)
	}
}

func serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var env []string
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			ok := ssh.Unmarshal(req.Payload, &kv) == nil &&
				(strings.HasPrefix(kv.Name, "TEST_") || strings.HasPrefix(kv.Name, "PULUMI_COMMAND_"))
			if ok {
				env = append(env, kv.Name+"="+kv.Value)
			}
			_ = req.Reply(ok, nil)
		case "exec":
			var cmd struct{ Command string }
			if ssh.Unmarshal(req.Payload, &cmd) != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			c := exec.Command("sh", "-c", cmd.Command)
			c.Env = append(os.Environ(), env...)
			c.Stdout, c.Stderr = ch, ch.Stderr()
			stdin, _ := c.StdinPipe()
			status := uint32(0)
			if err := c.Start(); err != nil {
				status = 127
			} else {
				go func() { _, _ = io.Copy(stdin, ch); _ = stdin.Close() }()
				if err := c.Wait(); err != nil {
					status = 1
					if ee, ok := err.(*exec.ExitError); ok {
						status = uint32(ee.ExitCode())
					}
				}
			}
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
			return
		case "subsystem":
			var sub struct{ Name string }
			if ssh.Unmarshal(req.Payload, &sub) != nil || sub.Name != "sftp" {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			srv, err := sftp.NewServer(ch)
			if err == nil {
				_ = srv.Serve()
			}
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

func (s *testServer) connection(hostKey string) resource.PropertyValue {
	host, port, _ := net.SplitHostPort(s.addr)
	p, _ := strconv.Atoi(port)
	return resource.MakeSecret(resource.NewObjectProperty(resource.PropertyMap{
		"host":           resource.NewStringProperty(host),
		"port":           resource.NewNumberProperty(float64(p)),
		"user":           resource.NewStringProperty("tester"),
		"privateKey":     resource.MakeSecret(resource.NewStringProperty(s.clientKey)),
		"hostKey":        resource.NewStringProperty(hostKey),
		"dialErrorLimit": resource.NewNumberProperty(0),
	}))
}

func mustMarshal(t *testing.T, m resource.PropertyMap) *structpb.Struct {
	t.Helper()
	s, err := marshal(m, "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustUnmarshal(t *testing.T, s *structpb.Struct) resource.PropertyMap {
	t.Helper()
	m, err := unmarshal(s, "test")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const cmdURN = "urn:pulumi:dev::proj::command:remote:Command::writer"
const copyURN = "urn:pulumi:dev::proj::command:remote:CopyToRemote::copy"

func checked(t *testing.T, p *commandProvider, urn string, news resource.PropertyMap) resource.PropertyMap {
	t.Helper()
	resp, err := p.Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: mustMarshal(t, news)})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Failures) > 0 {
		t.Fatalf("check failures: %v", resp.Failures)
	}
	return mustUnmarshal(t, resp.Inputs)
}

func TestCommandLifecycle(t *testing.T) {
	srv := startTestServer(t)
	p := newCommandProvider(nil)
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "written.txt")
	deletes := filepath.Join(dir, "deletes.log")

	inputs := func(stdin string) resource.PropertyMap {
		return checked(t, p, cmdURN, resource.PropertyMap{
			"connection":  srv.connection(srv.hostKey),
			"create":      resource.NewStringProperty("cat > " + file + " && echo created:$(cat " + file + ") && echo warn >&2"),
			"update":      resource.NewStringProperty("cat > " + file + " && echo updated:$(cat " + file + ") prev=[$PULUMI_COMMAND_STDOUT] env=$TEST_X"),
			"delete":      resource.NewStringProperty("echo deleted:[$PULUMI_COMMAND_STDOUT] >> " + deletes),
			"stdin":       resource.MakeSecret(resource.NewStringProperty(stdin)),
			"environment": resource.NewObjectProperty(resource.PropertyMap{"TEST_X": resource.NewStringProperty("x1")}),
			"logging":     resource.NewStringProperty("none"),
		})
	}

	// Preview: nothing runs, outputs are unknown.
	prev, err := p.Create(ctx, &pulumirpc.CreateRequest{Urn: cmdURN, Properties: mustMarshal(t, inputs("hello")), Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	if outs := mustUnmarshal(t, prev.Properties); !outs["stdout"].IsComputed() {
		t.Errorf("preview stdout should be unknown, got %v", outs["stdout"])
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("preview must not run the command")
	}

	created, err := p.Create(ctx, &pulumirpc.CreateRequest{Urn: cmdURN, Properties: mustMarshal(t, inputs("hello"))})
	if err != nil {
		t.Fatal(err)
	}
	outs := mustUnmarshal(t, created.Properties)
	if got := outs["stdout"].StringValue(); got != "created:hello" {
		t.Errorf("stdout = %q", got)
	}
	if got := outs["stderr"].StringValue(); got != "warn" {
		t.Errorf("stderr = %q", got)
	}
	if !outs["stdin"].IsSecret() || !outs["connection"].IsSecret() {
		t.Error("secret inputs must stay secret in the outputs")
	}
	if !strings.HasPrefix(created.Id, "writer") {
		t.Errorf("id = %q", created.Id)
	}

	updated, err := p.Update(ctx, &pulumirpc.UpdateRequest{
		Urn: cmdURN, Id: created.Id, Olds: created.Properties, News: mustMarshal(t, inputs("world")),
	})
	if err != nil {
		t.Fatal(err)
	}
	outs = mustUnmarshal(t, updated.Properties)
	if got := outs["stdout"].StringValue(); got != "updated:world prev=[created:hello] env=x1" {
		t.Errorf("update stdout = %q", got)
	}

	if _, err := p.Delete(ctx, &pulumirpc.DeleteRequest{Urn: cmdURN, Id: created.Id, Properties: updated.Properties}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(deletes); string(b) != "deleted:[updated:world prev=[created:hello] env=x1]\n" {
		t.Errorf("delete log = %q", b)
	}
}

func TestCommandFailures(t *testing.T) {
	srv := startTestServer(t)
	p := newCommandProvider(nil)
	ctx := context.Background()

	props := func(hostKey, logging string) *structpb.Struct {
		return mustMarshal(t, checked(t, p, cmdURN, resource.PropertyMap{
			"connection": srv.connection(hostKey),
			"create":     resource.NewStringProperty("echo out-$((1+1)); echo err-$((2+2)) >&2; exit 3"),
			"logging":    resource.NewStringProperty(logging),
		}))
	}

	_, err := p.Create(ctx, &pulumirpc.CreateRequest{Urn: cmdURN, Properties: props(srv.hostKey, "stdoutAndStderr")})
	if err == nil || !strings.Contains(err.Error(), "exited with status 3") ||
		!strings.Contains(err.Error(), "out-2") || !strings.Contains(err.Error(), "err-4") {
		t.Errorf("unexpected error: %v", err)
	}
	_, err = p.Create(ctx, &pulumirpc.CreateRequest{Urn: cmdURN, Properties: props(srv.hostKey, "none")})
	if err == nil || !strings.Contains(err.Error(), "exited with status 3") || strings.Contains(err.Error(), "out-2") {
		t.Errorf("logging none must keep output out of the error: %v", err)
	}

	start := time.Now()
	_, err = p.Create(ctx, &pulumirpc.CreateRequest{Urn: cmdURN, Properties: props(srv.otherHost, "none")})
	if err == nil || !strings.Contains(err.Error(), "host key verification failed") {
		t.Errorf("wrong host key must fail: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("a host key mismatch must not be retried")
	}
}

func TestDialErrorLimit(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	_ = l.Close() // nothing listens there now
	_, key := genKey(t)
	p := newCommandProvider(nil)
	c := &connection{Host: "127.0.0.1", Port: addr.Port, User: "u", PrivateKey: key, HasPrivateKey: true,
		DialErrorLimit: 1, PerDialTimeout: time.Second}
	_, err = p.dial(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "giving up after 2 failed dials") {
		t.Errorf("unexpected error: %v", err)
	}
}

func TestCopyToRemote(t *testing.T) {
	srv := startTestServer(t)
	p := newCommandProvider(nil)
	ctx := context.Background()
	local := t.TempDir()
	remote := t.TempDir()

	src := filepath.Join(local, "payload.txt")
	if err := os.WriteFile(src, []byte("v1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(local, "tree", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(local, "tree", "sub", "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	fileAsset, err := asset.FromPath(src)
	if err != nil {
		t.Fatal(err)
	}
	dirArchive, err := archive.FromPath(filepath.Join(local, "tree"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		source resource.PropertyValue
		dest   string
		check  string // remote file expected afterwards
		mode   os.FileMode
		body   string
	}{
		{"file", resource.NewAssetProperty(fileAsset), filepath.Join(remote, "a", "b", "payload.txt"),
			filepath.Join(remote, "a", "b", "payload.txt"), 0o640, "v1\n"},
		{"text", resource.NewAssetProperty(&asset.Asset{Sig: asset.AssetSig, Text: "hello\n"}),
			filepath.Join(remote, "t.txt"), filepath.Join(remote, "t.txt"), 0o644, "hello\n"},
		{"dir", resource.NewArchiveProperty(dirArchive), filepath.Join(remote, "dst"),
			filepath.Join(remote, "dst", "tree", "sub", "run.sh"), 0o755, "#!/bin/sh\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := checked(t, p, copyURN, resource.PropertyMap{
				"connection": srv.connection(srv.hostKey),
				"source":     tc.source,
				"remotePath": resource.NewStringProperty(tc.dest),
			})
			resp, err := p.Create(ctx, &pulumirpc.CreateRequest{Urn: copyURN, Properties: mustMarshal(t, in)})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Id == "" {
				t.Error("empty id")
			}
			info, err := os.Stat(tc.check)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != tc.mode {
				t.Errorf("mode = %v, want %v", info.Mode().Perm(), tc.mode)
			}
			if b, _ := os.ReadFile(tc.check); string(b) != tc.body {
				t.Errorf("content = %q", b)
			}
		})
	}
	entries, _ := os.ReadDir(filepath.Join(remote, "a", "b"))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}
