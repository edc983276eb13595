package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"golang.org/x/crypto/ssh"
)

// connection is the parsed `connection` input of remote resources.
type connection struct {
	Host               string
	Port               int
	User               string
	Password           string
	HasPassword        bool
	PrivateKey         string
	HasPrivateKey      bool
	PrivateKeyPassword string
	HostKey            string        // authorized_keys format; empty accepts any host key
	DialErrorLimit     int           // -1 retries forever
	PerDialTimeout     time.Duration // 0: no per-dial limit
}

// parseConnection reads the connection object (secret wrappers, at any level,
// are unwrapped) and applies the defaults of the official provider.
func parseConnection(v resource.PropertyValue) (*connection, error) {
	inner := unwrapSecret(v)
	if isUnknown(inner) {
		return nil, errors.New("connection is not known yet")
	}
	if !inner.IsObject() {
		return nil, errors.New("connection must be an object")
	}
	obj := inner.ObjectValue()
	for _, k := range []resource.PropertyKey{"proxy", "agentSocketPath"} {
		if present(obj[k]) {
			return nil, fmt.Errorf("connection.%s is not supported by this minimal command provider", k)
		}
	}

	c := &connection{}
	var err error
	var ok bool
	if c.Host, ok, err = optString(obj, "host"); err != nil {
		return nil, fmt.Errorf("connection.%w", err)
	} else if !ok || c.Host == "" {
		return nil, errors.New("connection.host is required")
	}
	port, err := optNumber(obj, "port", 22)
	if err != nil {
		return nil, fmt.Errorf("connection.%w", err)
	}
	c.Port = int(port)
	if c.User, ok, err = optString(obj, "user"); err != nil {
		return nil, fmt.Errorf("connection.%w", err)
	} else if !ok {
		c.User = "root"
	}
	if c.Password, c.HasPassword, err = optString(obj, "password"); err != nil {
		return nil, fmt.Errorf("connection.%w", err)
	}
	if c.PrivateKey, c.HasPrivateKey, err = optString(obj, "privateKey"); err != nil {
		return nil, fmt.Errorf("connection.%w", err)
	}
	if c.PrivateKeyPassword, _, err = optString(obj, "privateKeyPassword"); err != nil {
		return nil, fmt.Errorf("connection.%w", err)
	}
	if c.HostKey, _, err = optString(obj, "hostKey"); err != nil {
		return nil, fmt.Errorf("connection.%w", err)
	}
	limit, err := optNumber(obj, "dialErrorLimit", 10)
	if err != nil {
		return nil, fmt.Errorf("connection.%w", err)
	}
	c.DialErrorLimit = int(limit)
	timeout, err := optNumber(obj, "perDialTimeout", 15)
	if err != nil {
		return nil, fmt.Errorf("connection.%w", err)
	}
	if timeout > 0 {
		c.PerDialTimeout = time.Duration(timeout * float64(time.Second))
	}
	return c, nil
}

func (c *connection) address() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// hostKeyMismatchError is returned when the server's host key is not the pinned one.
type hostKeyMismatchError struct {
	addr      string
	got, want string // SHA256 fingerprints
}

func (e *hostKeyMismatchError) Error() string {
	return fmt.Sprintf("host key verification failed for %s: the server presented %s but connection.hostKey pins %s",
		e.addr, e.got, e.want)
}

// hostKeyCallback returns a callback that accepts only the pinned key (a
// public key in authorized_keys format, e.g. "ssh-ed25519 AAAA... comment"),
// or any key when pinned is empty. It also returns the host key algorithms to
// offer so that the server presents a key of the pinned type.
func hostKeyCallback(pinned string) (ssh.HostKeyCallback, []string, error) {
	if pinned == "" {
		return ssh.InsecureIgnoreHostKey(), nil, nil
	}
	want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pinned))
	if err != nil {
		return nil, nil, fmt.Errorf("connection.hostKey is not a public key in authorized_keys format: %w", err)
	}
	wantBytes := want.Marshal()
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if bytes.Equal(key.Marshal(), wantBytes) {
			return nil
		}
		return &hostKeyMismatchError{
			addr: hostname,
			got:  key.Type() + " " + ssh.FingerprintSHA256(key),
			want: want.Type() + " " + ssh.FingerprintSHA256(want),
		}
	}
	algos := []string{want.Type()}
	if want.Type() == ssh.KeyAlgoRSA {
		algos = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return cb, algos, nil
}

// clientConfig builds the SSH client configuration: private key and/or
// password authentication, and host key pinning when hostKey is set.
func (c *connection) clientConfig() (*ssh.ClientConfig, error) {
	cb, algos, err := hostKeyCallback(c.HostKey)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{
		User:              c.User,
		HostKeyCallback:   cb,
		HostKeyAlgorithms: algos,
		Timeout:           c.PerDialTimeout,
	}
	if c.HasPrivateKey {
		var signer ssh.Signer
		if c.PrivateKeyPassword != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(c.PrivateKey), []byte(c.PrivateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(c.PrivateKey))
		}
		if err != nil {
			// Never include the key material in the error.
			return nil, fmt.Errorf("connection.privateKey could not be parsed: %w", err)
		}
		cfg.Auth = append(cfg.Auth, ssh.PublicKeys(signer))
	}
	if c.HasPassword {
		password := c.Password
		cfg.Auth = append(cfg.Auth,
			ssh.Password(password),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = password
				}
				return answers, nil
			}))
	}
	if len(cfg.Auth) == 0 {
		return nil, errors.New("connection needs privateKey or password " +
			"(ssh-agent authentication is not supported by this minimal command provider)")
	}
	return cfg, nil
}

// dialOnce makes one connection attempt bounded by the per-dial timeout.
func dialOnce(ctx context.Context, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	dctx, cancel := context.WithCancel(ctx)
	if cfg.Timeout > 0 {
		dctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
	}
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// Bound the SSH handshake by the same deadline, and abort it on cancellation.
	if deadline, ok := dctx.Deadline(); ok {
		_ = nc.SetDeadline(deadline)
	}
	stop := context.AfterFunc(dctx, func() { _ = nc.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	stopped := stop()
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	if !stopped {
		// The deadline fired right after the handshake finished; the conn is closed.
		_ = sc.Close()
		return nil, context.DeadlineExceeded
	}
	_ = nc.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// dial connects to the host, retrying failed dials with a capped exponential
// backoff until dialErrorLimit attempts have failed (as the official provider
// does, the limit counts failed dials; -1 means unlimited). A host key
// mismatch or an unusable configuration is not retried.
func (p *commandProvider) dial(ctx context.Context, c *connection) (*ssh.Client, error) {
	cfg, err := c.clientConfig()
	if err != nil {
		return nil, err
	}
	addr := c.address()
	backoff := time.Second
	for failures := 1; ; failures++ {
		client, err := dialOnce(ctx, addr, cfg)
		if err == nil {
			p.trackClient(client)
			return client, nil
		}
		var mismatch *hostKeyMismatchError
		if errors.As(err, &mismatch) {
			return nil, fmt.Errorf("ssh %s@%s: %w", c.User, addr, mismatch)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ssh %s@%s: %w (last error: %v)", c.User, addr, ctx.Err(), err)
		}
		if c.DialErrorLimit >= 0 && failures > c.DialErrorLimit {
			return nil, fmt.Errorf("ssh %s@%s: giving up after %d failed dials: %w", c.User, addr, failures, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ssh %s@%s: %w (last error: %v)", c.User, addr, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff *= 2
		if backoff > 10*time.Second {
			backoff = 10 * time.Second
		}
	}
}
