package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"golang.org/x/crypto/ssh"
)

func newEd25519Key(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHostKeyCallback(t *testing.T) {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	a, b := newEd25519Key(t), newEd25519Key(t)
	pinned := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(a))) + " root@host"

	cb, algos, err := hostKeyCallback(pinned)
	if err != nil {
		t.Fatal(err)
	}
	if len(algos) != 1 || algos[0] != ssh.KeyAlgoED25519 {
		t.Errorf("algorithms = %v", algos)
	}
	if err := cb("h:22", addr, a); err != nil {
		t.Errorf("pinned key rejected: %v", err)
	}
	err = cb("h:22", addr, b)
	var mismatch *hostKeyMismatchError
	if !errors.As(err, &mismatch) {
		t.Fatalf("other key accepted or wrong error: %v", err)
	}
	if !strings.Contains(err.Error(), ssh.FingerprintSHA256(b)) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(a)) {
		t.Errorf("error should name both fingerprints: %v", err)
	}

	// No pin: anything goes.
	cb, algos, err = hostKeyCallback("")
	if err != nil || algos != nil || cb("h:22", addr, b) != nil {
		t.Errorf("empty hostKey should accept any key")
	}

	if _, _, err := hostKeyCallback("not a key"); err == nil {
		t.Error("invalid hostKey should be an error")
	}
}

func TestHostKeyCallbackRSAAlgorithms(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	_, algos, err := hostKeyCallback(string(ssh.MarshalAuthorizedKey(pub)))
	if err != nil {
		t.Fatal(err)
	}
	if len(algos) != 3 || algos[0] != ssh.KeyAlgoRSASHA512 {
		t.Errorf("algorithms = %v", algos)
	}
}

func TestParseConnectionDefaults(t *testing.T) {
	c, err := parseConnection(resource.NewObjectProperty(resource.PropertyMap{
		"host":     resource.NewStringProperty("example"),
		"password": resource.MakeSecret(resource.NewStringProperty("pw")),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 22 || c.User != "root" || c.DialErrorLimit != 10 || c.PerDialTimeout.Seconds() != 15 ||
		!c.HasPassword || c.Password != "pw" || c.HasPrivateKey {
		t.Errorf("unexpected connection %+v", c)
	}
	if _, err := c.clientConfig(); err != nil {
		t.Errorf("password-only config: %v", err)
	}

	_, err = parseConnection(resource.NewObjectProperty(resource.PropertyMap{
		"host":  resource.NewStringProperty("example"),
		"proxy": resource.NewObjectProperty(resource.PropertyMap{"host": resource.NewStringProperty("b")}),
	}))
	if err == nil {
		t.Error("proxy must be rejected")
	}

	c, err = parseConnection(resource.NewObjectProperty(resource.PropertyMap{
		"host": resource.NewStringProperty("example"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.clientConfig(); err == nil {
		t.Error("a connection without credentials must be rejected")
	}
}
