package sources

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"meridian.dev/meridian/internal/testenv/gitserver"
)

// pgpKey is an OpenPGP key pair made for a test.
type pgpKey struct {
	entity *openpgp.Entity
	public string // armored public key
}

func (k pgpKey) fingerprint() string { return fmt.Sprintf("%X", k.entity.PrimaryKey.Fingerprint) }

func newPGPKey(t *testing.T, name, email string) pgpKey {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", email, &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
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
	return pgpKey{entity: e, public: b.String()}
}

// sshSigningKey is an SSH key pair in files, as ssh-keygen made it.
type sshSigningKey struct {
	file   string // private key
	public ssh.PublicKey
	line   string // "keytype base64"
}

func (k sshSigningKey) fingerprint() string { return ssh.FingerprintSHA256(k.public) }

// newSigningKey makes a key with ssh-keygen: typ is ed25519, ecdsa or rsa.
func newSigningKey(t *testing.T, typ string) sshSigningKey {
	t.Helper()
	file := filepath.Join(t.TempDir(), "id_"+typ)
	args := []string{"-q", "-t", typ, "-N", "", "-C", "test", "-f", file}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pubLine, err := os.ReadFile(file + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(pubLine))
	return sshSigningKey{file: file, public: pub, line: fields[0] + " " + fields[1]}
}

// commitPGP commits files in w with go-git, signed by k, and pushes.
func commitPGP(t *testing.T, w *gitserver.Workdir, k pgpKey, msg string, files map[string]string) string {
	t.Helper()
	if err := w.WriteFiles(files); err != nil {
		t.Fatal(err)
	}
	repo, err := git.PlainOpen(w.Dir())
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
	who := &object.Signature{Name: gitserver.AuthorName, Email: gitserver.AuthorEmail, When: testEpoch}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: who, Committer: who, SignKey: k.entity})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Push(t.Context()); err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// commitSSH commits files in w with the git command-line tool, signed by k
// through ssh-keygen, and pushes.
func commitSSH(t *testing.T, w *gitserver.Workdir, k sshSigningKey, msg string, files map[string]string) string {
	t.Helper()
	if err := w.WriteFiles(files); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, w, "add", "--all")
	gitCmd(t, w, "-c", "gpg.format=ssh", "-c", "user.signingKey="+k.file, "commit", "--quiet", "--gpg-sign", "--message", msg)
	if err := w.Push(t.Context()); err != nil {
		t.Fatal(err)
	}
	return gitCmd(t, w, "rev-parse", "HEAD")
}

// tamper rewrites the message of the head commit, keeping its signature,
// and force-pushes the result.
func tamper(t *testing.T, w *gitserver.Workdir) string {
	t.Helper()
	raw := gitCmd(t, w, "cat-file", "commit", "HEAD") + "\n"
	header, msg, ok := strings.Cut(raw, "\n\n")
	if !ok || !strings.Contains(header, "gpgsig ") {
		t.Fatalf("head commit is not signed:\n%s", raw)
	}
	file := filepath.Join(t.TempDir(), "commit")
	if err := os.WriteFile(file, []byte(header+"\n\nevil "+msg), 0o644); err != nil {
		t.Fatal(err)
	}
	h := gitCmd(t, w, "hash-object", "-t", "commit", "-w", file)
	gitCmd(t, w, "reset", "--quiet", "--hard", h)
	if err := w.ForcePush(t.Context()); err != nil {
		t.Fatal(err)
	}
	return h
}

func requireSSHKeygen(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not on PATH")
	}
}

// TestVerify makes signed, unsigned, untrusted and tampered commits for real
// and checks which are accepted, with the signer, and the exact reason of
// each refusal.
func TestVerify(t *testing.T) {
	t.Parallel()
	requireSSHKeygen(t)
	alice := newPGPKey(t, "Alice", "alice@example.com")
	mallory := newPGPKey(t, "Mallory", "mallory@example.com")
	bob := newSigningKey(t, "ed25519")
	carol := newSigningKey(t, "ecdsa")
	dave := newSigningKey(t, "rsa")
	eve := newSigningKey(t, "ed25519")
	frank := newSigningKey(t, "ed25519")
	grace := newSigningKey(t, "ed25519")
	trusted := &Verification{
		OpenPGPKeys: []string{alice.public},
		SSHAllowedSigners: "# who may sign the fleet\n" +
			"bob@example.com " + bob.line + "\n" +
			`carol@example.com,carol@corp.example namespaces="git,file" ` + carol.line + " carol's laptop\n" +
			`dave@example.com valid-after="20200101" ` + dave.line + "\n" +
			`frank@example.com namespaces="file" ` + frank.line + "\n" +
			`grace@example.com valid-before="20230101Z" ` + grace.line + "\n",
	}
	sshOnly := &Verification{SSHAllowedSigners: "bob@example.com " + bob.line}
	pgpOnly := &Verification{OpenPGPKeys: []string{alice.public}}

	files := map[string]string{"fleet.yaml": "kind: Fleet\n"}
	s := gitserver.New(t, gitserver.Options{})
	tests := []struct {
		name   string
		verify *Verification
		commit func(t *testing.T, w *gitserver.Workdir) string
		signer *Signer // when accepted
		reason string  // when refused; %s is the commit
	}{
		{"openpgp trusted", trusted, func(t *testing.T, w *gitserver.Workdir) string { return commitPGP(t, w, alice, "ok", files) },
			&Signer{Method: OpenPGP, Identity: "Alice <alice@example.com>", Key: alice.fingerprint()}, ""},
		{"ssh ed25519 trusted", trusted, func(t *testing.T, w *gitserver.Workdir) string { return commitSSH(t, w, bob, "ok", files) },
			&Signer{Method: SSH, Identity: "bob@example.com", Key: bob.fingerprint()}, ""},
		{"ssh ecdsa with options", trusted, func(t *testing.T, w *gitserver.Workdir) string { return commitSSH(t, w, carol, "ok", files) },
			&Signer{Method: SSH, Identity: "carol@example.com,carol@corp.example", Key: carol.fingerprint()}, ""},
		{"ssh rsa valid after", trusted, func(t *testing.T, w *gitserver.Workdir) string { return commitSSH(t, w, dave, "ok", files) },
			&Signer{Method: SSH, Identity: "dave@example.com", Key: dave.fingerprint()}, ""},
		{"unsigned", trusted, func(t *testing.T, w *gitserver.Workdir) string { return push(t, w, "unsigned", files) },
			nil, "the commit is not signed"},
		{"openpgp untrusted key", trusted, func(t *testing.T, w *gitserver.Workdir) string { return commitPGP(t, w, mallory, "sneaky", files) },
			nil, "it is signed with OpenPGP key " + mallory.fingerprint() + ", which is not trusted"},
		{"ssh untrusted key", trusted, func(t *testing.T, w *gitserver.Workdir) string { return commitSSH(t, w, eve, "sneaky", files) },
			nil, "it is signed with SSH key " + eve.fingerprint() + ", which is not trusted"},
		{"openpgp tampered", trusted, func(t *testing.T, w *gitserver.Workdir) string {
			commitPGP(t, w, alice, "ok", files)
			return tamper(t, w)
		}, nil, "its OpenPGP signature by key " + alice.fingerprint() + " does not verify: openpgp: invalid signature: EdDSA verification failure"},
		{"ssh tampered", trusted, func(t *testing.T, w *gitserver.Workdir) string {
			commitSSH(t, w, bob, "ok", files)
			return tamper(t, w)
		}, nil, "its SSH signature by key " + bob.fingerprint() + " does not verify: ssh: signature did not verify"},
		{"ssh rsa tampered", trusted, func(t *testing.T, w *gitserver.Workdir) string {
			commitSSH(t, w, dave, "ok", files)
			return tamper(t, w)
		}, nil, "its SSH signature by key " + dave.fingerprint() + " does not verify: crypto/rsa: verification error"},
		{"ssh namespace not allowed", trusted, func(t *testing.T, w *gitserver.Workdir) string { return commitSSH(t, w, frank, "ok", files) },
			nil, "it is signed with SSH key " + frank.fingerprint() + `, which is not trusted for this commit (allowed signers line 5 does not allow the "git" namespace; the commit date is 2024-01-01T00:00:00Z)`},
		{"ssh signer expired", trusted, func(t *testing.T, w *gitserver.Workdir) string { return commitSSH(t, w, grace, "ok", files) },
			nil, "it is signed with SSH key " + grace.fingerprint() + ", which is not trusted for this commit (allowed signers line 6 is valid only before 2023-01-01T00:00:00Z; the commit date is 2024-01-01T00:00:00Z)"},
		{"openpgp when only ssh is trusted", sshOnly, func(t *testing.T, w *gitserver.Workdir) string { return commitPGP(t, w, alice, "ok", files) },
			nil, "it is signed with OpenPGP key " + alice.fingerprint() + ", and no OpenPGP key is trusted"},
		{"ssh when only openpgp is trusted", pgpOnly, func(t *testing.T, w *gitserver.Workdir) string { return commitSSH(t, w, bob, "ok", files) },
			nil, "it is signed with SSH key " + bob.fingerprint() + ", and no SSH key is trusted"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			repo := fmt.Sprintf("case%d.git", i)
			if _, err := s.CreateRepo(repo); err != nil {
				t.Fatal(err)
			}
			w, err := s.Clone(t.Context(), repo)
			if err != nil {
				t.Fatal(err)
			}
			head := tt.commit(t, w)
			cache := cacheDir(t)
			g := newGit(t, GitOptions{URL: s.URL(repo), Ref: Ref{Branch: "main"}, Verify: tt.verify, CacheDir: cache})
			snap, err := g.Fetch(t.Context())
			if tt.signer != nil {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				if diff := cmp.Diff(tt.signer, snap.Commit.Signer); diff != "" {
					t.Errorf("signer (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil {
				t.Fatalf("Fetch accepted %s, want a refusal", snap.Revision)
			}
			want := fmt.Sprintf("%s: commit %s refused: %s; the last verified revision stays in use: sign the commit with a trusted key, or add the signer's public key to the trusted keys",
				s.URL(repo), head, tt.reason)
			if err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
			var untrusted *UntrustedError
			if !errors.As(err, &untrusted) || untrusted.Commit != head || !errors.Is(err, ErrUntrusted) || Transient(err) {
				t.Errorf("error %#v: want an *UntrustedError for %s that is ErrUntrusted and not transient", err, head)
			}
			if entries, err := os.ReadDir(filepath.Join(cache, "snapshots")); err != nil || len(entries) != 0 {
				t.Errorf("a refused commit left %d entries in snapshots/ (%v), want none", len(entries), err)
			}
		})
	}
}

// TestVerifyKeepsLastVerified refuses an unsigned head after a verified one:
// the verified snapshot stays current and on disk, the refusal is repeated
// without fetching again, and a signed commit after it is accepted.
func TestVerifyKeepsLastVerified(t *testing.T) {
	t.Parallel()
	alice := newPGPKey(t, "Alice", "alice@example.com")
	s, w := newRepo(t, gitserver.Options{})
	first := commitPGP(t, w, alice, "signed", map[string]string{"a": "1"})
	cache := cacheDir(t)
	g := newGit(t, GitOptions{URL: s.URL(repoName), Ref: Ref{Branch: "main"}, Verify: &Verification{OpenPGPKeys: []string{alice.public}}, CacheDir: cache})
	verified := mustFetch(t, g)
	if verified.Revision != first || verified.Commit.Signer == nil {
		t.Fatalf("first fetch: %s signed by %v, want %s signed by Alice", verified.Revision, verified.Commit.Signer, first)
	}

	unsigned := push(t, w, "unsigned", map[string]string{"a": "2"})
	_, err := g.Fetch(t.Context())
	if !errors.Is(err, ErrUntrusted) {
		t.Fatalf("Fetch of an unsigned head: %v, want ErrUntrusted", err)
	}
	if diff := cmp.Diff(verified, g.Last()); diff != "" {
		t.Errorf("Last() after a refusal (-verified +last):\n%s", diff)
	}
	if got := readTree(t, verified.Dir); got["a"] != "1" {
		t.Errorf("the verified snapshot changed: a = %q", got["a"])
	}
	if _, err := os.Stat(filepath.Join(cache, "snapshots", unsigned)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused commit was checked out (stat: %v)", err)
	}

	before := treeState(t, cache)
	n := len(s.Requests())
	_, again := g.Fetch(t.Context())
	if again == nil || again.Error() != err.Error() {
		t.Errorf("second fetch of the refused head: %v, want the same refusal %v", again, err)
	}
	if diff := cmp.Diff([]string{"GET git-upload-pack"}, requestsSince(s, n)); diff != "" {
		t.Errorf("requests of the repeated refusal (-want +got):\n%s", diff)
	}
	if after := treeState(t, cache); after != before {
		t.Errorf("the repeated refusal wrote to the cache:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	third := commitPGP(t, w, alice, "signed again", map[string]string{"a": "3"})
	got := mustFetch(t, g)
	if got.Revision != third || readTree(t, got.Dir)["a"] != "3" {
		t.Errorf("after a signed commit: %s with a=%q, want %s with a=3", got.Revision, readTree(t, got.Dir)["a"], third)
	}
	if got.Commit.Signer == nil || got.Commit.Signer.Identity != "Alice <alice@example.com>" {
		t.Errorf("signer = %+v, want Alice", got.Commit.Signer)
	}
}

// TestVerificationRefusesPrivateKey checks that a private OpenPGP key is not
// accepted as a trusted key.
func TestVerificationRefusesPrivateKey(t *testing.T) {
	t.Parallel()
	k := newPGPKey(t, "Alice", "alice@example.com")
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.entity.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	_, err = NewGit(GitOptions{URL: "https://git.example.com/fleet.git", Ref: Ref{Branch: "main"}, CacheDir: cacheDir(t),
		Verify: &Verification{OpenPGPKeys: []string{k.public, b.String()}}})
	want := "https://git.example.com/fleet.git: trusted OpenPGP key 2 is a private key; give its public key (gpg --armor --export) instead"
	if err == nil || err.Error() != want {
		t.Errorf("NewGit with a private key: %v, want %s", err, want)
	}
}
