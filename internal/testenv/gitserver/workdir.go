package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Workdir is a clone, with a working tree, of one of a Server's repositories.
// Its methods run the git command-line tool in the server's isolated
// environment, so they can fetch and push whatever credentials and TLS the
// server requires. Commits and annotated tags are made by AuthorName
// <AuthorEmail>, and a commit with n commits reachable behind it is dated
// 2024-01-01T00:00:00Z plus n minutes, so repeating the same changes yields
// the same hashes. A Workdir is not safe for concurrent use.
type Workdir struct {
	s    *Server
	repo string
	dir  string
}

// Clone clones the server's repository name into a new directory, which Close
// deletes along with the server. Cloning an empty repository is allowed; the
// clone is then on the unborn branch main.
func (s *Server) Clone(ctx context.Context, name string) (*Workdir, error) {
	if _, err := s.repoDir(name); err != nil {
		return nil, err
	}
	dir := filepath.Join(s.workDir, strconv.FormatInt(s.workdirs.Add(1), 10))
	if _, err := s.runGit(ctx, name, s.workDir, s.GitEnv(), "clone", "--quiet", "--", s.URL(name), dir); err != nil {
		return nil, err
	}
	return &Workdir{s: s, repo: name, dir: dir}, nil
}

// Dir returns the root of the working tree.
func (w *Workdir) Dir() string { return w.dir }

// Repo returns the name of the server repository the workdir was cloned from.
func (w *Workdir) Repo() string { return w.repo }

// WriteFiles writes each file of files, keyed by slash-separated path relative
// to the working tree root, creating parent directories as needed and
// replacing existing files. Files are written with mode 0644. Nothing is
// staged until Commit.
func (w *Workdir) WriteFiles(files map[string]string) error {
	for name, content := range files {
		p, err := w.path(name)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("gitserver: repo %q: write %s: %w", w.repo, name, err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return fmt.Errorf("gitserver: repo %q: write %s: %w", w.repo, name, err)
		}
	}
	return nil
}

// RemoveFiles deletes the named files or directory trees, given as
// slash-separated paths relative to the working tree root. Missing paths are
// not an error. Nothing is staged until Commit.
func (w *Workdir) RemoveFiles(names ...string) error {
	for _, name := range names {
		p, err := w.path(name)
		if err != nil {
			return err
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("gitserver: repo %q: remove %s: %w", w.repo, name, err)
		}
	}
	return nil
}

// CopyTree copies the directory tree src into the root of the working tree,
// replacing files that exist in both. Regular files keep their executable bit
// (the only mode bit git records) and symbolic links are copied as links.
// Anything named .git is skipped, and so is anything that is neither a file,
// a directory nor a symbolic link.
func (w *Workdir) CopyTree(src string) error {
	wrap := func(err error) error {
		return fmt.Errorf("gitserver: repo %q: copy tree %s: %w", w.repo, src, err)
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.Name() == ".git" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(w.dir, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.RemoveAll(dst); err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			mode := os.FileMode(0o644)
			if info.Mode().Perm()&0o111 != 0 {
				mode = 0o755
			}
			return copyFile(dst, p, mode)
		default:
			return nil
		}
	})
	if err != nil {
		return wrap(err)
	}
	return nil
}

func copyFile(dst, src string, mode os.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, out.Close()) }()
	_, err = io.Copy(out, in)
	return err
}

// Commit stages every change in the working tree, additions and deletions
// alike, commits it on the current branch with the given message and returns
// the new commit's hash. A commit without changes is allowed.
func (w *Workdir) Commit(ctx context.Context, message string) (string, error) {
	if _, err := w.Git(ctx, "add", "--all"); err != nil {
		return "", err
	}
	env, err := w.datedEnv(ctx)
	if err != nil {
		return "", err
	}
	if _, err := w.run(ctx, env, "commit", "--quiet", "--no-verify", "--allow-empty", "--message", message); err != nil {
		return "", err
	}
	return w.Head(ctx)
}

// CommitFiles writes files as WriteFiles does and then commits as Commit
// does, returning the new commit's hash.
func (w *Workdir) CommitFiles(ctx context.Context, message string, files map[string]string) (string, error) {
	if err := w.WriteFiles(files); err != nil {
		return "", err
	}
	return w.Commit(ctx, message)
}

// Tag tags the current commit. With an empty message the tag is lightweight;
// otherwise it is an annotated tag carrying message. An existing tag of the
// same name is an error. Tags are pushed only when named to Push, as in
// "refs/tags/v1.0.0".
func (w *Workdir) Tag(ctx context.Context, name, message string) error {
	if message == "" {
		_, err := w.Git(ctx, "tag", "--end-of-options", name)
		return err
	}
	env, err := w.datedEnv(ctx)
	if err != nil {
		return err
	}
	_, err = w.run(ctx, env, "tag", "--annotate", "--message", message, "--end-of-options", name)
	return err
}

// Push pushes refspecs to the server; without refspecs it pushes the current
// branch to the branch of the same name. A push that is not a fast-forward is
// refused; see ForcePush.
func (w *Workdir) Push(ctx context.Context, refspecs ...string) error {
	return w.push(ctx, false, refspecs)
}

// ForcePush pushes like Push but overwrites the server's refs even when the
// update is not a fast-forward, as `git push --force` does.
func (w *Workdir) ForcePush(ctx context.Context, refspecs ...string) error {
	return w.push(ctx, true, refspecs)
}

func (w *Workdir) push(ctx context.Context, force bool, refspecs []string) error {
	args := []string{"push", "--quiet"}
	if force {
		args = append(args, "--force")
	}
	args = append(args, "origin")
	if len(refspecs) == 0 {
		refspecs = []string{"HEAD"}
	}
	_, err := w.Git(ctx, append(args, refspecs...)...)
	return err
}

// Head returns the hash of the commit checked out in the working tree.
func (w *Workdir) Head(ctx context.Context) (string, error) {
	return w.Git(ctx, "rev-parse", "--verify", "HEAD")
}

// Git runs git with args in the working tree, in the server's isolated
// environment with the fixed author and committer and the date of the
// history's first commit, and returns its standard output with surrounding
// white space removed. It is the way to do what the other methods do not,
// such as `git reset --hard HEAD~1` or `git checkout -b feature`.
func (w *Workdir) Git(ctx context.Context, args ...string) (string, error) {
	return w.run(ctx, append(w.s.GitEnv(), identityEnv(commitEpoch)...), args...)
}

func (w *Workdir) run(ctx context.Context, env []string, args ...string) (string, error) {
	return w.s.runGit(ctx, w.repo, w.dir, env, args...)
}

// datedEnv returns the environment for a commit or tag made now: its date is
// commitEpoch plus one minute per commit reachable from HEAD.
func (w *Workdir) datedEnv(ctx context.Context) ([]string, error) {
	out, err := w.Git(ctx, "rev-list", "--count", "--ignore-missing", "HEAD")
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(out)
	if err != nil {
		return nil, fmt.Errorf("gitserver: repo %q: git rev-list --count: unexpected output %q", w.repo, out)
	}
	return append(w.s.GitEnv(), identityEnv(commitEpoch.Add(time.Duration(n)*time.Minute))...), nil
}

// path resolves a slash-separated path relative to the working tree root,
// refusing paths that leave the tree or reach into .git.
func (w *Workdir) path(name string) (string, error) {
	p := filepath.Clean(filepath.FromSlash(name))
	first, _, _ := strings.Cut(filepath.ToSlash(p), "/")
	if !filepath.IsLocal(p) || p == "." || strings.EqualFold(first, ".git") {
		return "", fmt.Errorf("gitserver: repo %q: invalid path %q: want a relative path inside the working tree, outside .git", w.repo, name)
	}
	return filepath.Join(w.dir, p), nil
}
