package image

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime/debug"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// SBOMMediaType is the media type of the SBOM artifacts and of their one layer.
const SBOMMediaType = "application/spdx+json"

// SPDX is the subset of an SPDX 2.3 JSON document the image's SBOM fills in.
type SPDX struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      SPDXCreationInfo   `json:"creationInfo"`
	Packages          []SPDXPackage      `json:"packages"`
	Relationships     []SPDXRelationship `json:"relationships"`
}

// SPDXCreationInfo says when and by what the document was made.
type SPDXCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

// SPDXPackage is one Go module linked into the binary (or the binary's own
// module, or the Go standard library), named by its package URL.
type SPDXPackage struct {
	Name             string            `json:"name"`
	SPDXID           string            `json:"SPDXID"`
	VersionInfo      string            `json:"versionInfo,omitempty"`
	DownloadLocation string            `json:"downloadLocation"`
	FilesAnalyzed    bool              `json:"filesAnalyzed"`
	ExternalRefs     []SPDXExternalRef `json:"externalRefs,omitempty"`
}

// SPDXExternalRef is a package's purl.
type SPDXExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

// SPDXRelationship relates two SPDX elements: the document describes the
// binary's module, which depends on every other package.
type SPDXRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// NewSPDX reads the build information of the Go binary at bin — the modules it
// links, as `go version -m` shows them — and describes it as an SPDX document
// made at created. version is the binary's own version, which a build without
// VCS stamping does not record.
func NewSPDX(bin, platform, version string, created time.Time) (*SPDX, error) {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	mainVersion := info.Main.Version
	if mainVersion == "" || mainVersion == "(devel)" {
		mainVersion = version
	}
	doc := &SPDX{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        fmt.Sprintf("%s %s", info.Path, platform),
		// A namespace unique to this binary: its module, platform and digest.
		DocumentNamespace: fmt.Sprintf("https://%s/spdx/%s/sha256-%s", info.Main.Path, platform, hex.EncodeToString(sum[:])),
		CreationInfo: SPDXCreationInfo{
			Created:  created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: meridian-dev image"},
		},
	}
	mainID := "SPDXRef-Package-main"
	doc.Packages = append(doc.Packages, spdxPackage(mainID, info.Main.Path, mainVersion))
	doc.Relationships = append(doc.Relationships, SPDXRelationship{Element: doc.SPDXID, Type: "DESCRIBES", Related: mainID})
	add := func(i int, name, version string) {
		id := fmt.Sprintf("SPDXRef-Package-%d-%s", i, spdxIDChars.ReplaceAllString(name, "-"))
		doc.Packages = append(doc.Packages, spdxPackage(id, name, version))
		doc.Relationships = append(doc.Relationships, SPDXRelationship{Element: mainID, Type: "DEPENDS_ON", Related: id})
	}
	add(0, "stdlib", info.GoVersion)
	for i, dep := range info.Deps {
		m := module(dep)
		add(i+1, m.Path, m.Version)
	}
	return doc, nil
}

// module is what the binary links for dep: its replacement, if any.
func module(dep *debug.Module) *debug.Module {
	if dep.Replace != nil {
		return dep.Replace
	}
	return dep
}

var spdxIDChars = regexp.MustCompile(`[^a-zA-Z0-9.-]+`)

func spdxPackage(id, name, version string) SPDXPackage {
	p := SPDXPackage{Name: name, SPDXID: id, VersionInfo: version, DownloadLocation: "NOASSERTION"}
	purl := "pkg:golang/" + name
	if version != "" {
		purl += "@" + version
	}
	p.ExternalRefs = []SPDXExternalRef{{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: purl}}
	return p
}

// sbomArtifact is an OCI 1.1 artifact manifest (artifactType SBOMMediaType,
// the empty config, one layer: the SPDX JSON) whose subject is img.
func sbomArtifact(img v1.Image, bin string, platform *v1.Platform, opts Options) (v1.Image, error) {
	doc, err := NewSPDX(bin, platform.String(), opts.Version, opts.Created)
	if err != nil {
		return nil, err
	}
	body, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	subject, err := partial.Descriptor(img)
	if err != nil {
		return nil, err
	}
	subject.Platform = platform
	return newArtifact(SBOMMediaType, static.NewLayer(body, SBOMMediaType), *subject, map[string]string{
		LabelCreated: opts.Created.Format(time.RFC3339),
	})
}

// emptyConfig is the OCI empty descriptor's content, the config of artifacts.
var emptyConfig = []byte("{}")

// artifact is a v1.Image made of a manifest written here: go-containerregistry's
// mutate package writes an image config, never the empty one artifacts have.
type artifact struct {
	artifactType string
	manifest     []byte
	layer        v1.Layer
}

func newArtifact(artifactType string, layer v1.Layer, subject v1.Descriptor, annotations map[string]string) (v1.Image, error) {
	ld, err := partial.Descriptor(layer)
	if err != nil {
		return nil, err
	}
	configDigest, configSize, err := v1.SHA256(bytes.NewReader(emptyConfig))
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        v1.Descriptor{MediaType: types.OCIEmptyJSON, Digest: configDigest, Size: configSize, Data: emptyConfig},
		Layers:        []v1.Descriptor{{MediaType: ld.MediaType, Digest: ld.Digest, Size: ld.Size}},
		Subject:       &subject,
		Annotations:   annotations,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifact{artifactType: artifactType, manifest: raw, layer: layer})
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return emptyConfig, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) ArtifactType() (string, error)       { return a.artifactType, nil }

func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if d, err := a.layer.Digest(); err == nil && d == h {
		return a.layer, nil
	}
	if d, _, _ := v1.SHA256(bytes.NewReader(emptyConfig)); d == h {
		return static.NewLayer(emptyConfig, types.OCIEmptyJSON), nil
	}
	return nil, fmt.Errorf("artifact: no blob %s", h)
}
