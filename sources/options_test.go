package sources

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-cmp/cmp"
)

// TestNewGitRefuses checks every configuration NewGit refuses, with its
// exact message, and that no secret reaches a message.
func TestNewGitRefuses(t *testing.T) {
	t.Parallel()
	key, _ := newSSHKey(t)
	const https = "https://git.example.com/org/fleet.git"
	const sshURL = "ssh://git@git.example.com/org/fleet.git"
	main := Ref{Branch: "main"}
	knownHosts := []byte("git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
	tests := []struct {
		name string
		opts GitOptions
		want string
	}{
		{"no URL", GitOptions{Ref: main}, "git source: no repository URL; set an https://, ssh:// or user@host:path URL"},
		{"file URL", GitOptions{URL: "file:///srv/fleet.git", Ref: main}, `file:///srv/fleet.git: unsupported URL scheme "file"; use https://, ssh:// or user@host:path`},
		{"local path", GitOptions{URL: "/srv/fleet.git", Ref: main}, `/srv/fleet.git: unsupported URL scheme "file"; use https://, ssh:// or user@host:path`},
		{"git protocol", GitOptions{URL: "git://git.example.com/fleet.git", Ref: main}, `git://git.example.com/fleet.git: unsupported URL scheme "git"; use https://, ssh:// or user@host:path`},
		{"password in URL", GitOptions{URL: "https://fleet:hunter2-secret@git.example.com/org/fleet.git", Ref: main},
			https + ": the URL carries credentials; remove them from the URL and set the username, password or token in the auth options"},
		{"token as URL user", GitOptions{URL: "https://ghp_token123456@git.example.com/org/fleet.git", Ref: main},
			https + ": the URL carries credentials; remove them from the URL and set the username, password or token in the auth options"},
		{"query in URL", GitOptions{URL: https + "?private_token=abc123secret", Ref: main}, https + ": the URL has a query or fragment; remove it"},
		{"password in ssh URL", GitOptions{URL: "ssh://git:hunter2-secret@git.example.com/org/fleet.git", Ref: main},
			sshURL + ": the URL carries a password; SSH authenticates with a private key in the auth options"},
		{"no ref", GitOptions{URL: https}, https + ": set exactly one of branch, tag or semver range to follow"},
		{"two refs", GitOptions{URL: https, Ref: Ref{Branch: "main", Tag: "v1"}}, https + ": set exactly one of branch, tag or semver range to follow"},
		{"bad semver", GitOptions{URL: https, Ref: Ref{SemVer: ">= one"}},
			https + `: invalid semver range ">= one": improper constraint: ">= one"; write a range such as ">=1.2.0 <2.0.0"`},
		{"no cache", GitOptions{URL: https, Ref: main}, https + ": no cache directory; set one where repositories and snapshots are kept"},
		{"keep one", GitOptions{URL: https, Ref: main, KeepSnapshots: 1},
			https + ": keep snapshots is 1; it must be at least 2 (the current and the previous snapshot), or 0 for 3"},
		{"password without user", GitOptions{URL: https, Ref: main, Auth: Auth{Password: "hunter2-secret"}},
			https + `: a password is set without a username; set a username too (any, such as "git", for an access token)`},
		{"basic and bearer", GitOptions{URL: https, Ref: main, Auth: Auth{Username: "u", Password: "hunter2-secret", BearerToken: "tok-secret-1"}},
			https + ": both basic credentials and a bearer token are set; set one"},
		{"token over http", GitOptions{URL: "http://git.example.com/fleet.git", Ref: main, Auth: Auth{BearerToken: "tok-secret-1"}},
			"http://git.example.com/fleet.git: refusing to send credentials over plain http; use https"},
		{"ssh key for https", GitOptions{URL: https, Ref: main, Auth: Auth{SSHPrivateKey: key}},
			https + ": an SSH key or known_hosts is set for an https URL; use an ssh:// or user@host:path URL, or a token"},
		{"token for ssh", GitOptions{URL: sshURL, Ref: main, Auth: Auth{BearerToken: "tok-secret-1"}},
			sshURL + ": a username, password or token is set for an SSH URL; SSH authenticates with a private key (the user name goes in the URL)"},
		{"ssh without key", GitOptions{URL: sshURL, Ref: main, Auth: Auth{KnownHosts: knownHosts}},
			sshURL + ": no SSH private key; set one whose public half the server authorizes"},
		{"ssh without known_hosts", GitOptions{URL: sshURL, Ref: main, Auth: Auth{SSHPrivateKey: key}},
			sshURL + ": no known_hosts; set the server's host key (for example from ssh-keyscan, checked out of band), host keys are always verified"},
		{"ssh bad key", GitOptions{URL: sshURL, Ref: main, Auth: Auth{SSHPrivateKey: []byte("not a key"), KnownHosts: knownHosts}},
			sshURL + ": the SSH private key cannot be read (ssh: no key found); set a PEM or OpenSSH private key"},
		{"ssh bad known_hosts", GitOptions{URL: sshURL, Ref: main, Auth: Auth{SSHPrivateKey: key, KnownHosts: []byte("# ok\ngit.example.com ssh-ed25519 !!!\n")}},
			sshURL + `: known_hosts line 2: illegal base64 data at input byte 0; write "host keytype base64-key" as ssh-keyscan prints it`},
		{"verification without keys", GitOptions{URL: https, Ref: main, Verify: &Verification{}},
			https + ": signature verification is on but no key is trusted; add OpenPGP public keys or SSH allowed signers"},
		{"bad OpenPGP key", GitOptions{URL: https, Ref: main, Verify: &Verification{OpenPGPKeys: []string{"nope"}}},
			https + ": trusted OpenPGP key 1 cannot be read (openpgp: invalid argument: no armored data found); give an ASCII-armored public key (gpg --armor --export)"},
		{"bad allowed signer", GitOptions{URL: https, Ref: main, Verify: &Verification{SSHAllowedSigners: "alice@example.com cert-authority ssh-ed25519 AAAA"}},
			https + ": SSH allowed signers line 1: cert-authority is not supported; list the signers' public keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.opts.CacheDir == "" && tt.name != "no cache" {
				tt.opts.CacheDir = cacheDir(t)
			}
			g, err := NewGit(tt.opts)
			if err == nil {
				t.Fatalf("NewGit succeeded with URL %s, want an error", g.URL())
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tt.want)
			}
			for _, secret := range []string{"hunter2-secret", "tok-secret-1", "ghp_token123456", "abc123secret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}

// TestNewGitAccepts checks URLs and settings NewGit accepts and how it shows
// the URL.
func TestNewGitAccepts(t *testing.T) {
	t.Parallel()
	key, _ := newSSHKey(t)
	kh := []byte("git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
	tests := []struct {
		name    string
		opts    GitOptions
		wantURL string
	}{
		{"https token", GitOptions{URL: "https://git.example.com/org/fleet.git", Auth: Auth{BearerToken: "t"}}, "https://git.example.com/org/fleet.git"},
		{"https basic", GitOptions{URL: "https://git.example.com:8443/fleet", Auth: Auth{Username: "git", Password: "p"}}, "https://git.example.com:8443/fleet"},
		{"anonymous http", GitOptions{URL: "http://127.0.0.1:8080/fleet.git"}, "http://127.0.0.1:8080/fleet.git"},
		{"ssh URL", GitOptions{URL: "ssh://git@git.example.com:2222/org/fleet.git", Auth: Auth{SSHPrivateKey: key, KnownHosts: kh}}, "ssh://git@git.example.com:2222/org/fleet.git"},
		{"scp-like", GitOptions{URL: "git@git.example.com:org/fleet.git", Auth: Auth{SSHPrivateKey: key, KnownHosts: kh}}, "git@git.example.com:org/fleet.git"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.opts.Ref = Ref{Branch: "main"}
			tt.opts.CacheDir = cacheDir(t)
			g, err := NewGit(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if g.URL() != tt.wantURL {
				t.Errorf("URL() = %q, want %q", g.URL(), tt.wantURL)
			}
		})
	}
}

// TestNewGitRelativeCache checks that snapshot directories are absolute even
// for a relative cache directory.
func TestNewGitRelativeCache(t *testing.T) {
	t.Chdir(cacheDir(t))
	g, err := NewGit(GitOptions{URL: "https://git.example.com/fleet.git", Ref: Ref{Branch: "main"}, CacheDir: "cache"})
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(g.snapshotDir) {
		t.Errorf("snapshot directory %q is not absolute", g.snapshotDir)
	}
}

// TestRedactURL checks what messages show of a URL.
func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://git.example.com/fleet.git", "https://git.example.com/fleet.git"},
		{"https://user:pass@git.example.com/fleet.git", "https://git.example.com/fleet.git"},
		{"https://token@git.example.com/fleet.git?x=secret#frag", "https://git.example.com/fleet.git"},
		{"ssh://git:pass@git.example.com:22/fleet.git", "ssh://git@git.example.com:22/fleet.git"},
		{"git@git.example.com:org/fleet.git", "git@git.example.com:org/fleet.git"},
		{"git:pass@git.example.com:org/fleet.git", "git.example.com:org/fleet.git"},
		{"https://user:p%zz@git.example.com/fleet.git", "https://git.example.com/..."},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestHighestTag checks the choice of a tag for a semver range.
func TestHighestTag(t *testing.T) {
	t.Parallel()
	refs := func(names ...string) map[string]plumbing.Hash {
		m := map[string]plumbing.Hash{"refs/heads/main": {}}
		for _, n := range names {
			m["refs/tags/"+n] = plumbing.Hash{}
			m["refs/tags/"+n+"^{}"] = plumbing.Hash{}
		}
		return m
	}
	tests := []struct {
		name       string
		constraint string
		refs       map[string]plumbing.Hash
		want       string
	}{
		{"highest wins", ">=1.0.0", refs("v1.0.0", "v1.10.0", "v1.9.0"), "refs/tags/v1.10.0"},
		{"upper bound", ">=1.0.0 <1.5.0", refs("v1.0.0", "v1.4.9", "v1.5.0"), "refs/tags/v1.4.9"},
		{"without v prefix", "^2", refs("2.1.0", "v1.9.0"), "refs/tags/2.1.0"},
		{"pre-releases skipped", ">=1.0.0", refs("v1.0.0", "v1.1.0-rc.1"), "refs/tags/v1.0.0"},
		{"pre-release asked for", ">=1.1.0-0", refs("v1.0.0", "v1.1.0-rc.1"), "refs/tags/v1.1.0-rc.1"},
		{"non-strict names ignored", ">=0.0.0", refs("2024", "1.2", "release-1", "v0.1.0"), "refs/tags/v0.1.0"},
		{"same version: greatest name", "=1.0.0", refs("1.0.0", "v1.0.0", "v1.0.0+build.1"), "refs/tags/v1.0.0+build.1"},
		{"none", ">=3.0.0", refs("v1.0.0"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := semver.NewConstraint(tt.constraint)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := highestTag(c, tt.refs)
			if ok != (tt.want != "") || got != tt.want {
				t.Errorf("highestTag(%q) = %q, %v; want %q", tt.constraint, got, ok, tt.want)
			}
		})
	}
}

// TestSplitMessage checks the subject and body of commit messages.
func TestSplitMessage(t *testing.T) {
	t.Parallel()
	tests := []struct{ msg, subject, body string }{
		{"one line\n", "one line", ""},
		{"subject\n\nbody line 1\nbody line 2\n\n", "subject", "body line 1\nbody line 2"},
		{"", "", ""},
	}
	for _, tt := range tests {
		s, b := splitMessage(tt.msg)
		if diff := cmp.Diff([]string{tt.subject, tt.body}, []string{s, b}); diff != "" {
			t.Errorf("splitMessage(%q) (-want +got):\n%s", tt.msg, diff)
		}
	}
}
