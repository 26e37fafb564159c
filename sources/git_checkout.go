package sources

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// maxSymlinkTarget bounds the target of a symbolic link read from a tree.
const maxSymlinkTarget = 4096

// checkout writes the commit's tree to <cache>/snapshots/<commit> and returns
// that directory. The tree is written into a temporary directory next to it,
// made read-only and renamed into place, so the directory either does not
// exist or is complete. An existing directory is taken as it is.
//
// A file the snapshot written last holds with the same content and mode is
// hard-linked from there instead of written (snapshots are read-only and never
// change): a one-tenant commit to a fleet of 600 files links 599 of them.
func (g *Git) checkout(st storer.EncodedObjectStorer, c *object.Commit) (string, error) {
	final := filepath.Join(g.snapshotDir, c.Hash.String())
	if fi, err := os.Lstat(final); err == nil && fi.IsDir() {
		// Written complete from the commit's tree by an earlier checkout: its
		// files are known from the tree without reading them, when the tree
		// can be read (else they are not known, and the snapshot serves all
		// the same).
		g.last = nil
		if tree, err := c.Tree(); err == nil {
			if files, err := treeFiles(tree); err == nil {
				g.last = &checkedOut{dir: final, files: files}
			}
		}
		return final, nil
	}
	tree, err := c.Tree()
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return "", err
	}
	if err != nil {
		return "", g.invalidTree(c, err)
	}
	tmp, err := os.MkdirTemp(g.snapshotDir, ".tmp-"+c.Hash.String()[:12]+"-")
	if err != nil {
		return "", g.localError("create a snapshot", err)
	}
	done := false
	defer func() {
		if !done {
			_ = removeTree(tmp)
		}
	}()
	prev := g.last
	if prev != nil {
		if fi, err := os.Lstat(prev.dir); err != nil || !fi.IsDir() {
			prev = nil
		}
	}
	g.last = nil
	files, err := writeTree(tmp, st, tree, prev)
	if err != nil {
		var pathErr *treePathError
		if errors.As(err, &pathErr) {
			return "", g.invalidTree(c, err)
		}
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return "", err
		}
		return "", g.localError("write a snapshot", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", g.localError("move a snapshot into place", err)
	}
	done = true
	g.last = &checkedOut{dir: final, files: files}
	return final, nil
}

// checkedOut is a snapshot as checkout wrote it: its directory and its regular
// files, by path in the tree.
type checkedOut struct {
	dir   string
	files map[string]treeFile
}

// ids are the content IDs of c's files (Snapshot.Files): blob hash and mode.
func (c *checkedOut) ids() map[string]string {
	ids := make(map[string]string, len(c.files))
	for name, f := range c.files {
		ids[name] = f.hash.String() + " " + f.mode.String()
	}
	return ids
}

// treeFile is a regular file of a tree: its blob and mode.
type treeFile struct {
	hash plumbing.Hash
	mode filemode.FileMode
}

// treeFiles returns the regular files of tree, as writeTree would write them.
func treeFiles(tree *object.Tree) (map[string]treeFile, error) {
	files := map[string]treeFile{}
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for {
		name, entry, err := w.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		switch entry.Mode {
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			files[name] = treeFile{hash: entry.Hash, mode: entry.Mode}
		}
	}
}

func (g *Git) invalidTree(c *object.Commit, err error) error {
	return &Error{URL: g.url, Kind: ErrInvalidRevision, Msg: fmt.Sprintf("commit %s cannot be checked out", c.Hash), Err: err,
		Hint: "fix the offending path in a new commit"}
}

// treePathError is a tree entry that cannot be written.
type treePathError struct {
	path string
	err  error
}

func (e *treePathError) Error() string { return fmt.Sprintf("path %q: %v", e.path, e.err) }
func (e *treePathError) Unwrap() error { return e.err }

// writeTree writes tree into the empty directory dir through an os.Root, so
// no entry can land outside it, and makes everything read-only: files 0444
// (0555 when executable), directories 0555. Submodules are skipped. A regular
// file prev holds at the same path, blob and mode is hard-linked from prev's
// directory. It returns the regular files it wrote or linked.
func writeTree(dir string, st storer.EncodedObjectStorer, tree *object.Tree, prev *checkedOut) (map[string]treeFile, error) {
	files := map[string]treeFile{}
	return files, writeTreeFiles(dir, st, tree, prev, files)
}

func writeTreeFiles(dir string, st storer.EncodedObjectStorer, tree *object.Tree, prev *checkedOut, files map[string]treeFile) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	// Files are created through a Root of their own directory, by their base
	// name: one system call each, where a path through the top Root opens every
	// directory on the way again (at 600 files, most of a checkout's time).
	dirRoots := map[string]*os.Root{".": root}
	defer func() {
		for d, r := range dirRoots {
			if d != "." {
				r.Close()
			}
		}
	}()
	inDir := func(name string) (*os.Root, string, error) {
		d, base := path.Split(name)
		d = path.Clean(d)
		if r, ok := dirRoots[d]; ok {
			return r, base, nil
		}
		r, err := root.OpenRoot(d)
		if err != nil {
			return nil, "", treeErr(name, err)
		}
		dirRoots[d] = r
		return r, base, nil
	}
	var dirs []string
	for {
		name, entry, err := w.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, plumbing.ErrObjectNotFound) {
				return err
			}
			// The walker rejects unsafe names (".git", "..", ...) before
			// descending; it reports the entry's own name.
			return &treePathError{path: entry.Name, err: err}
		}
		switch entry.Mode {
		case filemode.Dir:
			if err := root.Mkdir(name, 0o755); err != nil {
				return treeErr(name, err)
			}
			dirs = append(dirs, name)
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			mode := os.FileMode(0o444)
			if entry.Mode == filemode.Executable {
				mode = 0o555
			}
			f := treeFile{hash: entry.Hash, mode: entry.Mode}
			files[name] = f
			if prev != nil && prev.files[name] == f {
				// Both paths lead through directories checkout created (a
				// path holding a file in a tree has only directories above
				// it), so nothing on the way can be a link.
				if err := os.Link(filepath.Join(prev.dir, filepath.FromSlash(name)), filepath.Join(dir, filepath.FromSlash(name))); err == nil {
					continue
				}
			}
			r, base, err := inDir(name)
			if err != nil {
				return err
			}
			if err := writeBlob(r, st, name, base, entry.Hash, mode); err != nil {
				return err
			}
		case filemode.Symlink:
			target, err := readBlob(st, entry.Hash, maxSymlinkTarget)
			if err != nil {
				return treeErr(name, err)
			}
			if err := root.Symlink(string(target), name); err != nil {
				return treeErr(name, err)
			}
		case filemode.Submodule:
			// A submodule is a commit of another repository; it is not
			// fetched, and its directory stays absent.
		default:
			return &treePathError{path: name, err: fmt.Errorf("unsupported file mode %o", uint32(entry.Mode))}
		}
	}
	// Deepest first is not needed for permissions, but keeps the order
	// obvious: contents are complete before their directory is locked.
	for _, d := range slices.Backward(dirs) {
		if err := root.Chmod(d, 0o555); err != nil {
			return err
		}
	}
	return os.Chmod(dir, 0o555)
}

// treeErr wraps an error writing name: a refusal by os.Root (a path that
// would leave the snapshot, or a duplicate entry) is the tree's fault,
// anything else the disk's.
func treeErr(name string, err error) error {
	// os.Root's refusal of a path that escapes it has no exported error value;
	// its message is the only way to tell it from a failing disk.
	var pathErr *os.PathError
	if errors.Is(err, fs.ErrExist) || (errors.As(err, &pathErr) && strings.Contains(pathErr.Err.Error(), "escapes")) {
		return &treePathError{path: name, err: err}
	}
	return err
}

// writeBlob writes blob h as file base of dir, the directory of name (the
// path in the tree, for errors).
func writeBlob(dir *os.Root, st storer.EncodedObjectStorer, name, base string, h plumbing.Hash, mode os.FileMode) (err error) {
	blob, err := object.GetBlob(st, h)
	if err != nil {
		return treeErr(name, err)
	}
	r, err := blob.Reader()
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := dir.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return treeErr(name, err)
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	_, err = io.Copy(f, r)
	return err
}

func readBlob(st storer.EncodedObjectStorer, h plumbing.Hash, limit int64) ([]byte, error) {
	blob, err := object.GetBlob(st, h)
	if err != nil {
		return nil, err
	}
	if blob.Size > limit {
		return nil, fmt.Errorf("symbolic link target longer than %d bytes", limit)
	}
	r, err := blob.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, limit))
}

// removeTree removes dir and everything below it, first making read-only
// directories writable again, as snapshots are.
func removeTree(dir string) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return os.Chmod(p, 0o755)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.RemoveAll(dir)
}

// writeFileAtomic writes data to a temporary file next to name and renames
// it into place.
func writeFileAtomic(name string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}
