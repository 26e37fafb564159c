package image

import (
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// WriteLayout replaces dir with an OCI image layout holding the index, tagged
// with its version (org.opencontainers.image.ref.name), and the SBOM
// artifacts, which name their images as subjects.
func (r *Result) WriteLayout(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	im, err := r.Index.IndexManifest()
	if err != nil {
		return err
	}
	if err := p.AppendIndex(r.Index, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": im.Annotations[LabelVersion],
	})); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	for _, sbom := range r.SBOMs {
		if err := p.AppendImage(sbom); err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
	}
	return nil
}

// Push writes the index to ref (a tag or a digest), then every SBOM by its
// digest in the same repository; the registry lists each as a referrer of its
// image (or go-containerregistry keeps the referrers tag schema for registries
// without the referrers API).
func (r *Result) Push(ref name.Reference, opts ...remote.Option) (v1.Hash, error) {
	digest, err := r.Index.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.WriteIndex(ref, r.Index, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("%s: %w", ref, err)
	}
	for _, sbom := range r.SBOMs {
		d, err := sbom.Digest()
		if err != nil {
			return v1.Hash{}, err
		}
		if err := remote.Write(ref.Context().Digest(d.String()), sbom, opts...); err != nil {
			return v1.Hash{}, fmt.Errorf("%s: sbom: %w", ref, err)
		}
	}
	return digest, nil
}
