package render

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/fleet"
)

// cacheKey is every input of a placement's render, except the files a kustomization
// reads (which are only known after building; the cache entry records and checks
// them). Its JSON encoding is canonical: struct fields in order, map keys sorted.
type cacheKey struct {
	Meridian    string                 `json:"meridian"`
	Placement   string                 `json:"placement"`
	AppDir      string                 `json:"appDir"`
	Helm        *fleet.HelmSource      `json:"helm,omitempty"`
	Chart       string                 `json:"chart,omitempty"` // content digest of the chart
	Kustomize   *fleet.KustomizeSource `json:"kustomize,omitempty"`
	Allow       []string               `json:"allowClusterScoped,omitempty"`
	KubeVersion string                 `json:"kubeVersion"`
	Values      fleet.Values           `json:"values"`
	Secrets     string                 `json:"secrets,omitempty"` // digest of the ciphertext, never the values
}

func (k cacheKey) digest() (string, error) {
	data, err := json.Marshal(k)
	if err != nil {
		return "", err
	}
	return digestBytes(data), nil
}

func digestBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// unitDigest is a unit's digest: its cache key's, and for a kustomization the
// digests of the files the build read (inputs), so that a change to a base's file
// changes the digest and plans the unit as an update.
func unitDigest(key string, inputs map[string]string) string {
	if len(inputs) == 0 {
		return key
	}
	data, _ := json.Marshal(struct { // a string and a map of strings always encode; keys sorted
		Key    string            `json:"key"`
		Inputs map[string]string `json:"inputs"`
	}{key, inputs})
	return digestBytes(data)
}

// digestObjects identifies a list of objects by content.
func digestObjects(objects []*unstructured.Unstructured) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, o := range objects {
		_ = enc.Encode(o.Object) // maps of JSON values always encode
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// cache holds rendered units by digest, least recently used first out. Entries
// are never modified; readers copy them. Equal subtrees of its objects are one
// value (interned as they enter), whichever entries hold them.
type cache struct {
	mu      sync.Mutex
	max     int
	entries map[string]*list.Element
	lru     *list.List // of *cacheEntry, most recent at the front
	// interned holds the values of the entries' objects, for new entries to
	// share, and of at most max/4 evicted or replaced entries: it is built again
	// from the live entries when evicted exceeds that, so it keeps no more alive.
	interned *interner
	evicted  int
}

type cacheEntry struct {
	digest  string
	objects []*unstructured.Unstructured
	inputs  map[string]string // file → digest, for kustomizations
	unit    string            // the units' digest: unitDigest(digest, inputs)
}

func newCache(max int) *cache {
	return &cache{max: max, entries: map[string]*list.Element{}, lru: list.New(), interned: newInterner()}
}

// get returns the objects rendered for digest, and the digest of their units, if
// the files they were built from still have the digests they had.
func (c *cache) get(digest string, files *fileHashes) ([]*unstructured.Unstructured, string, bool) {
	c.mu.Lock()
	el, ok := c.entries[digest]
	if ok {
		c.lru.MoveToFront(el)
	}
	c.mu.Unlock()
	if !ok {
		return nil, "", false
	}
	e := el.Value.(*cacheEntry)
	for file, want := range e.inputs {
		if got, err := files.file(file); err != nil || got != want {
			return nil, "", false
		}
	}
	return e.objects, e.unit, true
}

// put keeps the objects rendered for digest from files of the given digests
// (inputs), with the digest of their units, and returns it. It interns the
// objects, which must not be shared yet and are not to be written afterwards.
func (c *cache) put(digest, unit string, objects []*unstructured.Unstructured, inputs map[string]string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range objects {
		o.Object = c.interned.intern(o.Object).(map[string]any)
	}
	if el, ok := c.entries[digest]; ok { // built again from files that changed
		c.lru.Remove(el)
		c.evicted++
	}
	c.entries[digest] = c.lru.PushFront(&cacheEntry{digest: digest, objects: objects, inputs: inputs, unit: unit})
	for c.lru.Len() > c.max {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).digest)
		c.evicted++
	}
	if c.evicted > c.max/4 {
		c.interned, c.evicted = newInterner(), 0
		for el := c.lru.Front(); el != nil; el = el.Next() {
			for _, o := range el.Value.(*cacheEntry).objects {
				c.interned.register(o.Object)
			}
		}
	}
	return unit
}

// fileHashes memoizes the digests of a snapshot's files; the snapshot is immutable.
type fileHashes struct {
	dir string

	mu     sync.Mutex
	root   *os.Root
	hashes map[string]string
}

func newFileHashes(dir string) *fileHashes {
	return &fileHashes{dir: dir, hashes: map[string]string{}}
}

// linkPrefix marks a symlink among a cache entry's inputs: its digest is its target's
// name, not the content behind it.
const linkPrefix = "symlink:"

// file returns the digest of a file of the snapshot, reading it through an os.Root;
// for a name with linkPrefix, the digest of the symlink's target path.
func (h *fileHashes) file(name string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d, ok := h.hashes[name]; ok {
		return d, nil
	}
	if h.root == nil {
		root, err := os.OpenRoot(h.dir)
		if err != nil {
			return "", err
		}
		h.root = root
	}
	var data []byte
	var err error
	if link, ok := strings.CutPrefix(name, linkPrefix); ok {
		var target string
		target, err = h.root.Readlink(link)
		data = []byte(target)
	} else {
		data, err = h.root.ReadFile(name)
	}
	if err != nil {
		return "", err
	}
	d := digestBytes(data)
	h.hashes[name] = d
	return d, nil
}

func (h *fileHashes) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.root != nil {
		h.root.Close()
		h.root = nil
	}
}
