package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// placementScript is the scripted pipeline for one placement, as the field runs it:
// decrypt the tenant's values for the app with sops, render with helm template (or
// kubectl kustomize), apply with kubectl apply --server-side. Decrypted values go
// through a pipe, never to disk.
const placementScript = `#!/usr/bin/env bash
# usage: placement.sh TENANT REGION APP KIND PATH SECRETS
set -euo pipefail
tenant=$1 region=$2 app=$3 kind=$4 path=$5 secrets=$6
apply() {
  kubectl --kubeconfig "$BENCH_KUBECONFIG" --context "$region" --cache-dir "$BENCH_CACHE/kube" \
    apply --server-side --field-manager=fleet-script -n "$tenant" -f - >/dev/null
}
case "$kind" in
helm)
  values=("-f" "$BENCH_VALUES/$tenant.$region.$app.yaml")
  if [ "$secrets" = 1 ]; then
    helm template "$app" "$BENCH_FLEET/apps/$app/$path" --namespace "$tenant" "${values[@]}" \
      -f <(sops -d --extract "[\"$app\"]" "$BENCH_FLEET/tenants/$tenant.secrets.sops.yaml") | apply
  else
    helm template "$app" "$BENCH_FLEET/apps/$app/$path" --namespace "$tenant" "${values[@]}" | apply
  fi
  ;;
kustomize)
  kubectl kustomize "$BENCH_FLEET/apps/$app/$path" | apply
  ;;
esac
`

// namespaceScript creates a tenant's namespace in a region.
const namespaceScript = `#!/usr/bin/env bash
# usage: namespace.sh TENANT REGION
set -euo pipefail
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$1" |
  kubectl --kubeconfig "$BENCH_KUBECONFIG" --context "$2" --cache-dir "$BENCH_CACHE/kube" \
    apply --server-side --field-manager=fleet-script -f - >/dev/null
`

// Baseline is the scripted pipeline over a fleet: its scripts, job lists and
// environment in Dir.
type Baseline struct {
	Dir         string
	Parallelism int
	env         []string
	// Placements and Namespaces are the job lists, one line of arguments each.
	Placements, Namespaces []string
	// Decrypts is how many placements run sops.
	Decrypts int
}

// NewBaseline writes the scripts, job lists and values files for f.
func NewBaseline(f *Fleet, dir, kubeconfig, keyFile string, tools *Tools, parallelism int) (*Baseline, error) {
	b := &Baseline{Dir: dir, Parallelism: parallelism}
	if err := os.MkdirAll(filepath.Join(dir, "cache"), 0o755); err != nil {
		return nil, err
	}
	values := filepath.Join(dir, "values")
	if err := writeValues(f, values, f.Model.Fleet.Spec.DNS.Zone); err != nil {
		return nil, err
	}
	sections, err := secretSections(f)
	if err != nil {
		return nil, err
	}
	for _, t := range f.Model.Tenants {
		for _, r := range t.Spec.Regions {
			b.Namespaces = append(b.Namespaces, t.Metadata.Name+" "+r)
		}
	}
	for _, p := range f.Model.Placements() {
		kind, path := "helm", ""
		if h := p.App.Spec.Helm; h != nil {
			path = h.Chart
		} else {
			kind, path = "kustomize", p.App.Spec.Kustomize.Path
		}
		secrets := "0"
		if kind == "helm" && slices.Contains(sections[p.Tenant.Metadata.Name], p.App.Metadata.Name) {
			secrets = "1"
			b.Decrypts++
		}
		b.Placements = append(b.Placements, strings.Join([]string{p.Tenant.Metadata.Name, p.Region.Metadata.Name, p.App.Metadata.Name, kind, path, secrets}, " "))
	}
	files := map[string]string{
		"placement.sh":   placementScript,
		"namespace.sh":   namespaceScript,
		"placements.txt": strings.Join(b.Placements, "\n") + "\n",
		"namespaces.txt": strings.Join(b.Namespaces, "\n") + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			return nil, err
		}
	}
	// The CLIs come first in PATH, under their plain names, as in a script.
	binDir := filepath.Join(dir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	for name, target := range map[string]string{"sops": tools.Sops, "helm": tools.Helm, "kubectl": tools.Kubectl} {
		_ = os.Remove(filepath.Join(binDir, name))
		if err := os.Symlink(target, filepath.Join(binDir, name)); err != nil {
			return nil, err
		}
	}
	cache := filepath.Join(dir, "cache")
	b.env = append(daemonEnv(),
		"PATH="+binDir+":"+os.Getenv("PATH"),
		"BENCH_KUBECONFIG="+kubeconfig,
		"BENCH_FLEET="+f.Dir,
		"BENCH_VALUES="+values,
		"BENCH_CACHE="+cache,
		"SOPS_AGE_KEY_FILE="+keyFile,
		"HELM_CACHE_HOME="+filepath.Join(cache, "helm"),
		"HELM_CONFIG_HOME="+filepath.Join(cache, "helm-config"),
		"HELM_DATA_HOME="+filepath.Join(cache, "helm-data"),
		"HOME="+cache,
	)
	return b, nil
}

// secretSections lists, per tenant with a secrets file, the apps its file has values
// for: the top-level keys of a SOPS file are in plain text.
func secretSections(f *Fleet) (map[string][]string, error) {
	out := map[string][]string{}
	for _, t := range f.Model.Tenants {
		if t.SecretsFile == "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(f.Dir, t.SecretsFile))
		if err != nil {
			return nil, err
		}
		var doc map[string]any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", t.SecretsFile, err)
		}
		for k := range doc {
			if k != "sops" {
				out[t.Metadata.Name] = append(out[t.Metadata.Name], k)
			}
		}
	}
	return out, nil
}

// BaselineRun is what running the scripted pipeline took.
type BaselineRun struct {
	// Seconds is the wall time; CPUSeconds the CPU time of every process it ran.
	Seconds, CPUSeconds float64
	// Jobs is how many placements (and namespaces) it ran.
	Jobs int
}

// Run runs the namespaces' jobs then the placements' jobs (all of them, or those
// sample picks), each list through xargs -P Parallelism.
func (b *Baseline) Run(ctx context.Context, sample []string) (BaselineRun, error) {
	placements := b.Placements
	if sample != nil {
		placements = sample
	}
	jobs := filepath.Join(b.Dir, "run-placements.txt")
	if err := os.WriteFile(jobs, []byte(strings.Join(placements, "\n")+"\n"), 0o644); err != nil {
		return BaselineRun{}, err
	}
	script := fmt.Sprintf("set -euo pipefail\nxargs -P %d -L 1 bash namespace.sh < namespaces.txt\nxargs -P %d -L 1 bash placement.sh < %s\n",
		b.Parallelism, b.Parallelism, jobs)
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = b.Dir
	cmd.Env = b.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	run := BaselineRun{Seconds: time.Since(start).Seconds(), Jobs: len(placements) + len(b.Namespaces)}
	if cmd.ProcessState != nil {
		// The rusage of a process includes its waited-for descendants: xargs waits
		// for each job, and each job's bash for its pipeline.
		run.CPUSeconds = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	if err != nil {
		return run, fmt.Errorf("scripted baseline: %w\n%s", err, tail(out.String(), 30))
	}
	return run, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
