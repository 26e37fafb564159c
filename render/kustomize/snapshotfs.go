package kustomize

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// errReadOnly is returned by every writing method of snapshotFS: a build only reads.
var errReadOnly = errors.New("the repository snapshot is read-only during a kustomize build")

// escapeError says that a path leaves the snapshot root, either by its name (..,
// an absolute path elsewhere) or through a symlink.
type escapeError struct {
	// path is the path as asked for, relative to the root where it is inside it
	// lexically, else as given.
	path string
	// link is the path inside the root that resolved outside it; empty when the
	// path itself leaves the root by its name.
	link string
	// target is where link resolved to.
	target string
}

func (e *escapeError) Error() string {
	if e.link == "" {
		return fmt.Sprintf("path %s leaves the snapshot root", e.path)
	}
	return fmt.Sprintf("path %s leaves the snapshot root through a symlink (%s -> %s)", e.path, e.link, e.target)
}

// snapshotFS is the only file system a build reads through. It confines every path
// to the snapshot root, resolving symlinks before deciding, opens files through an
// os.Root (which refuses escapes on its own as a second line), never writes, and
// records every file it returns the contents of and every symlink it followed.
//
// Paths given to it are absolute, or relative to the root. Kustomize's loaders work
// with the directories CleanedAbs returns, which are the resolved (symlink-free)
// directories inside the root.
type snapshotFS struct {
	// root is the snapshot root, absolute and free of symlinks.
	root string
	// dir is the root opened as an os.Root.
	dir *os.Root

	mu sync.Mutex
	// inputs are the files read, relative to root, slash-separated.
	inputs map[string]struct{}
	// links are the symlinks followed to reach what was read, likewise.
	links map[string]struct{}
}

var _ filesys.FileSystem = (*snapshotFS)(nil)

// newSnapshotFS opens root, which must be an existing directory given as an
// absolute path. Close it when the build is done.
func newSnapshotFS(root string) (*snapshotFS, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("snapshot root %s is not an absolute path; pass the checkout's absolute path", root)
	}
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot root %s: %w", root, err)
	}
	dir, err := os.OpenRoot(real)
	if err != nil {
		return nil, fmt.Errorf("snapshot root %s: %w", root, err)
	}
	return &snapshotFS{root: real, dir: dir, inputs: map[string]struct{}{}, links: map[string]struct{}{}}, nil
}

// Close releases the root directory.
func (f *snapshotFS) Close() error { return f.dir.Close() }

// Inputs returns the files read so far, relative to the root, slash-separated and
// sorted. Each is a regular file at its real (symlink-free) path.
func (f *snapshotFS) Inputs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedKeys(f.inputs)
}

// Symlinks returns the symlinks followed so far to reach what was read, relative to
// the root, slash-separated and sorted.
func (f *snapshotFS) Symlinks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedKeys(f.links)
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// rel turns a path inside the root into a slash-separated path relative to it.
func (f *snapshotFS) rel(abs string) string {
	r, err := filepath.Rel(f.root, abs)
	if err != nil {
		return abs
	}
	return filepath.ToSlash(r)
}

// abs makes p absolute (relative paths are taken from the root) and refuses it if
// it names a place outside the root.
func (f *snapshotFS) abs(p string) (string, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(f.root, p)
	}
	p = filepath.Clean(p)
	if !within(f.root, p) {
		shown := p
		if r, err := filepath.Rel(f.root, p); err == nil {
			shown = filepath.ToSlash(r)
		}
		return "", &escapeError{path: shown}
	}
	return p, nil
}

// within reports whether p is root or below it; both are clean absolute paths.
func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}

// resolve returns the real location of p, following every symlink, and whether it
// exists. A path that does not exist is resolved as far as its longest existing
// ancestor, so that a missing file behind a symlink out of the root is still
// refused. Any path that resolves outside the root is an *escapeError.
func (f *snapshotFS) resolve(p string) (string, bool, error) {
	abs, err := f.abs(p)
	if err != nil {
		return "", false, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err == nil {
		if !within(f.root, real) {
			return "", false, f.symlinkEscape(abs, real)
		}
		return real, true, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	// Walk up to the longest existing ancestor and check where it really is.
	rest := []string{}
	for dir := abs; dir != f.root; {
		rest = append([]string{filepath.Base(dir)}, rest...)
		dir = filepath.Dir(dir)
		realDir, err := filepath.EvalSymlinks(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return "", false, err
		}
		if !within(f.root, realDir) {
			return "", false, f.symlinkEscape(dir, realDir)
		}
		return filepath.Join(append([]string{realDir}, rest...)...), false, nil
	}
	return abs, false, nil
}

// symlinkEscape names the first component of abs that is a symlink resolving outside
// the root, so the error points at the link to fix.
func (f *snapshotFS) symlinkEscape(abs, real string) error {
	e := &escapeError{path: f.rel(abs), link: f.rel(abs), target: real}
	parts := strings.Split(f.rel(abs), "/")
	for i := range parts {
		candidate := filepath.Join(f.root, filepath.Join(parts[:i+1]...))
		info, err := os.Lstat(candidate)
		if err != nil || info.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		target, err := filepath.EvalSymlinks(candidate)
		if err != nil || !within(f.root, target) {
			e.link = f.rel(candidate)
			if err == nil {
				e.target = target
			}
			break
		}
	}
	return e
}

// record notes that the file at p (as asked for), found at real, was read, along
// with every symlink followed on the way to it.
func (f *snapshotFS) record(p, real string) {
	links := f.symlinksOn(p, 0)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inputs[f.rel(real)] = struct{}{}
	for _, l := range links {
		f.links[l] = struct{}{}
	}
}

// recordLinks notes the symlinks followed to reach p, a directory kustomize enters.
func (f *snapshotFS) recordLinks(p string) {
	links := f.symlinksOn(p, 0)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range links {
		f.links[l] = struct{}{}
	}
}

// maxLinks bounds symlink chains, as the kernel does.
const maxLinks = 40

// symlinksOn returns the symlinks inside the root that resolving p goes through,
// relative to the root: retargeting any of them changes what a build reads, so a
// cache key needs their targets as well as the files' contents.
func (f *snapshotFS) symlinksOn(p string, depth int) []string {
	abs, err := f.abs(p)
	if err != nil || depth > maxLinks {
		return nil
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil && real == abs {
		return nil // the common case: no symlink on the way
	}
	var links []string
	cur := f.root
	parts := strings.Split(f.rel(abs), "/")
	for _, part := range parts {
		if part == "." {
			continue
		}
		next := filepath.Join(cur, part)
		info, err := os.Lstat(next)
		if err != nil {
			return links
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		links = append(links, f.rel(next))
		target, err := os.Readlink(next)
		if err != nil {
			return links
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(cur, target)
		}
		// The target may itself hold symlinks, in any of its components.
		links = append(links, f.symlinksOn(target, depth+1)...)
		real, err := filepath.EvalSymlinks(next)
		if err != nil || !within(f.root, real) {
			return links
		}
		cur = real
	}
	return links
}

// open resolves p and opens it through the os.Root.
func (f *snapshotFS) open(p string) (*os.File, string, error) {
	real, exists, err := f.resolve(p)
	if err != nil {
		return nil, "", err
	}
	if !exists {
		return nil, "", &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	file, err := f.dir.Open(f.rel(real))
	if err != nil {
		return nil, "", err
	}
	return file, real, nil
}

// Open opens a file or directory for reading. A regular file opened is recorded as
// an input.
func (f *snapshotFS) Open(p string) (filesys.File, error) {
	file, real, err := f.open(p)
	if err != nil {
		return nil, err
	}
	if info, err := file.Stat(); err == nil && info.Mode().IsRegular() {
		f.record(p, real)
	}
	return file, nil
}

// ReadFile returns the contents of a file inside the root and records it as an input.
func (f *snapshotFS) ReadFile(p string) ([]byte, error) {
	real, exists, err := f.resolve(p)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, &fs.PathError{Op: "read", Path: p, Err: fs.ErrNotExist}
	}
	data, err := f.dir.ReadFile(f.rel(real))
	if err != nil {
		return nil, err
	}
	f.record(p, real)
	return data, nil
}

// stat resolves p and stats it through the os.Root.
func (f *snapshotFS) stat(p string) (fs.FileInfo, error) {
	real, exists, err := f.resolve(p)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
	}
	return f.dir.Stat(f.rel(real))
}

// Exists reports whether p exists inside the root; a path outside does not exist.
func (f *snapshotFS) Exists(p string) bool {
	_, err := f.stat(p)
	return err == nil
}

// IsDir reports whether p is a directory inside the root.
func (f *snapshotFS) IsDir(p string) bool {
	info, err := f.stat(p)
	return err == nil && info.IsDir()
}

// ReadDir lists the names in a directory inside the root, sorted.
func (f *snapshotFS) ReadDir(p string) ([]string, error) {
	file, _, err := f.open(p)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	names, err := file.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// CleanedAbs resolves p to the real directory holding it and, when p is a file, its
// name; the directory is inside the root or this is an error, which is what keeps
// kustomize's loaders (bases, overlays, components) inside the snapshot.
func (f *snapshotFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	real, exists, err := f.resolve(p)
	if err != nil {
		return "", "", err
	}
	if !exists {
		return "", "", &fs.PathError{Op: "resolve", Path: p, Err: fs.ErrNotExist}
	}
	info, err := f.dir.Stat(f.rel(real))
	if err != nil {
		return "", "", err
	}
	if info.IsDir() {
		f.recordLinks(p)
		return filesys.ConfirmedDir(real), "", nil
	}
	return filesys.ConfirmedDir(filepath.Dir(real)), filepath.Base(real), nil
}

// Glob returns the paths inside the root that match pattern, leaving out hidden
// files unless the pattern names them, as kustomize's own file system does.
func (f *snapshotFS) Glob(pattern string) ([]string, error) {
	abs, err := f.abs(pattern)
	if err != nil {
		return nil, err
	}
	matches, err := filepath.Glob(abs)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range matches {
		if _, _, err := f.resolve(m); err == nil {
			out = append(out, m)
		}
	}
	if !filesys.IsHiddenFilePath(pattern) {
		out = filesys.RemoveHiddenFiles(out)
	}
	return out, nil
}

// Walk walks the tree at p inside the root; every path it visits is checked.
func (f *snapshotFS) Walk(p string, walkFn filepath.WalkFunc) error {
	real, _, err := f.resolve(p)
	if err != nil {
		return err
	}
	return filepath.Walk(real, func(path string, info fs.FileInfo, err error) error {
		if _, _, rerr := f.resolve(path); rerr != nil {
			return rerr
		}
		return walkFn(path, info, err)
	})
}

// Create refuses: the snapshot is read-only.
func (f *snapshotFS) Create(p string) (filesys.File, error) {
	return nil, &fs.PathError{Op: "create", Path: p, Err: errReadOnly}
}

// Mkdir refuses: the snapshot is read-only.
func (f *snapshotFS) Mkdir(p string) error {
	return &fs.PathError{Op: "mkdir", Path: p, Err: errReadOnly}
}

// MkdirAll refuses: the snapshot is read-only.
func (f *snapshotFS) MkdirAll(p string) error {
	return &fs.PathError{Op: "mkdir", Path: p, Err: errReadOnly}
}

// RemoveAll refuses: the snapshot is read-only.
func (f *snapshotFS) RemoveAll(p string) error {
	return &fs.PathError{Op: "remove", Path: p, Err: errReadOnly}
}

// WriteFile refuses: the snapshot is read-only.
func (f *snapshotFS) WriteFile(p string, _ []byte) error {
	return &fs.PathError{Op: "write", Path: p, Err: errReadOnly}
}
