package image_test

import (
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"meridian.dev/meridian/internal/image"
	"meridian.dev/meridian/internal/testenv/registrytest"
)

const (
	moduleDir  = "../.."
	exampleDir = "../../fleet-example"
	version    = "v1.4.0-rc.2"
	revision   = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
	source     = "https://git.example.com/platform/meridian"
)

// created is a commit's time; the image's files, history and config carry it.
var created = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)

func build(t *testing.T) *image.Result {
	t.Helper()
	start := time.Now()
	res, err := image.Build(t.Context(), image.Options{
		Dir: moduleDir, Version: version, Revision: revision, Source: source, Created: created,
		WorkDir: t.TempDir(), Progress: testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built in %s", time.Since(start).Round(100*time.Millisecond))
	return res
}

// TestImage builds the image twice (same inputs, same digest), pushes it to a
// real registry, pulls it back and checks every platform's config and files;
// the host's binary runs from the pulled layers and the other platform's is an
// ELF executable for its machine.
func TestImage(t *testing.T) {
	res := build(t)
	digest, err := res.Index.Digest()
	if err != nil {
		t.Fatal(err)
	}
	again, err := build(t).Index.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if again != digest {
		t.Errorf("two builds of the same commit: digests %s and %s", digest, again)
	}

	// The OCI layout make image writes holds the same index.
	step := time.Now()
	dir := filepath.Join(t.TempDir(), "image")
	if err := res.WriteLayout(dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("layout written in %s", time.Since(step).Round(100*time.Millisecond))
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	li, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	lm, err := li.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(lm.Manifests) != 3 || lm.Manifests[0].Digest != digest || lm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != version {
		t.Errorf("layout index.json: %+v; want the image index %s tagged %s, then two SBOMs", lm.Manifests, digest, version)
	}

	reg := registrytest.New(t)
	ref, err := name.ParseReference(reg.Host + "/platform/meridian:" + version)
	if err != nil {
		t.Fatal(err)
	}
	step = time.Now()
	pushed, err := res.Push(ref, remote.WithTransport(reg.Transport()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pushed in %s", time.Since(step).Round(100*time.Millisecond))
	if pushed != digest {
		t.Errorf("pushed digest %s, built %s", pushed, digest)
	}

	index, err := remote.Index(ref, remote.WithTransport(reg.Transport()))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := index.Digest(); d != digest {
		t.Errorf("pulled %s, pushed %s", d, digest)
	}
	im, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s", im.MediaType)
	}
	var platforms []string
	for _, m := range im.Manifests {
		platforms = append(platforms, m.Platform.String())
	}
	if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64"}, platforms); diff != "" {
		t.Errorf("platforms (-want +got):\n%s", diff)
	}
	labels := map[string]string{
		image.LabelVersion:  version,
		image.LabelRevision: revision,
		image.LabelSource:   source,
		image.LabelCreated:  "2026-11-20T09:30:00Z",
		image.LabelTitle:    "meridian",
	}
	if diff := cmp.Diff(labels, im.Annotations); diff != "" {
		t.Errorf("index annotations (-want +got):\n%s", diff)
	}

	for _, m := range im.Manifests {
		t.Run(m.Platform.Architecture, func(t *testing.T) {
			img, err := index.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			checkConfig(t, img, m.Platform, labels)
			files, err := image.Files(img)
			if err != nil {
				t.Fatal(err)
			}
			checkFiles(t, files)
			bin := filepath.Join(t.TempDir(), "meridian")
			if err := os.WriteFile(bin, files[image.BinaryPath].Data, 0o755); err != nil {
				t.Fatal(err)
			}
			checkELF(t, bin, m.Platform.Architecture)
			if m.Platform.Architecture == runtime.GOARCH {
				checkRuns(t, bin)
			}
			checkSBOM(t, reg, ref.Context().Digest(m.Digest.String()), m.Platform)
		})
	}
	if !slices.Contains(platforms, "linux/"+runtime.GOARCH) {
		t.Errorf("no image for this machine's linux/%s", runtime.GOARCH)
	}
}

func checkConfig(t *testing.T, img v1.Image, p *v1.Platform, labels map[string]string) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != p.OS || cf.Architecture != p.Architecture {
		t.Errorf("config platform %s/%s, index says %s", cf.OS, cf.Architecture, p)
	}
	if !cf.Created.Time.Equal(created) {
		t.Errorf("created %s, want %s", cf.Created, created)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", c.User)
	}
	if diff := cmp.Diff([]string{image.BinaryPath}, c.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	if len(c.Cmd) != 0 || len(c.Shell) != 0 {
		t.Errorf("cmd %q, shell %q: want none", c.Cmd, c.Shell)
	}
	if diff := cmp.Diff(labels, c.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	for _, h := range cf.History {
		if !h.Created.Time.Equal(created) {
			t.Errorf("history %q created %s, want %s", h.CreatedBy, h.Created, created)
		}
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	if mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s", mt)
	}
}

// checkFiles checks the whole filesystem: the binary, CA certificates, the
// nonroot user, and nothing else (no shell, no package manager).
func checkFiles(t *testing.T, files map[string]image.File) {
	t.Helper()
	var names []string
	for n, f := range files {
		names = append(names, n)
		if !f.Header.ModTime.Equal(created) {
			t.Errorf("%s: time %s, want %s", n, f.Header.ModTime, created)
		}
	}
	slices.Sort(names)
	want := []string{"/etc", "/etc/group", "/etc/passwd", "/etc/ssl", "/etc/ssl/certs", "/etc/ssl/certs/ca-certificates.crt",
		"/home", "/home/nonroot", "/tmp", "/usr", "/usr/local", "/usr/local/bin", "/usr/local/bin/meridian"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if h := files[image.BinaryPath].Header; h == nil || h.Mode != 0o755 || h.Uid != 0 {
		t.Errorf("binary header %+v: want mode 0755, owner root", h)
	}
	if h := files["/home/nonroot"].Header; h == nil || h.Uid != 65532 || h.Gid != 65532 {
		t.Errorf("/home/nonroot header %+v: want owner 65532", h)
	}
	if !strings.Contains(string(files["/etc/passwd"].Data), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd lacks user 65532:\n%s", files["/etc/passwd"].Data)
	}
	rest, n := files[image.CACertsPath].Data, 0
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", image.CACertsPath, err)
		}
		if !cert.IsCA {
			t.Errorf("%s: %s is not a CA", image.CACertsPath, cert.Subject)
		}
		n++
	}
	if n < 100 {
		t.Errorf("%s holds %d certificates, want Mozilla's root store (over 100)", image.CACertsPath, n)
	}
}

// checkELF checks that bin is a static executable for arch.
func checkELF(t *testing.T, bin, arch string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s binary: %v", arch, err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want || f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC {
		t.Errorf("%s binary: machine %s, class %s, type %s; want %s, ELFCLASS64, ET_EXEC", arch, f.Machine, f.Class, f.Type, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s binary is dynamically linked (%s)", arch, p.Type)
		}
	}
}

// checkRuns runs the binary from the image: its version, and a validation of
// fleet-example (which renders every placement).
func checkRuns(t *testing.T, bin string) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("meridian version: %v\n%s", err, out)
	}
	want := "meridian " + version + " (commit " + revision + ", "
	if !strings.HasPrefix(string(out), want) || !strings.Contains(string(out), "linux/"+runtime.GOARCH) {
		t.Errorf("meridian version = %q, want %q… linux/%s", out, want, runtime.GOARCH)
	}
	key, err := filepath.Abs(filepath.Join(exampleDir, "demo-age-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "validate", "--fleet", exampleDir, "--strict", "--key-file", key, "--chart-cache", t.TempDir())
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/nonexistent"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("meridian validate fleet-example: %v\n%s", err, out)
	}
}

// checkSBOM finds the image's SBOM among its referrers in the registry and
// checks it lists the modules the binary links.
func checkSBOM(t *testing.T, reg *registrytest.Registry, img name.Digest, p *v1.Platform) {
	t.Helper()
	referrers, err := remote.Referrers(img, remote.WithTransport(reg.Transport()))
	if err != nil {
		t.Fatal(err)
	}
	rm, err := referrers.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(rm.Manifests) != 1 || rm.Manifests[0].ArtifactType != image.SBOMMediaType {
		t.Fatalf("referrers of %s: %+v, want one %s", img, rm.Manifests, image.SBOMMediaType)
	}
	art, err := remote.Image(img.Context().Digest(rm.Manifests[0].Digest.String()), remote.WithTransport(reg.Transport()))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := art.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("SBOM layers %d, %v; want one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var doc image.SPDX
	if err := json.NewDecoder(rc).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.Name != "meridian.dev/meridian/cmd/meridian "+p.String() {
		t.Errorf("SBOM %s, name %q", doc.SPDXVersion, doc.Name)
	}
	got := map[string]string{}
	for _, pkg := range doc.Packages {
		got[pkg.Name] = pkg.VersionInfo
	}
	for mod, v := range map[string]string{"meridian.dev/meridian": version, "stdlib": runtime.Version(), "k8s.io/client-go": "v0.37.2", "helm.sh/helm/v3": "v3.22.0"} {
		if got[mod] == "" || (mod != "stdlib" && got[mod] != v) {
			t.Errorf("SBOM: %s at %q, want %s", mod, got[mod], v)
		}
	}
	if len(doc.Relationships) != len(doc.Packages) {
		t.Errorf("SBOM: %d relationships for %d packages", len(doc.Relationships), len(doc.Packages))
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
