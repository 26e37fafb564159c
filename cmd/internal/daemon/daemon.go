package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"sync/atomic"
	"time"

	"meridian.dev/meridian/config"
	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/memlimit"
	"meridian.dev/meridian/internal/servercert"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/dns"
	"meridian.dev/meridian/reconciler/shard"
	"meridian.dev/meridian/reconciler/status"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/render/secrets"
	"meridian.dev/meridian/sources"
)

// Options are what `meridian run` takes on its command line.
type Options struct {
	// ConfigFile is the configuration file (required).
	ConfigFile string
	// Once fetches once, runs one pass and returns; the error says whether
	// the pass converged. No HTTP server is started.
	Once bool
	// Route53Endpoint, when not empty, is the URL of a Route53-compatible API:
	// it turns DNS on and overrides route53.endpoint of the configuration file.
	Route53Endpoint string
}

// Run runs the daemon until ctx is done, logging JSON lines to stderr: it
// follows the repository of the configuration file and reconciles every region,
// serving the dashboard, the status API, metrics, health and webhooks on the
// configured address (except with Options.Once). When ctx is done, the pass in
// flight finishes first. The configuration file is documented in docs/run.md.
func Run(ctx context.Context, stderr io.Writer, o Options) error {
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if limit, err := memlimit.Set(); err != nil {
		log.Warn("no soft memory limit from the container's memory limit", "error", err)
	} else if limit > 0 {
		log.Info("soft memory limit set from the container's memory limit", "bytes", limit, "fraction", memlimit.Fraction)
	}
	cfg, err := config.Load(o.ConfigFile)
	if err != nil {
		return err
	}
	gitOpts, err := GitOptions(cfg)
	if err != nil {
		return err
	}
	gitOpts.Logger = log.With("component", "source")
	git, err := sources.NewGit(gitOpts)
	if err != nil {
		return err
	}
	keys, err := SOPSKeys(cfg.Decryption)
	if err != nil {
		return err
	}
	charts, err := helm.New(helm.Options{CacheDir: filepath.Join(cfg.CacheDir, "charts")})
	if err != nil {
		return err
	}
	webhookURL, slackURL, err := cfg.NotificationURLs()
	if err != nil {
		return err
	}
	events := newRegionEvents()
	history, err := historyStore(cfg)
	if err != nil {
		return err
	}
	storeOpts := status.Options{Log: log.With("component", "status"), Events: events.read, History: history}
	if webhookURL != "" || slackURL != "" {
		storeOpts.Notifier = status.NewNotifier(status.NotifierOptions{WebhookURL: webhookURL, SlackURL: slackURL, Log: log.With("component", "notify")})
		defer storeOpts.Notifier.Close(10 * time.Second)
	}
	store := status.New(storeOpts)
	defer store.Close(10 * time.Second) // the last pass's history is saved before the daemon exits

	if o.Route53Endpoint != "" {
		if cfg.Route53 == nil {
			cfg.Route53 = &config.Route53{Region: "us-east-1", RequestsPerSecond: 5, RateScale: 1}
		}
		cfg.Route53.Endpoint = o.Route53Endpoint
	}
	var r53 dns.Route53API
	var dnsOpts dns.Options
	if cfg.Route53 != nil {
		client, err := dns.NewRoute53Client(ctx, dns.ClientOptions{
			Region:   cfg.Route53.Region,
			Endpoint: cfg.Route53.Endpoint,
			Profile:  cfg.Route53.Profile,
			CAFile:   cfg.Route53.CAFile,
			Observe:  store.Route53Request,
		})
		if err != nil {
			return fmt.Errorf("route53: %w", err)
		}
		r53, dnsOpts.RequestsPerSecond, dnsOpts.RateScale = client, float64(cfg.Route53.RequestsPerSecond), cfg.Route53.RateScale
	} else {
		log.Info("DNS is off: no route53 in the configuration file")
	}
	poller := &sources.Poller{Source: git, Interval: time.Duration(cfg.Repository.Interval), Logger: log.With("component", "source")}

	mux := http.NewServeMux()
	mux.Handle("/", store.Handler()) // the dashboard, /api/v1/status, /metrics
	var ready atomic.Bool
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "the first pass has not finished", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if cfg.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index) // heap, goroutine, allocs, … by name
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		log.Info("profiling on: Go runtime profiles served under /debug/pprof/")
	}
	hookSecrets, err := cfg.Repository.ReadWebhookSecrets()
	if err != nil {
		return err
	}
	if hookSecrets != (config.WebhookSecrets{}) {
		hook, err := sources.NewWebhook(sources.WebhookOptions{
			GitHubSecret:  hookSecrets.GitHub,
			GitLabToken:   hookSecrets.GitLab,
			GenericSecret: hookSecrets.Generic,
			Logger:        log.With("component", "webhook"),
		})
		if err != nil {
			return err
		}
		poller.Trigger = hook.Trigger()
		mux.Handle("/hooks/git", hook)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ownership reconciler.Ownership
	var health reconciler.HealthBoard
	if cfg.HA != nil {
		shards, err := startShards(ctx, cfg, log)
		if err != nil {
			return err
		}
		// The Leases are given up only after the pass in flight finished.
		defer func() { cancel(); shards.wait() }()
		ownership = shards.Manager
		if cfg.Route53 != nil {
			health = shards.Manager
		}
	}
	if !o.Once {
		stopServer, err := serve(ctx, cancel, cfg.Listen, cfg.TLS, mux, log)
		if err != nil {
			return err
		}
		defer stopServer()
	}

	// A placement whose health a watch saw change has its Route53 check read
	// before the others'; a full channel drops the poke (the round-robin still
	// reads that check).
	pokes := make(chan fleet.UnitID, 1024)
	return reconciler.Run(ctx, reconciler.RunOptions{
		Poller:        poller,
		Snapshots:     git,
		Renderer:      render.New(render.Options{Helm: charts, Decryptor: secrets.NewDecryptor(keys)}),
		Kubeconfig:    cfg.Kubeconfig,
		Access:        Access(ctx, cfg),
		HealthTimeout: time.Duration(cfg.HealthTimeout),
		KubeAPIQPS:    float32(cfg.KubeAPI.QPS),
		KubeAPIBurst:  cfg.KubeAPI.Burst,
		DriftInterval: time.Duration(cfg.DriftInterval),
		Route53:       r53,
		DNS:           dnsOpts,
		Once:          o.Once,
		Accepted:      func(s *sources.Snapshot) { store.ObserveRevision(status.CommitOf(s.Revision, s.Commit)) },
		Refused: func(s *sources.Snapshot, errs []error) {
			store.ObserveRefused(status.CommitOf(s.Revision, s.Commit), errs)
		},
		FetchFailed: store.ObserveFetchFailure,
		Passed: func(r *reconciler.Report) {
			store.ObserveRender(r.RenderDuration, r.Renders)
			store.ObservePass(r, r.Duration)
			ready.Store(true)
		},
		// After each publish, and between passes as Route53's checks change.
		DNSObserved:  func(eps []reconciler.DNSEndpointHealth) { store.ObserveDNS(dnsEndpoints(eps)) },
		DriftChecked: store.ObserveDrift,
		Connected:    events.connected,
		Log:          log,
		Ownership:    ownership,
		Health:       health,
		// Between passes, the watches' view of each unit this replica applied
		// reaches the dashboard, the API, the metrics and the notifications.
		HealthChanged: func(unit fleet.UnitID, h apply.Health) {
			store.ObserveHealth(unit, unitHealth(h, time.Now()))
			if unit.App != "" && unit.Addon == "" {
				select {
				case pokes <- unit:
				default:
				}
			}
		},
		DNSPokes: pokes,
	})
}

// unitHealth is a unit's health as the status shows it.
func unitHealth(h apply.Health, at time.Time) status.UnitHealth {
	out := status.UnitHealth{State: status.State(h.State), Reason: h.Reason, At: at, Objects: make([]status.ObjectStatus, len(h.Objects))}
	for i, o := range h.Objects {
		out.Objects[i] = status.ObjectStatus{
			Group: o.Object.Group, Kind: o.Object.Kind, Namespace: o.Object.Namespace, Name: o.Object.Name,
			Status: o.Status.String(), Message: o.Message,
		}
	}
	return out
}

// GitOptions are the options of the source of the repository the configuration
// follows, with the credentials its files hold.
func GitOptions(cfg *config.Config) (sources.GitOptions, error) {
	r := cfg.Repository
	creds, err := r.ReadCredentials()
	if err != nil {
		return sources.GitOptions{}, err
	}
	o := sources.GitOptions{
		URL:      r.URL,
		Ref:      sources.Ref{Branch: r.Branch, Tag: r.Tag, SemVer: r.SemVer},
		CacheDir: filepath.Join(cfg.CacheDir, "repository"),
		Auth: sources.Auth{
			Username:      creds.Username,
			Password:      creds.Password,
			BearerToken:   creds.BearerToken,
			SSHPrivateKey: creds.SSHPrivateKey,
			KnownHosts:    creds.KnownHosts,
		},
		CABundle: creds.CABundle,
	}
	if creds.Verify {
		o.Verify = &sources.Verification{OpenPGPKeys: creds.OpenPGPKeys, SSHAllowedSigners: creds.SSHAllowedSigners}
	}
	return o, nil
}

// SOPSKeys loads the SOPS keys the decryption section names.
func SOPSKeys(d config.Decryption) (*secrets.Keys, error) {
	fromFiles, err := secrets.KeysFromFiles(d.KeyFiles...)
	if err != nil {
		return nil, err
	}
	if !d.FromEnvironment {
		return fromFiles, nil
	}
	fromEnv, err := secrets.KeysFromEnv()
	if err != nil {
		return nil, err
	}
	return secrets.MergeKeys(fromFiles, fromEnv), nil
}

// runningShards is a shard.Manager running until its context is done.
type runningShards struct {
	*shard.Manager
	done chan struct{}
}

func (r runningShards) wait() { <-r.done }

// startShards starts this replica's Leases in the management cluster: membership,
// the shards it owns and its candidacy for leader (docs/ha.md).
func startShards(ctx context.Context, cfg *config.Config, log *slog.Logger) (runningShards, error) {
	client, err := shard.NewClient(shard.ClientOptions{Kubeconfig: cfg.Kubeconfig, Context: cfg.HA.KubeconfigContext})
	if err != nil {
		return runningShards{}, fmt.Errorf("ha.kubeconfigContext: %w", err)
	}
	mgr, err := shard.New(shard.Options{
		Client:        client,
		Namespace:     cfg.HA.Namespace,
		Identity:      cfg.HA.Identity,
		Name:          cfg.HA.Name,
		Shards:        cfg.HA.Shards,
		LeaseDuration: time.Duration(cfg.HA.LeaseDuration),
		DNS:           cfg.Route53 != nil,
		Log:           log,
	})
	if err != nil {
		return runningShards{}, fmt.Errorf("ha: %w", err)
	}
	r := runningShards{Manager: mgr, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := mgr.Run(ctx); err != nil {
			log.Error("ha: shard manager stopped", "error", err)
		}
	}()
	log.Info("ha: sharing the fleet with the other replicas", "identity", cfg.HA.Identity, "namespace", cfg.HA.Namespace, "shards", cfg.HA.Shards)
	return r, nil
}

// dnsEndpoints are the published endpoints as the status shows them: each
// placement's global name, with its Route53 health check and whether Route53
// sees it healthy.
func dnsEndpoints(eps []reconciler.DNSEndpointHealth) []status.DNSEndpoint {
	out := make([]status.DNSEndpoint, len(eps))
	for i, e := range eps {
		out[i] = status.DNSEndpoint{Tenant: e.Tenant, Region: e.Region, App: e.App, Name: e.Global, Healthy: e.Healthy, HealthCheckID: e.HealthCheckID}
	}
	return out
}

// serve starts the HTTP server on addr, HTTPS when tlsFiles is set; when it fails
// later, cancel stops the daemon. The returned function shuts the server down.
func serve(ctx context.Context, cancel context.CancelFunc, addr string, tlsFiles *config.TLS, h http.Handler, log *slog.Logger) (func(), error) {
	var tlsConfig *tls.Config
	if tlsFiles != nil {
		var err error
		if tlsConfig, err = servercert.TLSConfig(tlsFiles.CertFile, tlsFiles.KeyFile); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w; set listen in the configuration file to a free address", addr, err)
	}
	if tlsConfig != nil {
		l = tls.NewListener(l, tlsConfig)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server failed; stopping", "error", err)
			cancel()
		}
	}()
	log.Info("listening", "address", l.Addr().String(), "tls", tlsConfig != nil)
	return func() {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
		<-done
	}, nil
}
