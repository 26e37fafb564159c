package sources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// LocalRepository reads commits of a git repository on the local disk — a
// work tree a person or a CI job checked out — into snapshot directories, so
// that a revision can be rendered, compared or planned before it is pushed
// (meridian diff and meridian plan --repo). It only reads: the repository,
// its index and its work tree are never changed.
//
// It runs the git binary, as the person or the job would, where Git uses
// go-git against a cache it owns: a checkout may be a partial clone, have
// per-worktree configuration or another object format, all of which go-git
// refuses to open, and revisions are named in git's full syntax (HEAD~1,
// origin/main, a merge base, @{upstream}). Its methods are safe for
// concurrent use.
type LocalRepository struct {
	top    string // the top of the work tree
	prefix string // dir relative to top, slash-separated: "" or ending in "/"
}

// OpenLocal opens the repository whose work tree holds dir, the top of the
// work tree or a directory below it. Its error holds git's own message, such
// as "not a git repository".
func OpenLocal(ctx context.Context, dir string) (*LocalRepository, error) {
	r := &LocalRepository{}
	out, err := r.output(ctx, dir, "rev-parse", "--show-toplevel", "--show-prefix")
	if err != nil {
		return nil, err
	}
	top, prefix, _ := strings.Cut(out, "\n")
	r.top, r.prefix = top, strings.TrimSpace(prefix)
	return r, nil
}

// Path returns rel, a path relative to the directory OpenLocal was given (as a
// command-line flag names it), relative to the top of the repository and
// slash-separated, as Checkout takes it: "." is the whole repository. A path
// that leaves the repository is an error.
func (r *LocalRepository) Path(rel string) (string, error) {
	p := path.Join(r.prefix, filepath.ToSlash(rel))
	if p == ".." || strings.HasPrefix(p, "../") || path.IsAbs(p) {
		return "", errors.New("outside the repository")
	}
	return p, nil
}

// resolve returns the full hash of the commit rev names.
func (r *LocalRepository) resolve(ctx context.Context, rev string) (string, error) {
	if strings.HasPrefix(rev, "-") {
		return "", errors.New("not a revision")
	}
	return r.output(ctx, r.top, "rev-parse", "--verify", "--end-of-options", rev+"^{commit}")
}

// git runs git in dir and writes its standard output to stdout; its error
// holds git's own message.
func (r *LocalRepository) git(ctx context.Context, dir string, stdout io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("git %s: %s", args[0], msg)
		}
		return fmt.Errorf("git %s: %w", args[0], err)
	}
	return nil
}

// output runs git in dir and returns its standard output without surrounding
// white space.
func (r *LocalRepository) output(ctx context.Context, dir string, args ...string) (string, error) {
	var out bytes.Buffer
	err := r.git(ctx, dir, &out, args...)
	return strings.TrimSpace(out.String()), err
}
