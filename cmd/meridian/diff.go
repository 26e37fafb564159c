package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
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
	f.StringVar(&o.filter.Addon, "addon", "", "compare only this addon (and no tenant's unit)")
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
	repo, err := sources.OpenLocal(ctx, o.repo)
	if err != nil {
		return fmt.Errorf("--repo %s: %w", o.repo, err)
	}
	fleetPath, err := repo.Path(o.fleetPath)
	if err != nil {
		return fmt.Errorf("--path %s: %w", o.fleetPath, err)
	}
	tmp, err := os.MkdirTemp("", "meridian-diff-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var sides [2]diff.Revision
	var snaps [2]render.Snapshot
	var head sources.Commit // its trailer may allow mass deletion
	for i, side := range []struct{ name, rev string }{{"base", o.base}, {"head", o.head}} {
		s, err := repo.Checkout(ctx, side.rev, fleetPath, filepath.Join(tmp, side.name))
		if err != nil {
			return fmt.Errorf("--%s %s: %w", side.name, side.rev, err)
		}
		model, err := fleet.LoadDir(s.Dir)
		if err != nil {
			var list fleet.ErrorList
			if errors.As(err, &list) {
				for _, e := range list {
					fmt.Fprintf(stderr, "%s %s: %s\n", side.name, sources.ShortRevision(s.Revision), e)
				}
				return fmt.Errorf("the fleet at %s %s is not valid (%d errors); nothing compared", side.name, side.rev, len(list))
			}
			return fmt.Errorf("%s %s: %s", side.name, side.rev, strings.ReplaceAll(err.Error(), s.Dir+string(filepath.Separator), ""))
		}
		sides[i] = diff.Revision{Name: s.Revision, Model: model}
		snaps[i] = render.Snapshot{Dir: s.Dir, Revision: s.Revision, Model: model}
		if side.name == "head" {
			head = s.Commit
		}
	}
	for _, n := range []struct{ what, name string }{{"tenant", o.filter.Tenant}, {"region", o.filter.Region}, {"app", o.filter.App}, {"addon", o.filter.Addon}} {
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
	failed, noKey := false, false
	for i, s := range sides {
		clean := func(msg string) string {
			return redact.RedactString(strings.ReplaceAll(msg, snaps[i].Dir+string(filepath.Separator), ""))
		}
		if writeRenderErrors(stderr, []string{"base", "head"}[i]+" "+sources.ShortRevision(s.Name)+": ", s.Result.Errors, clean) {
			noKey = true
		}
		failed = failed || len(s.Result.Errors) > 0
	}
	if noKey {
		writeKeyHint(stderr)
	}
	if failed {
		return exitError{code: 1}
	}

	report, err := diff.Compare(sides[0], sides[1], diff.Options{
		Filter:            o.filter,
		AllowMassDeletion: reconciler.AllowsMassDeletion(head),
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
