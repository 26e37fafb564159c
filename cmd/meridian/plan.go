package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"meridian.dev/meridian/cmd/internal/daemon"
	"meridian.dev/meridian/config"
	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/dns"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/render/secrets"
	"meridian.dev/meridian/review/preview"
	"meridian.dev/meridian/sources"
)

type planOptions struct {
	configFile string
	repo       string
	revision   string
	fleetPath  string
	format     string
}

func newPlanCommand() *cobra.Command {
	o := planOptions{}
	cmd := &cobra.Command{
		Use:   "plan --config FILE [--repo DIR --revision REV]",
		Short: "Show what applying a revision would do to the live regions, drift included, without writing",
		Long: `Plan renders a revision and compares it with every region's cluster, as the
daemon would before applying it, but writes nothing: per region the units to
create, update or prune, and for every unit already there a server-side dry-run
that names the objects and fields applying would change. For units the revision
leaves unchanged that is drift (an edit made with kubectl, say). Values never
appear, only field paths.

Without --repo it plans the head of the reference the configuration file
follows; with --repo and --revision, a commit of a local checkout (a pull
request's head, say). Exit status: 0 nothing would change, 2 something would,
1 an error.`,
		Example: `  meridian plan --config /etc/meridian/config.yaml
  meridian plan --config config.yaml --repo . --revision HEAD --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlan(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.configFile, "config", "", "the daemon's configuration file: regions, keys, repository (required)")
	f.StringVar(&o.repo, "repo", "", "a local checkout to take the revision from instead of fetching")
	f.StringVar(&o.revision, "revision", "HEAD", "with --repo, the revision to plan")
	f.StringVar(&o.fleetPath, "path", ".", "with --repo, the fleet's directory in the repository")
	f.StringVar(&o.format, "format", "text", "text or json")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func runPlan(ctx context.Context, stdout io.Writer, o planOptions) error {
	if o.format != "text" && o.format != "json" {
		return fmt.Errorf("--format %q: use text or json", o.format)
	}
	cfg, err := config.Load(o.configFile)
	if err != nil {
		return err
	}
	keys, err := daemon.SOPSKeys(cfg.Decryption)
	if err != nil {
		return err
	}
	charts, err := helm.New(helm.Options{CacheDir: filepath.Join(cfg.CacheDir, "charts")})
	if err != nil {
		return err
	}
	snap, allow, cleanup, err := planSnapshot(ctx, cfg, o)
	if err != nil {
		return err
	}
	defer cleanup()

	log := slog.New(slog.DiscardHandler)
	r := reconciler.New(reconciler.Options{
		Renderer: render.New(render.Options{Helm: charts, Decryptor: secrets.NewDecryptor(keys)}),
		Clusters: reconciler.Clusters(ctx, snap.Model, cfg.Kubeconfig, daemon.Access(ctx, cfg), log),
		Log:      log,
	})
	p, err := preview.Run(ctx, r, snap, allow)
	if err != nil {
		return err
	}
	quotas, err := route53Quotas(ctx, cfg, snap.Model)
	if err != nil {
		return err
	}
	if o.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		out := planJSON(p)
		out.Route53Quotas = quotas
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		if err := p.WriteText(stdout); err != nil {
			return err
		}
		if quotas != nil {
			fmt.Fprintln(stdout, "route53:")
			for _, q := range quotas {
				fmt.Fprintln(stdout, "  "+q.String())
			}
		}
	}
	if err := p.Err(); err != nil {
		return err
	}
	if p.Changed() {
		return exitError{code: 2}
	}
	return nil
}

// planSnapshot loads the revision to plan: a commit of --repo, or the head the
// configuration follows, fetched.
func planSnapshot(ctx context.Context, cfg *config.Config, o planOptions) (render.Snapshot, bool, func(), error) {
	load := func(dir, rev string) (render.Snapshot, error) {
		model, err := fleet.LoadDir(dir)
		if err != nil {
			var list fleet.ErrorList
			if errors.As(err, &list) {
				lines := make([]string, len(list))
				for i, e := range list {
					lines[i] = e.Error()
				}
				return render.Snapshot{}, fmt.Errorf("the fleet at %s is not valid:\n%s", sources.ShortRevision(rev), strings.Join(lines, "\n"))
			}
			return render.Snapshot{}, err
		}
		return render.Snapshot{Dir: dir, Revision: rev, Model: model}, nil
	}
	if o.repo == "" {
		gitOpts, err := daemon.GitOptions(cfg)
		if err != nil {
			return render.Snapshot{}, false, nil, err
		}
		git, err := sources.NewGit(gitOpts)
		if err != nil {
			return render.Snapshot{}, false, nil, err
		}
		s, err := git.Fetch(ctx)
		if err != nil {
			return render.Snapshot{}, false, nil, err
		}
		release := git.Hold(s)
		snap, err := load(s.Dir, s.Revision)
		if err != nil {
			release()
			return render.Snapshot{}, false, nil, err
		}
		return snap, reconciler.AllowsMassDeletion(s.Commit), release, nil
	}
	repo, err := sources.OpenLocal(ctx, o.repo)
	if err != nil {
		return render.Snapshot{}, false, nil, fmt.Errorf("--repo %s: %w", o.repo, err)
	}
	fleetPath, err := repo.Path(o.fleetPath)
	if err != nil {
		return render.Snapshot{}, false, nil, fmt.Errorf("--path %s: %w", o.fleetPath, err)
	}
	tmp, err := os.MkdirTemp("", "meridian-plan-")
	if err != nil {
		return render.Snapshot{}, false, nil, err
	}
	cleanup := func() { _ = os.RemoveAll(tmp) }
	s, err := repo.Checkout(ctx, o.revision, fleetPath, filepath.Join(tmp, "fleet"))
	if err != nil {
		cleanup()
		return render.Snapshot{}, false, nil, fmt.Errorf("--revision %s: %w", o.revision, err)
	}
	snap, err := load(s.Dir, s.Revision)
	if err != nil {
		cleanup()
		return render.Snapshot{}, false, nil, err
	}
	return snap, reconciler.AllowsMassDeletion(s.Commit), cleanup, nil
}

// route53Quotas reads what the fleet needs of Route53's limits against what the
// account and zone allow, when the configuration has Route53; nil otherwise.
func route53Quotas(ctx context.Context, cfg *config.Config, m *fleet.Model) ([]dns.Quota, error) {
	if cfg.Route53 == nil || m.Fleet.Spec.DNS.HostedZoneID == "" {
		return nil, nil
	}
	client, err := dns.NewRoute53Client(ctx, dns.ClientOptions{Region: cfg.Route53.Region, Endpoint: cfg.Route53.Endpoint, Profile: cfg.Route53.Profile, CAFile: cfg.Route53.CAFile})
	if err != nil {
		return nil, fmt.Errorf("route53: %w", err)
	}
	a := dns.NewApplier(client, dns.Options{HostedZoneID: m.Fleet.Spec.DNS.HostedZoneID, Fleet: m.Fleet.Metadata.Name, RequestsPerSecond: float64(cfg.Route53.RequestsPerSecond), RateScale: cfg.Route53.RateScale})
	q, err := a.Quotas(ctx, m)
	if err != nil {
		return nil, err
	}
	return []dns.Quota{q.HealthChecks, q.RecordSets}, nil
}

// planDocument is the stable JSON form of a plan.
type planDocument struct {
	Revision      string       `json:"revision"`
	Changed       bool         `json:"changed"`
	RenderErrors  []string     `json:"renderErrors,omitempty"`
	Regions       []planRegion `json:"regions"`
	Route53Quotas []dns.Quota  `json:"route53Quotas,omitempty"`
}

// planRegion is one region of a planDocument.
type planRegion struct {
	Name    string     `json:"name"`
	Summary string     `json:"summary"`
	Held    string     `json:"held,omitempty"`
	Error   string     `json:"error,omitempty"`
	Units   []planUnit `json:"units"`
}

// planUnit is one unit of a planRegion.
type planUnit struct {
	Unit    string   `json:"unit"`
	Action  string   `json:"action"`
	Objects []string `json:"objects,omitempty"`
	Adopt   []string `json:"adopt,omitempty"`
	Hooks   []string `json:"hooks,omitempty"`
	Delete  []string `json:"delete,omitempty"`
	Release []string `json:"release,omitempty"`
}

// planJSON is the stable JSON form of a plan.
func planJSON(p *preview.Preview) planDocument {
	type unit = planUnit
	type region = planRegion
	out := planDocument{Revision: p.Revision, Changed: p.Changed(), Regions: []region{}}
	for _, e := range p.RenderErrors {
		out.RenderErrors = append(out.RenderErrors, e.Error())
	}
	for _, name := range slices.Sorted(maps.Keys(p.Regions)) {
		rp := p.Regions[name]
		r := region{Name: name, Summary: rp.Changes.String(), Held: rp.Changes.Held, Units: []unit{}}
		if rp.Err != nil {
			r.Error = rp.Err.Error()
		}
		for _, ch := range rp.Changes.Changes {
			u := unit{Unit: ch.Unit.String(), Action: ch.Action.String()}
			for _, d := range rp.Live[ch.Unit] {
				u.Objects = append(u.Objects, d.String())
			}
			for _, ref := range rp.Adopt[ch.Unit] {
				u.Adopt = append(u.Adopt, ref.String())
			}
			for _, h := range rp.Hooks[ch.Unit] {
				u.Hooks = append(u.Hooks, h.String())
			}
			for _, ref := range ch.Delete {
				u.Delete = append(u.Delete, ref.String())
			}
			for _, ref := range ch.Release {
				u.Release = append(u.Release, ref.String())
			}
			r.Units = append(r.Units, u)
		}
		out.Regions = append(out.Regions, r)
	}
	return out
}
