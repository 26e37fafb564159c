package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/render/secrets"
)

type renderOptions struct {
	fleetDir    string
	revision    string
	filter      render.Filter
	outputDir   string
	showSecrets bool
	keyFiles    []string
	chartCache  string
}

func newRenderCommand() *cobra.Command {
	o := renderOptions{}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Render the objects every unit of a fleet gets (placements, tenant namespaces, addons), as YAML",
		Long: `Render decrypts SOPS values, renders every selected placement (Helm chart or
Kustomize base) and the isolation objects of every tenant namespace, and prints
them as one YAML stream, or writes one file per unit with --output-dir.

Decrypted values are redacted unless --show-secrets is given. SOPS keys come from
--key-file (age identity files, or armored OpenPGP keys ending in .asc) and from
SOPS_AGE_KEY / SOPS_AGE_KEY_FILE, never from the fleet repository.`,
		Example: `  SOPS_AGE_KEY_FILE=fleet-example/demo-age-key.txt meridian render --fleet fleet-example
  meridian render --fleet . --tenant trucking --region eu-west-2 --key-file ~/.config/sops/age/keys.txt
  meridian render --fleet . --output-dir rendered/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRender(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.fleetDir, "fleet", ".", "directory of the fleet repository")
	f.StringVar(&o.revision, "revision", "", "revision written on every object (default: none)")
	f.StringVar(&o.filter.Tenant, "tenant", "", "render only this tenant")
	f.StringVar(&o.filter.Region, "region", "", "render only this region")
	f.StringVar(&o.filter.App, "app", "", "render only this app")
	f.StringVar(&o.filter.Addon, "addon", "", "render only this addon (and no tenant's unit)")
	f.StringVar(&o.outputDir, "output-dir", "", "write <tenant>/<region>/<app>.yaml files here instead of printing")
	f.BoolVar(&o.showSecrets, "show-secrets", false, "print decrypted values instead of redacting them (never in CI logs)")
	f.StringArrayVar(&o.keyFiles, "key-file", nil, "SOPS key file: age identities, or armored OpenPGP keys (.asc); repeatable")
	f.StringVar(&o.chartCache, "chart-cache", "", "directory for charts downloaded from repositories (default: the user cache)")
	return cmd
}

func runRender(ctx context.Context, stdout, stderr io.Writer, o renderOptions) error {
	model, err := fleet.LoadDir(o.fleetDir)
	if err != nil {
		var list fleet.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintln(stderr, locate(o.fleetDir, e))
			}
			return fmt.Errorf("%s is not valid (%d errors); nothing rendered", o.fleetDir, len(list))
		}
		return err
	}
	for _, n := range []struct{ what, name string }{{"tenant", o.filter.Tenant}, {"region", o.filter.Region}, {"app", o.filter.App}, {"addon", o.filter.Addon}} {
		if n.name != "" && !exists(model, n.what, n.name) {
			return fmt.Errorf("--%s %s: no such %s in %s", n.what, n.name, n.what, o.fleetDir)
		}
	}
	dir, err := filepath.Abs(o.fleetDir)
	if err != nil {
		return err
	}

	renderer, err := newRenderer(o.keyFiles, o.chartCache)
	if err != nil {
		return err
	}
	result, err := renderer.Render(ctx, render.Snapshot{Dir: dir, Revision: o.revision, Model: model}, o.filter)
	if err != nil {
		return err
	}
	if writeRenderErrors(stderr, "", result.Errors, func(msg string) string { return msg }) {
		writeKeyHint(stderr)
	}
	if len(result.Errors) > 0 {
		return exitError{code: 1}
	}

	units := result.Units
	if o.showSecrets {
		fmt.Fprintln(stderr, "Warning: --show-secrets prints decrypted values; do not share this output or keep it in logs")
	} else if units, err = result.Redact(units); err != nil {
		return err
	}
	if o.outputDir == "" {
		return render.EncodeYAML(stdout, units)
	}
	for _, u := range units {
		file := filepath.Join(o.outputDir, filepath.FromSlash(render.UnitFile(u)))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return err
		}
		out, err := os.OpenFile(file, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		err = render.EncodeYAML(out, []*render.Unit{u})
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", file, err)
		}
	}
	fmt.Fprintf(stderr, "wrote %d files under %s\n", len(units), o.outputDir)
	return nil
}

// newRenderer builds a Renderer with the SOPS keys of key files and the environment.
func newRenderer(keyFiles []string, chartCache string) (*render.Renderer, error) {
	fromFiles, err := secrets.KeysFromFiles(keyFiles...)
	if err != nil {
		return nil, err
	}
	fromEnv, err := secrets.KeysFromEnv()
	if err != nil {
		return nil, err
	}
	if chartCache == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no chart cache directory: %w; set --chart-cache", err)
		}
		chartCache = filepath.Join(cache, "meridian", "charts")
	}
	charts, err := helm.New(helm.Options{CacheDir: chartCache})
	if err != nil {
		return nil, err
	}
	return render.New(render.Options{
		Helm:      charts,
		Decryptor: secrets.NewDecryptor(secrets.MergeKeys(fromFiles, fromEnv)),
	}), nil
}

func exists(m *fleet.Model, what, name string) bool {
	switch what {
	case "tenant":
		return m.Tenant(name) != nil
	case "region":
		return m.Region(name) != nil
	case "addon":
		return m.Addon(name) != nil
	}
	return m.App(name) != nil
}
