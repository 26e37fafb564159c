package sources

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Checkout writes the files of the commit rev names that lie below path (as
// Path returns it) into dest, and returns them as a Snapshot: Dir is path's
// directory inside dest, Revision the commit's full hash and Commit its
// metadata, read as Git reads a fetched commit's (Signer is nil: a local
// commit is not verified; Ref is empty).
//
// dest must not exist. It is the caller's, to remove with os.RemoveAll when
// done: unlike Git's snapshots, nothing in it is read-only. Only regular
// files, directories and symbolic links are written, all inside dest. The
// files are those git archive writes, so export-ignore attributes apply.
func (r *LocalRepository) Checkout(ctx context.Context, rev, path, dest string) (*Snapshot, error) {
	commit, err := r.resolve(ctx, rev)
	if err != nil {
		return nil, err
	}
	meta, err := r.commit(ctx, commit)
	if err != nil {
		return nil, err
	}
	if err := r.export(ctx, commit, path, dest); err != nil {
		return nil, err
	}
	return &Snapshot{Dir: filepath.Join(dest, filepath.FromSlash(path)), Revision: commit, Commit: meta}, nil
}

// commit reads the metadata of a commit, given by its full hash.
func (r *LocalRepository) commit(ctx context.Context, hash string) (Commit, error) {
	var raw bytes.Buffer
	if err := r.git(ctx, r.top, &raw, "cat-file", "commit", hash); err != nil {
		return Commit{}, err
	}
	obj := &plumbing.MemoryObject{}
	obj.SetType(plumbing.CommitObject)
	if _, err := obj.Write(raw.Bytes()); err != nil {
		return Commit{}, err
	}
	var c object.Commit
	if err := c.Decode(obj); err != nil {
		return Commit{}, fmt.Errorf("commit %s: %w", shortHash(hash), err)
	}
	return commitOf(&c, nil), nil
}

// export writes the files of the commit below dir into dest, which must not
// exist.
func (r *LocalRepository) export(ctx context.Context, commit, dir, dest string) error {
	if err := os.Mkdir(dest, 0o700); err != nil {
		return err
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return err
	}
	defer root.Close()
	pr, pw := io.Pipe()
	extracted := make(chan error, 1)
	go func() {
		err := untar(root, pr)
		if err == nil {
			_, err = io.Copy(io.Discard, pr) // the padding after the last entry
		}
		pr.CloseWithError(err) // unblocks git if extraction stopped early
		extracted <- err
	}()
	err = r.git(ctx, r.top, pw, "archive", "--format=tar", commit, "--", dir)
	pw.CloseWithError(err)
	if xerr := <-extracted; err == nil {
		err = xerr
	}
	if err != nil {
		return err
	}
	if fi, err := root.Stat(filepath.FromSlash(dir)); err != nil || !fi.IsDir() {
		return fmt.Errorf("commit %s has no directory %s", shortHash(commit), dir)
	}
	return nil
}

// untar writes the entries of a tar stream under root; entries of other types
// than directories, regular files and symbolic links are skipped.
func untar(root *os.Root, r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		name := filepath.FromSlash(path.Clean(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, 0o700)
		case tar.TypeReg:
			if err = root.MkdirAll(filepath.Dir(name), 0o700); err == nil {
				err = writeEntry(root, name, h.FileInfo().Mode().Perm()&0o700, tr)
			}
		case tar.TypeSymlink:
			if err = root.MkdirAll(filepath.Dir(name), 0o700); err == nil {
				err = root.Symlink(h.Linkname, name)
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
}

// writeEntry writes the contents of a regular file to a new file under root.
func writeEntry(root *os.Root, name string, mode os.FileMode, r io.Reader) error {
	f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode|0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// shortHash is the first 12 characters of a commit hash, as messages show it.
func shortHash(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}
