package gitserver_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"meridian.dev/meridian/internal/testenv/gitserver"
)

// git runs the git command-line tool outside the package under test, so the
// tests check the server with an independent client.
func git(t *testing.T, env []string, dir string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(t.Context(), "git", args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = &out
	cmd.Stderr = &errb
	err = cmd.Run()
	return strings.TrimSpace(out.String()), strings.TrimSpace(errb.String()), err
}

// mustGit is git that fails the test when git fails.
func mustGit(t *testing.T, env []string, dir string, args ...string) string {
	t.Helper()
	out, stderr, err := git(t, env, dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCloneFetch clones over HTTP with the git command-line tool, then fetches
// a second pushed commit, for every transport and authentication setup.
func TestCloneFetch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts gitserver.Options
	}{
		{"plain", gitserver.Options{}},
		{"basic", gitserver.Options{Username: "fleet", Password: "s3cret"}},
		{"bearer", gitserver.Options{BearerToken: "tok-123"}},
		{"tls", gitserver.Options{TLS: true}},
		{"tls_basic_and_bearer", gitserver.Options{TLS: true, Username: "fleet", Password: "s3cret", BearerToken: "tok-123"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := gitserver.New(t, tt.opts)
			repoURL, err := s.CreateRepo("org/fleet.git")
			if err != nil {
				t.Fatal(err)
			}
			if want := s.BaseURL() + "/org/fleet.git"; repoURL != want {
				t.Errorf("CreateRepo URL = %q, want %q", repoURL, want)
			}
			wantScheme := "http://"
			if tt.opts.TLS {
				wantScheme = "https://"
			}
			if !strings.HasPrefix(repoURL, wantScheme+"127.0.0.1:") {
				t.Errorf("CreateRepo URL = %q, want %s127.0.0.1:<port>", repoURL, wantScheme)
			}

			w, err := s.Clone(ctx, "org/fleet.git")
			if err != nil {
				t.Fatal(err)
			}
			first, err := w.CommitFiles(ctx, "first", map[string]string{
				"clusters/prod/app.yaml": "replicas: 1\n",
				"README.md":              "fleet\n",
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Push(ctx); err != nil {
				t.Fatal(err)
			}

			env := s.GitEnv()
			clone := filepath.Join(t.TempDir(), "clone")
			mustGit(t, env, "", "clone", "--quiet", repoURL, clone)
			if got := mustGit(t, env, clone, "rev-parse", "HEAD"); got != first {
				t.Errorf("cloned HEAD = %s, want %s", got, first)
			}
			if got := mustGit(t, env, clone, "symbolic-ref", "HEAD"); got != "refs/heads/main" {
				t.Errorf("cloned HEAD ref = %s, want refs/heads/main", got)
			}
			if got := readFile(t, filepath.Join(clone, "clusters/prod/app.yaml")); got != "replicas: 1\n" {
				t.Errorf("cloned app.yaml = %q, want %q", got, "replicas: 1\n")
			}

			second, err := w.CommitFiles(ctx, "scale up", map[string]string{"clusters/prod/app.yaml": "replicas: 3\n"})
			if err != nil {
				t.Fatal(err)
			}
			if second == first {
				t.Fatalf("second commit has the first commit's hash %s", first)
			}
			if err := w.Push(ctx); err != nil {
				t.Fatal(err)
			}
			mustGit(t, env, clone, "fetch", "--quiet", "origin")
			if got := mustGit(t, env, clone, "rev-parse", "origin/main"); got != second {
				t.Errorf("fetched origin/main = %s, want %s", got, second)
			}
			if got := mustGit(t, env, clone, "rev-parse", "origin/main~1"); got != first {
				t.Errorf("fetched origin/main~1 = %s, want %s", got, first)
			}
			if got, err := s.RevParse(ctx, "org/fleet.git", "refs/heads/main"); err != nil || got != second {
				t.Errorf("server main = %s, %v; want %s", got, err, second)
			}
		})
	}
}

// TestPushFromIndependentClone pushes with the git command-line tool, not a
// Workdir, and checks the server took the commit.
func TestPushFromIndependentClone(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t, gitserver.Options{Username: "u", Password: "p"})
	repoURL, err := s.CreateRepo("fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	env := append(s.GitEnv(), "GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@b", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@b")
	clone := filepath.Join(t.TempDir(), "clone")
	mustGit(t, env, "", "clone", "--quiet", repoURL, clone)
	if err := os.WriteFile(filepath.Join(clone, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustGit(t, env, clone, "add", "f")
	mustGit(t, env, clone, "commit", "--quiet", "-m", "c")
	head := mustGit(t, env, clone, "rev-parse", "HEAD")
	mustGit(t, env, clone, "push", "--quiet", "origin", "HEAD:refs/heads/main")
	if got, err := s.RevParse(t.Context(), "fleet.git", "main"); err != nil || got != head {
		t.Errorf("server main = %s, %v; want %s", got, err, head)
	}
}

// TestAuthHTTP checks the server's answers to raw HTTP requests with and
// without credentials, for both services.
func TestAuthHTTP(t *testing.T) {
	t.Parallel()
	basicAndBearer := gitserver.New(t, gitserver.Options{Username: "fleet", Password: "s3cret", BearerToken: "tok-123"})
	basicOnly := gitserver.New(t, gitserver.Options{Username: "fleet", Password: "s3cret"})
	bearerOnly := gitserver.New(t, gitserver.Options{BearerToken: "tok-123"})
	open := gitserver.New(t, gitserver.Options{})
	for _, s := range []*gitserver.Server{basicAndBearer, basicOnly, bearerOnly, open} {
		if _, err := s.CreateRepo("fleet.git"); err != nil {
			t.Fatal(err)
		}
	}

	type auth func(*http.Request)
	basic := func(u, p string) auth { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	bearer := func(tok string) auth {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	tests := []struct {
		name       string
		server     *gitserver.Server
		auth       auth
		wantStatus int
		wantChall  []string // WWW-Authenticate values on 401
	}{
		{"both/none", basicAndBearer, nil, 401, []string{`Basic realm="meridian-gitserver"`, `Bearer realm="meridian-gitserver"`}},
		{"both/basic", basicAndBearer, basic("fleet", "s3cret"), 200, nil},
		{"both/bearer", basicAndBearer, bearer("tok-123"), 200, nil},
		{"both/wrong password", basicAndBearer, basic("fleet", "nope"), 401, []string{`Basic realm="meridian-gitserver"`, `Bearer realm="meridian-gitserver"`}},
		{"both/wrong user", basicAndBearer, basic("other", "s3cret"), 401, []string{`Basic realm="meridian-gitserver"`, `Bearer realm="meridian-gitserver"`}},
		{"both/wrong token", basicAndBearer, bearer("tok-1234"), 401, []string{`Basic realm="meridian-gitserver"`, `Bearer realm="meridian-gitserver"`}},
		{"basic/none", basicOnly, nil, 401, []string{`Basic realm="meridian-gitserver"`}},
		{"basic/token refused", basicOnly, bearer("tok-123"), 401, []string{`Basic realm="meridian-gitserver"`}},
		{"basic/basic", basicOnly, basic("fleet", "s3cret"), 200, nil},
		{"bearer/none", bearerOnly, nil, 401, []string{`Bearer realm="meridian-gitserver"`}},
		{"bearer/basic refused", bearerOnly, basic("fleet", "s3cret"), 401, []string{`Bearer realm="meridian-gitserver"`}},
		{"bearer/bearer", bearerOnly, bearer("tok-123"), 200, nil},
		{"open/none", open, nil, 200, nil},
	}
	for _, tt := range tests {
		for _, service := range []string{"git-upload-pack", "git-receive-pack"} {
			t.Run(tt.name+"/"+service, func(t *testing.T) {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, tt.server.URL("fleet.git")+"/info/refs?service="+service, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tt.auth != nil {
					tt.auth(req)
				}
				resp, err := tt.server.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.wantStatus {
					t.Fatalf("status = %d, want %d; body %q", resp.StatusCode, tt.wantStatus, body)
				}
				if got := resp.Header.Values("WWW-Authenticate"); !slices.Equal(got, tt.wantChall) {
					t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantChall)
				}
				if tt.wantStatus == 200 {
					if got, want := resp.Header.Get("Content-Type"), "application/x-"+service+"-advertisement"; got != want {
						t.Errorf("Content-Type = %q, want %q", got, want)
					}
				}
			})
		}
	}
}

// TestAuthGitCLI checks that the git command-line tool is refused without
// credentials and accepted with them, including after a 401 challenge.
func TestAuthGitCLI(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t, gitserver.Options{Username: "fleet", Password: "s3cret", BearerToken: "tok-123"})
	repoURL, err := s.CreateRepo("fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Clone(t.Context(), "fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	head, err := w.CommitFiles(t.Context(), "c", map[string]string{"a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Push(t.Context()); err != nil {
		t.Fatal(err)
	}

	withUser := func(user *url.Userinfo) string {
		u, err := url.Parse(repoURL)
		if err != nil {
			t.Fatal(err)
		}
		u.User = user
		return u.String()
	}
	noCreds := gitserver.IsolatedEnv(t.TempDir())
	tests := []struct {
		name       string
		env        []string
		url        string
		wantErr    bool
		wantStderr string
	}{
		{"no credentials", noCreds, repoURL, true, "terminal prompts disabled"},
		{"user and password in URL", noCreds, withUser(url.UserPassword("fleet", "s3cret")), false, ""},
		{"wrong password in URL", noCreds, withUser(url.UserPassword("fleet", "wrong")), true, "Authentication failed"},
		{"bearer header", append(slices.Clip(noCreds), "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader", "GIT_CONFIG_VALUE_0=Authorization: Bearer tok-123"), repoURL, false, ""},
		{"server GitEnv", s.GitEnv(), repoURL, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, stderr, err := git(t, tt.env, "", "ls-remote", tt.url, "refs/heads/main")
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ls-remote succeeded, want failure; output %q", out)
				}
				if !strings.Contains(stderr, tt.wantStderr) {
					t.Errorf("ls-remote stderr = %q, want it to contain %q", stderr, tt.wantStderr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ls-remote: %v: %s", err, stderr)
			}
			if want := head + "\trefs/heads/main"; out != want {
				t.Errorf("ls-remote = %q, want %q", out, want)
			}
		})
	}

	// A push without credentials is refused and leaves the server unchanged.
	clone := filepath.Join(t.TempDir(), "clone")
	mustGit(t, s.GitEnv(), "", "clone", "--quiet", repoURL, clone)
	env := append(slices.Clip(noCreds), "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@b", "GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@b")
	mustGit(t, env, clone, "commit", "--quiet", "--allow-empty", "-m", "sneaky")
	if _, stderr, err := git(t, env, clone, "push", "origin", "HEAD:refs/heads/main"); err == nil {
		t.Errorf("push without credentials succeeded")
	} else if !strings.Contains(stderr, "terminal prompts disabled") {
		t.Errorf("push stderr = %q, want a refused authentication", stderr)
	}
	if got, err := s.RevParse(t.Context(), "fleet.git", "main"); err != nil || got != head {
		t.Errorf("server main = %s, %v; want unchanged %s", got, err, head)
	}
}

// TestTLS checks that the server's certificate is trusted exactly when the
// client is given its certificate authority.
func TestTLS(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t, gitserver.Options{TLS: true})
	repoURL, err := s.CreateRepo("fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(s.CAPEM(), []byte("-----BEGIN CERTIFICATE-----")) {
		t.Fatalf("CAPEM = %q, want a PEM certificate", s.CAPEM())
	}
	if got := readFile(t, s.CAFile()); got != string(s.CAPEM()) {
		t.Errorf("CAFile holds %q, want CAPEM", got)
	}

	home := t.TempDir()
	t.Run("git without CA", func(t *testing.T) {
		_, stderr, err := git(t, gitserver.IsolatedEnv(home), "", "ls-remote", repoURL)
		if err == nil {
			t.Fatal("ls-remote without the CA succeeded")
		}
		if !strings.Contains(strings.ToLower(stderr), "certificate") {
			t.Errorf("ls-remote stderr = %q, want a certificate error", stderr)
		}
	})
	t.Run("git with GIT_SSL_CAINFO", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "c")
		mustGit(t, append(gitserver.IsolatedEnv(home), "GIT_SSL_CAINFO="+s.CAFile()), "", "clone", "--quiet", repoURL, dir)
	})
	t.Run("git with http.sslCAInfo", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "c")
		mustGit(t, gitserver.IsolatedEnv(home), "", "-c", "http.sslCAInfo="+s.CAFile(), "clone", "--quiet", repoURL, dir)
	})
	t.Run("Go client", func(t *testing.T) {
		if _, err := http.Get(repoURL + "/info/refs?service=git-upload-pack"); err == nil {
			t.Error("default client trusted the test CA")
		}
		resp, err := s.Client().Get(repoURL + "/info/refs?service=git-upload-pack")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("status = %d, want 200", resp.StatusCode)
		}
	})

	plain := gitserver.New(t, gitserver.Options{})
	if plain.CAPEM() != nil || plain.CAFile() != "" {
		t.Errorf("plain server CAPEM = %q, CAFile = %q; want none", plain.CAPEM(), plain.CAFile())
	}
}

// TestCreateRepoErrors checks that bad and duplicate names are refused and
// named in the error.
func TestCreateRepoErrors(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t, gitserver.Options{})
	if _, err := s.CreateRepo("dup.git"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", ".", "..", "../escape.git", "/abs.git", "a/../b.git", "a//b.git", "trailing/", `back\slash`, "dup.git"} {
		t.Run(name, func(t *testing.T) {
			_, err := s.CreateRepo(name)
			if err == nil {
				t.Fatalf("CreateRepo(%q) succeeded", name)
			}
			if !strings.Contains(err.Error(), `repo "`+strings.ReplaceAll(name, `\`, `\\`)+`"`) {
				t.Errorf("error %q does not name the repo", err)
			}
		})
	}
}

// TestCloneMissingRepo checks the error of a failing git command: it names the
// repo and the command and carries git's standard error.
func TestCloneMissingRepo(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t, gitserver.Options{})
	_, err := s.Clone(t.Context(), "missing.git")
	if err == nil {
		t.Fatal("Clone of a missing repo succeeded")
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Errorf("error %v does not wrap *exec.ExitError", err)
	}
	for _, want := range []string{`gitserver: repo "missing.git": git clone`, "not found"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// TestStartContext checks that canceling Start's context stops the server and
// that Close may be called again afterwards.
func TestStartContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	s, err := gitserver.Start(ctx, gitserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRepo("fleet.git"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.URL("fleet.git") + "/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.URL("fleet.git") + "/info/refs?service=git-upload-pack")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still answering 10s after its context was canceled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after cancel: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := gitserver.Start(ctx, gitserver.Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with canceled context: error %v, want context.Canceled", err)
	}
}
