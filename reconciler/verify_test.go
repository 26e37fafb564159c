package reconciler_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/internal/testenv/gitserver"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/sources"
)

// newSigner makes an OpenPGP key and returns it with its armored public key.
func newSigner(t *testing.T) (*openpgp.Entity, string) {
	t.Helper()
	e, err := openpgp.NewEntity("Fleet Maintainer", "", "fleet@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return e, b.String()
}

// pushSigned commits files with go-git, signed by key, and pushes; it returns the
// commit.
func (f *fixture) pushSigned(t *testing.T, key *openpgp.Entity, message string, files map[string]string) string {
	t.Helper()
	if err := f.work.WriteFiles(files); err != nil {
		t.Fatal(err)
	}
	repo, err := git.PlainOpen(f.work.Dir())
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	who := &object.Signature{Name: gitserver.AuthorName, Email: gitserver.AuthorEmail, When: time.Now()}
	h, err := wt.Commit(message, &git.CommitOptions{Author: who, Committer: who, SignKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.work.Push(t.Context()); err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// TestUnsignedCommitRefused runs fleet-example with commit signature verification
// on: a signed commit is applied everywhere; an unsigned head is refused by `run
// --once` and by the daemon, nothing changes in any region, and the daemon keeps
// the last verified revision.
func TestUnsignedCommitRefused(t *testing.T) {
	f := newFixture(t)
	key, public := newSigner(t)
	verifying, err := sources.NewGit(sources.GitOptions{
		URL:      f.git.URL(),
		Ref:      sources.Ref{Branch: "main"},
		CacheDir: t.TempDir(),
		Verify:   &sources.Verification{OpenPGPKeys: []string{public}},
		Logger:   f.logs.logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.git = verifying

	// fleet-example's own commit is not signed.
	if _, err := f.once(t); !errors.Is(err, sources.ErrUntrusted) {
		t.Fatalf("unsigned first commit: error %v, want ErrUntrusted", err)
	}
	if diff := cmp.Diff(map[string][]string{"eu-west-2": nil, "us-east-1": nil, "ap-northeast-2": nil}, units(f.inventories(t))); diff != "" {
		t.Errorf("inventories after an unsigned first commit (-want +got):\n%s", diff)
	}

	tenant := file(t, "tenants/logistics-eu.yaml")
	signed := f.pushSigned(t, key, "logistics-eu: signed", map[string]string{"tenants/logistics-eu.yaml": tenant + "\n"})
	report, err := f.once(t)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(every(exampleUnits, "create", nil), changes(report)); diff != "" {
		t.Errorf("signed commit: changes (-want +got):\n%s", diff)
	}
	before := f.inventories(t)

	// The daemon serves the signed revision, then sees an unsigned head.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	opts := f.options()
	passed := make(chan *reconciler.Report, 10)
	opts.Passed = func(r *reconciler.Report) { passed <- r }
	done := make(chan error, 1)
	go func() { done <- reconciler.Run(ctx, opts) }()
	select {
	case r := <-passed:
		if r.Revision != signed {
			t.Errorf("daemon's first pass is of %s, want the signed %s", r.Revision, signed)
		}
		if diff := cmp.Diff(every(exampleUnits, "unchanged", nil), changes(r)); diff != "" {
			t.Errorf("daemon's first pass (-want +got):\n%s", diff)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("no pass")
	}

	unsigned := f.push(t, "logistics-eu: unsigned", map[string]string{
		"tenants/logistics-eu.yaml": replace(t, tenant, "    - name: portal\n", "    - name: portal\n      values:\n        replicas: 5\n"),
	})
	refused := `"msg":"refused commit","url":"` + f.git.URL() + `","revision":"` + unsigned + `","reason":"the commit is not signed"`
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(f.logs.String(), refused) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not refuse %s", unsigned)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A few more polls: none of them brings a pass.
	select {
	case r := <-passed:
		t.Errorf("a pass of %s ran after the unsigned head", r.Revision)
	case <-time.After(time.Second):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	_, err = f.once(t)
	var untrusted *sources.UntrustedError
	if !errors.As(err, &untrusted) || untrusted.Commit != unsigned || untrusted.Reason != "the commit is not signed" {
		t.Errorf("run --once on the unsigned head: error %v, want commit %s refused as not signed", err, unsigned)
	}
	after := f.inventories(t)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("inventories (-want +got):\n%s", diff)
	}
	f.checkLive(t, after, unsigned)
	for _, region := range []string{"eu-west-2", "us-east-1"} {
		if got := *f.deployment(t, region, "logistics-eu", "portal").Spec.Replicas; got == 5 {
			t.Errorf("%s: logistics-eu/portal was scaled by the unsigned commit", region)
		}
	}
}
