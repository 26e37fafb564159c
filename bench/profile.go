package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"meridian.dev/meridian/config"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/dns"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/render/secrets"
	"meridian.dev/meridian/sources"
)

// profileOnce runs one cold pass in this process, wired as `meridian run --once`
// wires it (the same configuration file, without the status server), under the CPU
// profiler, and writes cpu.pprof and heap.pprof (after the pass) into dir.
func profileOnce(ctx context.Context, opts DaemonOptions, dir string) (time.Duration, error) {
	path, err := writeConfig(opts, "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return 0, err
	}
	log := slog.New(slog.DiscardHandler)
	ctrllog.SetLogger(logr.Discard()) // as cmd/meridian does
	// The benchmark's configuration names no credentials and no keys from the
	// environment; what it names is wired as run wires it.
	git, err := sources.NewGit(sources.GitOptions{
		URL:      cfg.Repository.URL,
		Ref:      sources.Ref{Branch: cfg.Repository.Branch, Tag: cfg.Repository.Tag, SemVer: cfg.Repository.SemVer},
		CacheDir: filepath.Join(cfg.CacheDir, "repository"),
	})
	if err != nil {
		return 0, err
	}
	keys, err := secrets.KeysFromFiles(cfg.Decryption.KeyFiles...)
	if err != nil {
		return 0, err
	}
	charts, err := helm.New(helm.Options{CacheDir: filepath.Join(cfg.CacheDir, "charts")})
	if err != nil {
		return 0, err
	}
	// The daemon's own credentials: the Route53 test server accepts any.
	for _, kv := range [][2]string{{"AWS_ACCESS_KEY_ID", "BENCH"}, {"AWS_SECRET_ACCESS_KEY", "bench-only-not-a-secret"}} {
		os.Setenv(kv[0], kv[1])
	}
	os.Unsetenv("AWS_CA_BUNDLE")
	client, err := dns.NewRoute53Client(ctx, dns.ClientOptions{Region: cfg.Route53.Region, Endpoint: cfg.Route53.Endpoint})
	if err != nil {
		return 0, err
	}
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return 0, err
	}
	defer cpu.Close()
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return 0, err
	}
	renderer := render.New(render.Options{Helm: charts, Decryptor: secrets.NewDecryptor(keys)})
	start := time.Now()
	err = reconciler.Run(ctx, reconciler.RunOptions{
		Poller:        &sources.Poller{Source: git, Interval: time.Hour},
		Snapshots:     git,
		Renderer:      renderer,
		Kubeconfig:    cfg.Kubeconfig,
		HealthTimeout: time.Duration(cfg.HealthTimeout),
		KubeAPIQPS:    float32(cfg.KubeAPI.QPS),
		KubeAPIBurst:  cfg.KubeAPI.Burst,
		Route53:       client,
		DNS:           dns.Options{RequestsPerSecond: float64(cfg.Route53.RequestsPerSecond), RateScale: cfg.Route53.RateScale},
		Once:          true,
		Log:           log,
	})
	took := time.Since(start)
	pprof.StopCPUProfile()
	if err != nil {
		return took, fmt.Errorf("profiled pass: %w", err)
	}
	heap, err := os.Create(filepath.Join(dir, "heap.pprof"))
	if err != nil {
		return took, err
	}
	defer heap.Close()
	runtime.GC()
	err = pprof.WriteHeapProfile(heap) // with the render cache still held, as in the daemon
	runtime.KeepAlive(renderer)
	return took, err
}
