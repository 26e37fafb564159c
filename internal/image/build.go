package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Where the image puts things; the chart (deploy/meridian) relies on the
// entrypoint and the user.
const (
	// BinaryPath is the meridian binary in the image, its entrypoint.
	BinaryPath = "/usr/local/bin/meridian"
	// CACertsPath is the PEM bundle of root certificates, where Go's
	// crypto/x509 looks first on Linux.
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
	// User is the numeric user and group the image runs as (distroless's
	// nonroot), the one the chart's securityContext names.
	User = "65532:65532"
)

// OCI annotation keys used as the image's labels and the index's annotations.
const (
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelSource   = "org.opencontainers.image.source"
	LabelCreated  = "org.opencontainers.image.created"
	LabelTitle    = "org.opencontainers.image.title"
)

// DefaultPlatforms are the platforms `make image` builds.
var DefaultPlatforms = []string{"linux/amd64", "linux/arm64"}

// Options say what to build. Version, Revision and Created name the commit;
// the same Options on the same commit give the same index digest.
type Options struct {
	// Dir is the root of the Meridian module (where go.mod is).
	Dir string
	// Package is the main package to build, relative to Dir; ./cmd/meridian
	// when empty.
	Package string
	// Version and Revision are stamped into the binary (internal/version) and
	// the labels. Revision is the full commit id.
	Version, Revision string
	// Source is the repository's URL, for the org.opencontainers.image.source label.
	Source string
	// Created is the time of every file, history entry and config in the
	// image: the commit's time, so a rebuild gives the same digest.
	Created time.Time
	// Platforms are "os/arch" or "os/arch/variant"; DefaultPlatforms when empty.
	Platforms []string
	// WorkDir receives the built binaries; a temporary directory, removed
	// afterwards, when empty.
	WorkDir string
	// Go is the go command; "go" when empty.
	Go string
	// Progress, when set, receives one line per step.
	Progress io.Writer
}

// Result is a built image: the index of the platform images, and one SBOM
// artifact per platform image whose subject is that image.
type Result struct {
	Index v1.ImageIndex
	SBOMs []v1.Image
}

// Build compiles the binary for every platform and assembles the image index
// and its SBOMs in memory; WriteLayout and Push store them.
func Build(ctx context.Context, opts Options) (*Result, error) {
	if opts.Version == "" || opts.Revision == "" || opts.Created.IsZero() {
		return nil, errors.New("image: version, revision and created time are required")
	}
	if opts.Package == "" {
		opts.Package = "./cmd/meridian"
	}
	if len(opts.Platforms) == 0 {
		opts.Platforms = DefaultPlatforms
	}
	if opts.Go == "" {
		opts.Go = "go"
	}
	opts.Created = opts.Created.UTC().Truncate(time.Second)
	if opts.WorkDir == "" {
		dir, err := os.MkdirTemp("", "meridian-image-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		opts.WorkDir = dir
	}

	base, err := baseLayer(opts.Created)
	if err != nil {
		return nil, err
	}
	index := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	index = mutate.Annotations(index, opts.annotations()).(v1.ImageIndex)
	res := &Result{}
	for _, p := range opts.Platforms {
		platform, err := v1.ParsePlatform(p)
		if err != nil {
			return nil, fmt.Errorf("image: platform %q: %w", p, err)
		}
		bin := filepath.Join(opts.WorkDir, "meridian-"+strings.ReplaceAll(p, "/", "-"))
		if err := opts.compile(ctx, platform, bin); err != nil {
			return nil, err
		}
		img, err := opts.platformImage(base, platform, bin)
		if err != nil {
			return nil, fmt.Errorf("image: %s: %w", p, err)
		}
		index = mutate.AppendManifests(index, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: platform},
		})
		sbom, err := sbomArtifact(img, bin, platform, opts)
		if err != nil {
			return nil, fmt.Errorf("image: %s: sbom: %w", p, err)
		}
		res.SBOMs = append(res.SBOMs, sbom)
	}
	res.Index = index
	return res, nil
}

// annotations are the labels every image carries and the index's annotations.
func (o Options) annotations() map[string]string {
	a := map[string]string{
		LabelVersion:  o.Version,
		LabelRevision: o.Revision,
		LabelCreated:  o.Created.Format(time.RFC3339),
		LabelTitle:    "meridian",
	}
	if o.Source != "" {
		a[LabelSource] = o.Source
	}
	return a
}

// compile builds the static binary for one platform, stamped as the Makefile
// stamps builds, with nothing of the build machine in it: no cgo, -trimpath,
// no VCS stamping (the commit is given instead), stripped of its symbol table.
func (o Options) compile(ctx context.Context, p *v1.Platform, out string) error {
	ldflags := strings.Join([]string{
		"-s", "-w",
		"-X", "meridian.dev/meridian/internal/version.Version=" + o.Version,
		"-X", "meridian.dev/meridian/internal/version.Commit=" + o.Revision,
	}, " ")
	cmd := exec.CommandContext(ctx, o.Go, "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, o.Package)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture, "GOFLAGS=")
	if p.Architecture == "arm" && p.Variant != "" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	start := time.Now()
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("image: go build %s for %s: %w\n%s", o.Package, p, err, output)
	}
	o.progress("built %s for %s in %s", o.Package, p, time.Since(start).Round(100*time.Millisecond))
	return nil
}

func (o Options) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// platformImage is the base layer, the binary's layer, and the config.
func (o Options) platformImage(base v1.Layer, p *v1.Platform, bin string) (v1.Image, error) {
	binLayer, err := binaryLayer(bin, o.Created)
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: o.Created}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "meridian-dev image: CA certificates, passwd, group", Comment: "base"}},
		mutate.Addendum{Layer: binLayer, History: v1.History{Created: created, CreatedBy: "meridian-dev image: " + BinaryPath, Comment: o.Version}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.OS = p.OS
	cf.Architecture = p.Architecture
	cf.Variant = p.Variant
	cf.Config = v1.Config{
		User:       User,
		Entrypoint: []string{BinaryPath},
		WorkingDir: "/",
		Env:        []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=" + CACertsPath},
		Labels:     o.annotations(),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, o.annotations()).(v1.Image), nil
}
