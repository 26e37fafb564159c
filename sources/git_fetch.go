package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage"
)

// headRef is the reference in the cached repository that points at the
// commit of the last snapshot; its commit is what the next fetch tells the
// server it already has.
const headRef = plumbing.ReferenceName("refs/meridian/head")

// Fetch makes the source's reference current on disk and returns its
// snapshot.
//
// It first lists the remote references (one small request, like
// git ls-remote) and resolves the reference. When the resolved commit is the
// one the previous successful Fetch returned and its directory is in place,
// Fetch stops there and returns a copy of that snapshot with Unchanged set: no
// objects are fetched and nothing is written. Likewise a commit refused by
// signature verification is refused again without being fetched.
//
// Otherwise it fetches the commit at depth 1, telling the server which commit
// it already has so that only the objects that changed are sent, verifies the
// commit's signature when verification is on, checks the tree out into
// <cache>/snapshots/<commit>/ (written under a temporary name, made
// read-only, then renamed into place, so a snapshot directory is always
// complete), and removes snapshots beyond the retention limit.
//
// On error nothing changes: the previous snapshot stays current and on disk.
// Errors are *Error or *UntrustedError values wrapping one of the sentinel
// kinds (see Transient), or a context error.
func (g *Git) Fetch(ctx context.Context) (*Snapshot, error) {
	g.fetchMu.Lock()
	defer g.fetchMu.Unlock()

	sess, ar, err := g.listRefs(ctx)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	res, err := g.resolve(ar)
	if err != nil {
		return nil, err
	}

	if s := g.unchanged(res.commit); s != nil {
		return s, nil
	}
	if r := g.refusal(res.commit); r != nil {
		return nil, r
	}

	st, err := g.openRepo()
	if err != nil {
		return nil, g.localError("open the cached repository", err)
	}
	if res.commit.IsZero() { // a tag the server did not peel: peel it locally if we can
		if c, err := peel(st, res.want); err == nil {
			res.commit = c
			if s := g.unchanged(res.commit); s != nil {
				return s, nil
			}
			if r := g.refusal(res.commit); r != nil {
				return nil, r
			}
		}
	}

	fetched := false
	if res.commit.IsZero() || !hasObject(st, res.commit) {
		if err := g.fetchPack(ctx, sess, ar, st, res.want, true); err != nil {
			return nil, err
		}
		fetched = true
	}
	snap, err := g.materialize(st, res)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		// Objects are missing locally (an interrupted earlier fetch, or a
		// server that sent less than asked): fetch the whole commit again,
		// without claiming to have anything.
		g.log.Warn("objects missing from the cached repository; fetching the whole revision", "url", g.url, "err", err)
		snap, err = g.refetch(ctx, st, res)
		fetched = true
	}
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, g.localError("read the fetched objects", err)
	}
	if err != nil {
		return nil, err
	}

	g.mu.Lock()
	g.current = snap
	g.refused = nil
	g.recent = append([]string{snap.Revision}, deleteString(g.recent, snap.Revision)...)
	g.mu.Unlock()
	g.log.Info("fetched revision", "url", g.url, "ref", snap.Ref, "revision", snap.Revision, "subject", snap.Commit.Subject, "transferred", fetched)
	g.retain()
	if fetched {
		g.maybeCompact(st, plumbing.NewHash(snap.Revision))
	}
	s := *snap
	return &s, nil
}

// refetch fetches the whole commit in a new session, claiming nothing, and
// materializes it.
func (g *Git) refetch(ctx context.Context, st storage.Storer, res resolved) (*Snapshot, error) {
	sess, ar, err := g.listRefs(ctx)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	if err := g.fetchPack(ctx, sess, ar, st, res.want, false); err != nil {
		return nil, err
	}
	return g.materialize(st, res)
}

// listRefs opens an upload-pack session and reads the advertised references.
func (g *Git) listRefs(ctx context.Context) (transport.UploadPackSession, *packp.AdvRefs, error) {
	sess, err := g.client.NewUploadPackSession(g.ep, g.auth)
	if err != nil {
		return nil, nil, g.classify("connect", err)
	}
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		sess.Close()
		return nil, nil, g.classify("list references", err)
	}
	return sess, ar, nil
}

// unchanged returns a copy of the current snapshot marked Unchanged when
// commit is its revision and its directory is still in place.
func (g *Git) unchanged(commit plumbing.Hash) *Snapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.current == nil || commit.IsZero() || g.current.Revision != commit.String() {
		return nil
	}
	if fi, err := os.Lstat(g.current.Dir); err != nil || !fi.IsDir() {
		return nil
	}
	s := *g.current
	s.Unchanged = true
	return &s
}

// refusal returns the refusal of commit when it was refused before.
func (g *Git) refusal(commit plumbing.Hash) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refused == nil || commit.IsZero() || g.refused.Commit != commit.String() {
		return nil
	}
	r := *g.refused
	return &r
}

// materialize verifies the commit and checks it out, returning its snapshot.
// On success the cached repository's head reference points at the commit.
func (g *Git) materialize(st storage.Storer, res resolved) (*Snapshot, error) {
	commitHash := res.commit
	if commitHash.IsZero() {
		c, err := peel(st, res.want)
		if err != nil {
			return nil, err
		}
		commitHash = c
	}
	commit, err := object.GetCommit(st, commitHash)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, &Error{URL: g.url, Kind: ErrInvalidRevision, Msg: fmt.Sprintf("%s resolves to %s, which is not a commit", res.name, commitHash), Hint: "point the reference at a commit"}
	}

	var signer *Signer
	if g.verifier != nil {
		var reason string
		signer, reason, err = g.verifier.verify(commit)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil, err
		}
		if reason != "" {
			r := &UntrustedError{URL: g.url, Commit: commitHash.String(), Reason: reason}
			g.mu.Lock()
			g.refused = r
			g.mu.Unlock()
			g.log.Warn("refused commit", "url", g.url, "revision", r.Commit, "reason", reason)
			rc := *r
			return nil, &rc
		}
	}

	dir, err := g.checkout(st, commit)
	if err != nil {
		return nil, err
	}
	if ref, err := st.Reference(headRef); err != nil || ref.Hash() != commitHash {
		if err := st.SetReference(plumbing.NewHashReference(headRef, commitHash)); err != nil {
			return nil, g.localError("record the fetched commit", err)
		}
	}
	snap := &Snapshot{
		Dir:      dir,
		Revision: commitHash.String(),
		Ref:      res.name,
		Commit:   commitOf(commit, signer),
	}
	if g.last != nil && g.last.dir == dir {
		snap.Files = g.last.ids()
	}
	return snap, nil
}

// commitOf is the metadata of commit, signed by signer (nil when not verified).
func commitOf(commit *object.Commit, signer *Signer) Commit {
	subject, body := splitMessage(commit.Message)
	return Commit{
		Author:    Person{Name: commit.Author.Name, Email: commit.Author.Email, When: commit.Author.When},
		Committer: Person{Name: commit.Committer.Name, Email: commit.Committer.Email, When: commit.Committer.When},
		Subject:   subject,
		Body:      body,
		Signer:    signer,
	}
}

// fetchPack fetches want at depth 1 into st. With incremental set and a
// previous head in st, the server is told that commit is present (and
// shallow), and asked for a thin pack, so it sends only the objects that
// differ; such a pack is resolved against st and stored as loose objects.
// Otherwise the whole commit is fetched as one pack.
func (g *Git) fetchPack(ctx context.Context, sess transport.UploadPackSession, ar *packp.AdvRefs, st storage.Storer, want plumbing.Hash, incremental bool) error {
	req := packp.NewUploadPackRequestFromCapabilities(ar.Capabilities)
	req.Wants = []plumbing.Hash{want}
	req.Depth = packp.DepthCommits(1)
	if err := req.Capabilities.Set(capability.Shallow); err != nil {
		return g.localError("prepare the fetch", err)
	}
	if ar.Capabilities.Supports(capability.NoProgress) {
		_ = req.Capabilities.Set(capability.NoProgress)
	}
	shallows, err := st.Shallow()
	if err != nil {
		return g.localError("read the shallow list", err)
	}
	var head, have plumbing.Hash
	if ref, err := st.Reference(headRef); err == nil {
		head = ref.Hash()
	}
	if incremental && !head.IsZero() && hasObject(st, head) {
		have = head
	}
	if !have.IsZero() {
		req.Shallows = shallows
		req.Haves = []plumbing.Hash{have}
		// Without thin-pack, a server answering a deepen request sends every
		// object of the new commit, even those the client has.
		_ = req.Capabilities.Set(capability.ThinPack)
	}

	resp, err := sess.UploadPack(ctx, req)
	if errors.Is(err, transport.ErrEmptyUploadPackRequest) {
		return nil
	}
	if err != nil {
		return g.classify("fetch", err)
	}
	defer resp.Close()

	var r io.Reader = resp
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		r = sideband.NewDemuxer(sideband.Sideband64k, resp)
	case req.Capabilities.Supports(capability.Sideband):
		r = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	if !have.IsZero() {
		p, err := packfile.NewParserWithStorage(packfile.NewScanner(r), st)
		if err == nil {
			_, err = p.Parse()
		}
		if err != nil {
			return g.classify("fetch", err)
		}
	} else {
		pw, ok := st.(storer.PackfileWriter)
		if !ok {
			return g.localError("store the fetched objects", errors.New("storage cannot write packs"))
		}
		if err := packfile.WritePackfileToObjectStorage(pw, r); err != nil && !errors.Is(err, packfile.ErrEmptyPackfile) {
			return g.classify("fetch", err)
		}
	}

	// Every commit fetched at depth 1 lacks its parents. Keep the new
	// boundary, and the previous head's, which is still what the next fetch
	// claims to have if this commit is refused. Older entries name commits
	// nothing refers to any more.
	next := append([]plumbing.Hash(nil), resp.Shallows...)
	if containsHash(shallows, head) && !containsHash(next, head) {
		next = append(next, head)
	}
	if err := st.SetShallow(next); err != nil {
		return g.localError("write the shallow list", err)
	}
	return nil
}

// openRepo opens the cached bare repository, creating it when missing and
// recreating it when it cannot be opened.
func (g *Git) openRepo() (storage.Storer, error) {
	repo, err := git.PlainOpen(g.repoDir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainInit(g.repoDir, true)
	} else if err != nil {
		g.log.Warn("the cached repository is damaged; starting a new one", "url", g.url, "err", err)
		if rmErr := removeTree(g.repoDir); rmErr != nil {
			return nil, rmErr
		}
		repo, err = git.PlainInit(g.repoDir, true)
	}
	if err != nil {
		return nil, err
	}
	return repo.Storer, nil
}

// localError reports a failure of the local disk or cache as transient.
func (g *Git) localError(what string, err error) error {
	return &Error{URL: g.url, Kind: ErrTransient, Msg: what + " in the cache directory", Err: g.secrets.wrap(err), Hint: "check the disk; retrying"}
}

// peel follows annotated tags from h to the commit they name.
func peel(st storer.EncodedObjectStorer, h plumbing.Hash) (plumbing.Hash, error) {
	for range 10 {
		o, err := st.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if o.Type() != plumbing.TagObject {
			return h, nil
		}
		t, err := object.DecodeTag(st, o)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		h = t.Target
	}
	return plumbing.ZeroHash, fmt.Errorf("tag chain at %s is too long", h)
}

func hasObject(st storer.EncodedObjectStorer, h plumbing.Hash) bool {
	return st.HasEncodedObject(h) == nil
}

func containsHash(hs []plumbing.Hash, h plumbing.Hash) bool {
	for _, x := range hs {
		if x == h {
			return true
		}
	}
	return false
}

func deleteString(ss []string, s string) []string {
	out := ss[:0:0]
	for _, x := range ss {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// splitMessage splits a commit message into its first line and the rest.
func splitMessage(msg string) (subject, body string) {
	subject, body, _ = strings.Cut(msg, "\n")
	return strings.TrimSpace(subject), strings.TrimSpace(body)
}
