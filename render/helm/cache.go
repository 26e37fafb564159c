package helm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
)

// The chart cache holds, under Options.CacheDir:
//
//	charts/<key>.json        which archive a repository, name and version resolved to
//	blobs/sha256/<hex>.tgz   archives, named by the SHA-256 of their content
//
// where key is the SHA-256 of the repository URL, name and version. Files are written
// to a temporary name and renamed, so readers (in this or another process) see whole
// files or none; a reader checks an archive against its digest before using it and
// treats anything that does not match as absent.

// cacheEntry is the content of charts/<key>.json.
type cacheEntry struct {
	Repository string `json:"repository"`
	Name       string `json:"name"`
	Version    string `json:"version"`
	Digest     string `json:"digest"`
}

// cacheKey identifies a chart of a repository.
func cacheKey(repository, name, version string) string {
	return hashOf([]string{repository, name, version})
}

func (r *Renderer) entryPath(repository, name, version string) string {
	return filepath.Join(r.cacheDir, "charts", cacheKey(repository, name, version)+".json")
}

func (r *Renderer) blobPath(digest string) (string, bool) {
	hexSum, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexSum) != sha256.Size*2 {
		return "", false
	}
	if _, err := hex.DecodeString(hexSum); err != nil {
		return "", false
	}
	return filepath.Join(r.cacheDir, "blobs", "sha256", hexSum+".tgz"), true
}

// cached returns the cached archive of a chart, or nil when there is none that is
// whole and matches its digest.
func (r *Renderer) cached(repository, name, version string) *archive {
	data, err := os.ReadFile(r.entryPath(repository, name, version))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn("chart cache unreadable; downloading", "repository", repository, "chart", name, "version", version, "error", err)
		}
		return nil
	}
	var e cacheEntry
	if err := json.Unmarshal(data, &e); err != nil || e.Repository != repository || e.Name != name || e.Version != version {
		r.log.Warn("chart cache entry damaged; downloading", "repository", repository, "chart", name, "version", version)
		return nil
	}
	p, ok := r.blobPath(e.Digest)
	if !ok {
		r.log.Warn("chart cache entry damaged; downloading", "repository", repository, "chart", name, "version", version)
		return nil
	}
	blob, err := os.ReadFile(p)
	if err != nil {
		r.log.Warn("chart archive missing from cache; downloading", "repository", repository, "chart", name, "version", version, "error", err)
		return nil
	}
	sum := sha256.Sum256(blob)
	if "sha256:"+hex.EncodeToString(sum[:]) != e.Digest {
		r.log.Warn("cached chart archive does not match its digest; downloading", "repository", repository, "chart", name, "version", version)
		return nil
	}
	return &archive{repository: repository, name: name, version: version, digest: e.Digest, data: blob}
}

// store keeps a verified archive. A failure only costs a download next time, so it is
// logged, not returned.
func (r *Renderer) store(a *archive) {
	p, _ := r.blobPath(a.digest)
	entry, _ := json.Marshal(cacheEntry{Repository: a.repository, Name: a.name, Version: a.version, Digest: a.digest})
	if err := writeFileAtomic(p, a.data); err != nil {
		r.log.Warn("cannot cache chart archive", "repository", a.repository, "chart", a.name, "version", a.version, "error", err)
		return
	}
	if err := writeFileAtomic(r.entryPath(a.repository, a.name, a.version), entry); err != nil {
		r.log.Warn("cannot cache chart archive", "repository", a.repository, "chart", a.name, "version", a.version, "error", err)
	}
}

// writeFileAtomic writes data to a temporary file next to name and renames it there.
func writeFileAtomic(name string, data []byte) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename, there is nothing left to remove
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// hashOf digests a list of byte strings unambiguously: each is preceded by its length.
func hashOf[S ~string | ~[]byte](parts []S) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// digestFiles is Renderer.Digest of a local chart: its files' names and contents.
func digestFiles(files []*loader.BufferedFile) string {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b *loader.BufferedFile) int { return strings.Compare(a.Name, b.Name) })
	parts := [][]byte{[]byte("local chart")}
	for _, f := range sorted {
		parts = append(parts, []byte(f.Name), f.Data)
	}
	return "sha256:" + hashOf(parts)
}

// digestRemote is Renderer.Digest of a remote chart.
func digestRemote(a *archive) string {
	return "sha256:" + hashOf([]string{"remote chart", a.repository, a.name, a.version, a.digest})
}
