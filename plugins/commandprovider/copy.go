package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pkg/sftp"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// copySource is the parsed `source` input of remote.CopyToRemote.
type copySource struct {
	text      string // content of a StringAsset
	isText    bool
	localPath string // path of a FileAsset or FileArchive
}

// parseCopySource accepts a FileAsset (path), a StringAsset (text) or a
// FileArchive (path to a directory or file).
func parseCopySource(v resource.PropertyValue) (*copySource, error) {
	v = unwrapSecret(v)
	switch {
	case v.IsNull():
		return nil, errors.New("source is required")
	case isUnknown(v):
		return nil, errors.New("source is not known yet")
	case v.IsAsset():
		a := v.AssetValue()
		if a.IsPath() {
			return &copySource{localPath: a.Path}, nil
		}
		if a.IsText() {
			return &copySource{text: a.Text, isText: true}, nil
		}
		return nil, errors.New("source asset must be a FileAsset or a StringAsset (remote assets are not supported)")
	case v.IsArchive():
		a := v.ArchiveValue()
		if a.IsPath() {
			return &copySource{localPath: a.Path}, nil
		}
		return nil, errors.New("source archive must be a FileArchive with a local path " +
			"(AssetArchive and remote archives are not supported)")
	default:
		return nil, fmt.Errorf("source must be an asset or an archive, got %s", v.TypeString())
	}
}

// ensureSourceHash fills in a missing Hash so that Diff can compare sources.
func ensureSourceHash(v resource.PropertyValue) error {
	v = unwrapSecret(v)
	switch {
	case v.IsAsset():
		return v.AssetValue().EnsureHash()
	case v.IsArchive():
		a := v.ArchiveValue()
		if a.Hash != "" {
			return nil
		}
		if err := a.EnsureHash(); err == nil {
			return nil
		}
		// A FileArchive may point at a plain (non-archive) file: hash its bytes.
		f, err := os.Open(a.Path)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		a.Hash = hex.EncodeToString(h.Sum(nil))
	}
	return nil
}

// checkCopyToRemote validates remote.CopyToRemote inputs and applies the defaults.
func checkCopyToRemote(news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	inputs := news.Copy()
	var failures []*pulumirpc.CheckFailure
	fail := func(prop, reason string) {
		failures = append(failures, &pulumirpc.CheckFailure{Property: prop, Reason: reason})
	}
	if src := inputs["source"]; !isUnknown(src) {
		if _, err := parseCopySource(src); err != nil {
			fail("source", err.Error())
		} else if err := ensureSourceHash(src); err != nil {
			fail("source", fmt.Sprintf("cannot read source: %v", err))
		}
	}
	if rp := unwrapSecret(inputs["remotePath"]); !isUnknown(rp) && (!rp.IsString() || rp.StringValue() == "") {
		fail("remotePath", "remotePath must be a non-empty string")
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
	return inputs, failures
}

func (p *commandProvider) createCopyToRemote(ctx context.Context, props resource.PropertyMap,
	preview bool,
) (string, resource.PropertyMap, error) {
	if preview {
		return "", props, nil
	}
	if err := p.copyToRemote(ctx, props); err != nil {
		return "", nil, err
	}
	id, err := resource.NewUniqueHex("", 8, 0)
	if err != nil {
		return "", nil, err
	}
	return id, props, nil
}

// updateCopyToRemote handles in-place updates, which only change the
// connection (source, remotePath and triggers changes replace): nothing to copy.
func (p *commandProvider) updateCopyToRemote(news resource.PropertyMap) (resource.PropertyMap, error) {
	return news, nil
}

// copyToRemote dials the host and copies the source to remotePath over SFTP.
func (p *commandProvider) copyToRemote(ctx context.Context, props resource.PropertyMap) error {
	src, err := parseCopySource(props["source"])
	if err != nil {
		return err
	}
	remotePath, ok, err := optString(props, "remotePath")
	if err != nil {
		return err
	}
	if !ok || remotePath == "" {
		return errors.New("remotePath is required")
	}
	conn, err := parseConnection(props["connection"])
	if err != nil {
		return err
	}
	client, err := p.dial(ctx, conn)
	if err != nil {
		return err
	}
	defer p.closeClient(client)
	sc, err := sftp.NewClient(client)
	if err != nil {
		return fmt.Errorf("starting SFTP on %s: %w", conn.address(), err)
	}
	defer sc.Close()

	// Abort the transfer when the operation is cancelled.
	stop := context.AfterFunc(ctx, func() { _ = sc.Close() })
	defer stop()

	if src.isText {
		if info, err := remoteStat(sc, remotePath); err != nil {
			return err
		} else if info != nil && info.IsDir() {
			return fmt.Errorf("remote path %s is a directory; a text asset needs a file path", remotePath)
		}
		return writeRemoteFile(sc, strings.NewReader(src.text), remotePath, 0o644)
	}
	return copyLocalPath(sc, src.localPath, remotePath)
}

// remoteStat stats a remote path, returning nil info (and no error) when it does not exist.
func remoteStat(sc *sftp.Client, p string) (os.FileInfo, error) {
	info, err := sc.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stat %s on the remote host: %w", p, err)
	}
	return info, nil
}

// copyLocalPath copies a local file or directory, with the official
// provider's path semantics:
//
//	source | remote exists as dir | remote does not exist | remote is a file
//	dir    | remote/dir           | remote/dir            | error
//	dir/   | remote/<entries>     | remote/<entries>      | error
//	file   | remote/file          | remote                | remote (overwritten)
func copyLocalPath(sc *sftp.Client, local, remote string) error {
	info, err := os.Stat(local)
	if err != nil {
		return err
	}
	dest, err := remoteStat(sc, remote)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		target := remote
		if dest != nil && dest.IsDir() {
			target = path.Join(remote, filepath.Base(local))
		}
		return copyLocalFile(sc, local, target, info.Mode().Perm())
	}

	if dest != nil && !dest.IsDir() {
		return fmt.Errorf("remote path %s exists but is not a directory", remote)
	}
	target := remote
	if !strings.HasSuffix(local, "/") {
		target = path.Join(remote, filepath.Base(filepath.Clean(local)))
	}
	return copyLocalDir(sc, local, target)
}

// copyLocalDir copies the contents of local into remote, recursively,
// creating directories as needed and preserving permission bits.
func copyLocalDir(sc *sftp.Client, local, remote string) error {
	return filepath.WalkDir(local, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(local, p)
		if err != nil {
			return err
		}
		target := remote
		if rel != "." {
			target = path.Join(remote, filepath.ToSlash(rel))
		}
		info, err := os.Stat(p) // follows symlinks
		if err != nil {
			return err
		}
		if info.IsDir() {
			if d.Type()&fs.ModeSymlink != 0 {
				return fmt.Errorf("%s: symlinked directories are not supported", p)
			}
			existing, err := remoteStat(sc, target)
			if err != nil {
				return err
			}
			if existing != nil && !existing.IsDir() {
				return fmt.Errorf("remote path %s exists but is not a directory", target)
			}
			if existing != nil {
				return nil // keep the mode of directories that already exist
			}
			if err := sc.MkdirAll(target); err != nil {
				return fmt.Errorf("creating remote directory %s: %w", target, err)
			}
			return sc.Chmod(target, info.Mode().Perm())
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s: only regular files and directories can be copied", p)
		}
		return copyLocalFile(sc, p, target, info.Mode().Perm())
	})
}

func copyLocalFile(sc *sftp.Client, local, remote string, mode os.FileMode) error {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	return writeRemoteFile(sc, f, remote, mode)
}

// writeRemoteFile writes r to remote atomically: parent directories are
// created, the data goes to a temporary file in the same directory, which
// gets the mode and is then renamed over the destination.
func writeRemoteFile(sc *sftp.Client, r io.Reader, remote string, mode os.FileMode) error {
	dir := path.Dir(remote)
	if err := sc.MkdirAll(dir); err != nil {
		return fmt.Errorf("creating remote directory %s: %w", dir, err)
	}
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	tmp := path.Join(dir, "."+path.Base(remote)+".tmp-"+hex.EncodeToString(suffix[:]))

	f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("creating remote file %s: %w", tmp, err)
	}
	_, err = f.ReadFrom(r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = sc.Chmod(tmp, mode)
	}
	if err == nil {
		err = renameOver(sc, tmp, remote)
	}
	if err != nil {
		_ = sc.Remove(tmp)
		return fmt.Errorf("writing remote file %s: %w", remote, err)
	}
	return nil
}

// renameOver renames tmp to dst, replacing dst. It uses the OpenSSH
// posix-rename extension when available (atomic), and remove+rename otherwise.
func renameOver(sc *sftp.Client, tmp, dst string) error {
	if _, ok := sc.HasExtension("posix-rename@openssh.com"); ok {
		return sc.PosixRename(tmp, dst)
	}
	if err := sc.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return sc.Rename(tmp, dst)
}
