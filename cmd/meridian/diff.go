package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/secrets"
	"meridian.dev/meridian/review/diff"
	"meridian.dev/meridian/sources"
)

type diffOptions struct {
	repo          string
	fleetPath     string
	base, head    string
	format        string
	markdownLimit int
	filter        render.Filter
	keyFiles      []string
	chartCache    string
}

func newDiffCommand() *cobra.Command {
	o := diffOptions{}
	cmd := &cobra.Command{
		Use:   "diff",
		Short: "Show what a change to the fleet repository does: objects, DNS and held deletions",
		Long: `Diff renders two revisions of a fleet repository and reports, per tenant, region
and app, the objects added, changed and removed, with a unified YAML diff of each;
the DNS names, latency records and health checks that appear, change or go; and
per region whether the mass-deletion guard would hold the deletions.

Both revisions are checked out from the local git repository --repo into a
temporary directory, removed before the command ends. Decrypted values are never
shown: a Secret's keys read "added", "changed" or "removed", and every other
occurrence of a secret value reads **REDACTED**. SOPS keys come from --key-file
and from SOPS_AGE_KEY / SOPS_AGE_KEY_FILE, as for render.

Exit status 0 means no changes, 2 changes, 1 an error (an invalid fleet or a unit
that failed to render in either revision).`,
		Example: `  meridian diff --repo . --base main --head HEAD
  meridian diff --repo . --base "$(git merge-base origin/main HEAD)" --head HEAD --format markdown
  meridian diff --repo . --path fleet-example --base HEAD~1 --head HEAD --tenant trucking`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDiff(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.repo, "repo", ".", "local git repository of the fleet")
	f.StringVar(&o.fleetPath, "path", ".", "directory of the fleet inside the repository, relative to --repo")
	f.StringVar(&o.base, "base", "", "base revision: what is applied now, such as the merge base of a pull request (required)")
	f.StringVar(&o.head, "head", "HEAD", "head revision: the change to review")
	f.StringVar(&o.format, "format", "text", "output format: text, markdown (a pull-request comment) or json")
	f.IntVar(&o.markdownLimit, "markdown-limit", diff.MarkdownLimit, "largest Markdown output in characters; what does not fit is left out and listed")
	f.StringVar(&o.filter.Tenant, "tenant", "", "compare only this tenant")
	f.StringVar(&o.filter.Region, "region", "", "compare only this region")
	f.StringVar(&o.filter.App, "app", "", "compare only this app")
	f.StringArrayVar(&o.keyFiles, "key-file", nil, "SOPS key file: age identities, or armored OpenPGP keys (.asc); repeatable")
	f.StringVar(&o.chartCache, "chart-cache", "", "directory for charts downloaded from repositories (default: the user cache)")
	_ = cmd.MarkFlagRequired("base")
	return cmd
}

func runDiff(ctx context.Context, stdout, stderr io.Writer, o diffOptions) error {
	write, ok := map[string]func(io.Writer, *diff.Report) error{
		"text": diff.Text,
		"json": diff.JSON,
		"markdown": func(w io.Writer, r *diff.Report) error {
			return diff.Markdown(w, r, o.markdownLimit)
		},
	}[o.format]
	if !ok {
		return fmt.Errorf("--format %q: use text, markdown or json", o.format)
	}
	repo := gitRepo{dir: o.repo}
	fleetPath, err := repo.fleetPath(ctx, o.fleetPath)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "meridian-diff-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var sides [2]diff.Revision
	var snaps [2]render.Snapshot
	for i, side := range []struct{ name, rev string }{{"base", o.base}, {"head", o.head}} {
		commit, err := repo.resolve(ctx, side.rev)
		if err != nil {
			return fmt.Errorf("--%s %s: %w", side.name, side.rev, err)
		}
		dest := filepath.Join(tmp, side.name)
		if err := repo.export(ctx, commit, fleetPath, dest); err != nil {
			return fmt.Errorf("--%s %s: %w", side.name, side.rev, err)
		}
		dir := filepath.Join(dest, filepath.FromSlash(fleetPath))
		model, err := fleet.LoadDir(dir)
		if err != nil {
			var list fleet.ErrorList
			if errors.As(err, &list) {
				for _, e := range list {
					fmt.Fprintf(stderr, "%s %s: %s\n", side.name, shortRevision(commit), e)
				}
				return fmt.Errorf("the fleet at %s %s is not valid (%d errors); nothing compared", side.name, side.rev, len(list))
			}
			return fmt.Errorf("%s %s: %s", side.name, side.rev, strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""))
		}
		sides[i] = diff.Revision{Name: commit, Model: model}
		snaps[i] = render.Snapshot{Dir: dir, Revision: commit, Model: model}
	}
	for _, n := range []struct{ what, name string }{{"tenant", o.filter.Tenant}, {"region", o.filter.Region}, {"app", o.filter.App}} {
		if n.name != "" && !exists(sides[0].Model, n.what, n.name) && !exists(sides[1].Model, n.what, n.name) {
			return fmt.Errorf("--%s %s: no such %s in either revision", n.what, n.name, n.what)
		}
	}

	// One renderer for both revisions: the head's unchanged placements come from
	// the render cache.
	renderer, err := newRenderer(o.keyFiles, o.chartCache)
	if err != nil {
		return err
	}
	for i := range sides {
		if sides[i].Result, err = renderer.Render(ctx, snaps[i], o.filter); err != nil {
			return err
		}
	}
	var values []string
	for _, s := range sides {
		values = append(values, s.Result.SecretValues()...)
	}
	redact := secrets.NewRedactor(values)
	failed := false
	for i, s := range sides {
		for _, e := range s.Result.Errors {
			msg := strings.ReplaceAll(e.Error(), snaps[i].Dir+string(filepath.Separator), "")
			fmt.Fprintf(stderr, "Error: %s %s: %s\n", []string{"base", "head"}[i], shortRevision(s.Name), redact.RedactString(msg))
			failed = true
		}
	}
	if failed {
		return exitError{code: 1}
	}

	body, err := repo.body(ctx, sides[1].Name)
	if err != nil {
		return err
	}
	report, err := diff.Compare(sides[0], sides[1], diff.Options{
		Filter:            o.filter,
		AllowMassDeletion: reconciler.AllowsMassDeletion(sources.Commit{Body: body}),
	})
	if err != nil {
		return err
	}
	if err := write(stdout, report); err != nil {
		return err
	}
	if report.Changed {
		return exitError{code: 2}
	}
	return nil
}

func shortRevision(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// gitRepo runs the git binary on a local repository, the way the person or CI job
// running diff would.
type gitRepo struct{ dir string }

// git runs git in the repository and returns its standard output; its error holds
// git's own message.
func (g gitRepo) git(ctx context.Context, stdout io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", g.dir}, args...)...)
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

func (g gitRepo) output(ctx context.Context, args ...string) (string, error) {
	var out bytes.Buffer
	err := g.git(ctx, &out, args...)
	return strings.TrimSpace(out.String()), err
}

// fleetPath returns the fleet's directory relative to the top of the repository,
// slash-separated, from a path relative to the repository directory given.
func (g gitRepo) fleetPath(ctx context.Context, rel string) (string, error) {
	prefix, err := g.output(ctx, "rev-parse", "--show-prefix")
	if err != nil {
		return "", fmt.Errorf("--repo %s: %w", g.dir, err)
	}
	p := path.Join(prefix, filepath.ToSlash(rel))
	if p == ".." || strings.HasPrefix(p, "../") || path.IsAbs(p) {
		return "", fmt.Errorf("--path %s: outside the repository", rel)
	}
	return p, nil
}

// resolve returns the full hash of the commit rev names.
func (g gitRepo) resolve(ctx context.Context, rev string) (string, error) {
	if strings.HasPrefix(rev, "-") {
		return "", errors.New("not a revision")
	}
	return g.output(ctx, "rev-parse", "--verify", "--end-of-options", rev+"^{commit}")
}

// body returns a commit message without its subject line.
func (g gitRepo) body(ctx context.Context, commit string) (string, error) {
	return g.output(ctx, "show", "-s", "--format=%b", commit)
}

// export writes the files of the commit under fleetPath into dest, which must not
// exist. Only regular files, directories and symbolic links are written, all inside
// dest.
func (g gitRepo) export(ctx context.Context, commit, fleetPath, dest string) error {
	if err := os.Mkdir(dest, 0o700); err != nil {
		return err
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return err
	}
	defer root.Close()
	top, err := g.output(ctx, "rev-parse", "--show-toplevel")
	if err != nil {
		return err
	}
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
	err = gitRepo{dir: top}.git(ctx, pw, "archive", "--format=tar", commit, "--", fleetPath)
	pw.CloseWithError(err)
	if xerr := <-extracted; err == nil {
		err = xerr
	}
	if err != nil {
		return err
	}
	if _, err := root.Stat(filepath.FromSlash(fleetPath)); err != nil {
		return fmt.Errorf("commit %s has no directory %s", shortRevision(commit), fleetPath)
	}
	return nil
}

// untar writes the entries of a tar stream under root.
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
