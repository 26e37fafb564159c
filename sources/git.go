package sources

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// Git is a source that follows one reference of a git repository and turns
// each revision into an immutable Snapshot. Its methods are safe for
// concurrent use; concurrent Fetch calls run one at a time.
type Git struct {
	opts       GitOptions
	url        string // the URL without credentials, for messages
	ep         *transport.Endpoint
	client     transport.Transport
	auth       transport.AuthMethod
	constraint *semver.Constraints
	verifier   *verifier // nil when verification is off
	keep       int
	log        *slog.Logger
	secrets    redactor

	repoDir     string // <cache>/repo, a bare repository
	snapshotDir string // <cache>/snapshots

	// compactLoose is the number of loose objects above which the cached
	// repository is compacted after a fetch.
	compactLoose int

	fetchMu sync.Mutex // serialises Fetch
	// last is the files of the snapshot checkout wrote last, which a checkout
	// of the next commit links instead of writing again; guarded by fetchMu.
	last *checkedOut

	mu      sync.Mutex // guards the fields below
	current *Snapshot  // the last snapshot Fetch returned
	refused *UntrustedError
	recent  []string       // revisions of kept snapshots, newest first
	holds   map[string]int // revision → number of holds

	removing sync.WaitGroup // old snapshots being removed (retain)
}

// NewGit checks the options and prepares the cache directory. It does not
// contact the server. Errors start with the repository URL, credentials
// stripped, and say what to change.
func NewGit(opts GitOptions) (*Git, error) {
	ep, shown, err := parseEndpoint(opts.URL)
	if err != nil {
		return nil, err
	}
	g := &Git{
		opts:         opts,
		url:          shown,
		ep:           ep,
		keep:         opts.KeepSnapshots,
		log:          opts.Logger,
		secrets:      redactor{opts.Auth.Password, opts.Auth.BearerToken, string(opts.Auth.SSHPassphrase)},
		holds:        map[string]int{},
		compactLoose: 1024,
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: "+format, append([]any{shown}, args...)...)
	}

	switch {
	case g.keep == 0:
		g.keep = DefaultKeepSnapshots
	case g.keep < 2:
		return nil, fail("keep snapshots is %d; it must be at least 2 (the current and the previous snapshot), or 0 for %d", g.keep, DefaultKeepSnapshots)
	}
	if opts.ConnectTimeout == 0 {
		g.opts.ConnectTimeout = DefaultConnectTimeout
	}

	n := 0
	for _, s := range []string{opts.Ref.Branch, opts.Ref.Tag, opts.Ref.SemVer} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, fail("set exactly one of branch, tag or semver range to follow")
	}
	if opts.Ref.SemVer != "" {
		c, err := semver.NewConstraint(opts.Ref.SemVer)
		if err != nil {
			return nil, fail("invalid semver range %q: %v; write a range such as \">=1.2.0 <2.0.0\"", opts.Ref.SemVer, err)
		}
		g.constraint = c
	}
	if opts.CacheDir == "" {
		return nil, fail("no cache directory; set one where repositories and snapshots are kept")
	}
	cacheDir, err := filepath.Abs(opts.CacheDir)
	if err != nil {
		return nil, fail("cache directory: %v", err)
	}
	g.opts.CacheDir = cacheDir
	g.repoDir = filepath.Join(cacheDir, "repo")
	g.snapshotDir = filepath.Join(cacheDir, "snapshots")

	if opts.Verify != nil {
		v, err := newVerifier(opts.Verify)
		if err != nil {
			return nil, fail("%v", err)
		}
		g.verifier = v
	}

	a := opts.Auth
	switch ep.Protocol {
	case "https", "http":
		if len(a.SSHPrivateKey) > 0 || len(a.KnownHosts) > 0 {
			return nil, fail("an SSH key or known_hosts is set for an %s URL; use an ssh:// or user@host:path URL, or a token", ep.Protocol)
		}
		if a.Password != "" && a.Username == "" {
			return nil, fail("a password is set without a username; set a username too (any, such as \"git\", for an access token)")
		}
		if a.Username != "" && a.BearerToken != "" {
			return nil, fail("both basic credentials and a bearer token are set; set one")
		}
		if ep.Protocol == "http" && (a.Username != "" || a.BearerToken != "") {
			return nil, fail("refusing to send credentials over plain http; use https")
		}
		if ep.Protocol == "http" && len(opts.CABundle) > 0 {
			return nil, fail("a CA bundle is set for a plain http URL; use https")
		}
		switch {
		case a.BearerToken != "":
			g.auth = &githttp.TokenAuth{Token: a.BearerToken}
		case a.Username != "":
			g.auth = &githttp.BasicAuth{Username: a.Username, Password: a.Password}
		}
		ep.CaBundle = opts.CABundle
		g.client = githttp.DefaultClient
	case "ssh":
		if a.Username != "" || a.Password != "" || a.BearerToken != "" {
			return nil, fail("a username, password or token is set for an SSH URL; SSH authenticates with a private key (the user name goes in the URL)")
		}
		if len(opts.CABundle) > 0 {
			return nil, fail("a CA bundle is set for an SSH URL; SSH servers are verified with known_hosts")
		}
		if len(a.SSHPrivateKey) == 0 {
			return nil, fail("no SSH private key; set one whose public half the server authorizes")
		}
		if len(a.KnownHosts) == 0 {
			return nil, fail("no known_hosts; set the server's host key (for example from ssh-keyscan, checked out of band), host keys are always verified")
		}
		auth, err := g.sshAuth()
		if err != nil {
			return nil, err
		}
		g.auth = auth
		g.client = gitssh.DefaultClient
	}

	if err := g.prepareCache(); err != nil {
		return nil, err
	}
	return g, nil
}

// sshAuth parses the private key and known_hosts and writes known_hosts to
// the cache directory, where the known_hosts library reads it.
func (g *Git) sshAuth() (*sshKeyAuth, error) {
	a := g.opts.Auth
	var signer ssh.Signer
	var err error
	if len(a.SSHPassphrase) > 0 {
		signer, err = ssh.ParsePrivateKeyWithPassphrase(a.SSHPrivateKey, a.SSHPassphrase)
	} else {
		signer, err = ssh.ParsePrivateKey(a.SSHPrivateKey)
	}
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("%s: the SSH private key is encrypted; set its passphrase", g.url)
	case errors.Is(err, x509.IncorrectPasswordError):
		return nil, fmt.Errorf("%s: the SSH key passphrase is wrong", g.url)
	case err != nil:
		// The parser's message says what is wrong with the format and never
		// quotes the key.
		return nil, fmt.Errorf("%s: the SSH private key cannot be read (%v); set a PEM or OpenSSH private key", g.url, g.secrets.wrap(err))
	}
	for i, line := range splitLines(a.KnownHosts) {
		if _, _, _, _, _, err := ssh.ParseKnownHosts([]byte(line + "\n")); err != nil && !isBlankOrComment(line) {
			return nil, fmt.Errorf("%s: known_hosts line %d: %v; write \"host keytype base64-key\" as ssh-keyscan prints it", g.url, i+1, err)
		}
	}
	if err := os.MkdirAll(g.opts.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: cache directory: %w", g.url, err)
	}
	khFile := filepath.Join(g.opts.CacheDir, "known_hosts")
	if err := writeFileAtomic(khFile, a.KnownHosts, 0o600); err != nil {
		return nil, fmt.Errorf("%s: write known_hosts to the cache directory: %w", g.url, err)
	}
	db, err := gitssh.NewKnownHostsDb(khFile)
	if err != nil {
		return nil, fmt.Errorf("%s: known_hosts: %v", g.url, err)
	}
	user := g.ep.User
	if user == "" {
		user = "git"
	}
	port := g.ep.Port
	if port == 0 {
		port = 22
	}
	hostWithPort := fmt.Sprintf("%s:%d", g.ep.Host, port)
	return &sshKeyAuth{
		user:    user,
		signer:  signer,
		check:   db.HostKeyCallback(),
		algos:   db.HostKeyAlgorithms(hostWithPort),
		timeout: g.opts.ConnectTimeout,
	}, nil
}

// sshKeyAuth authenticates with one private key and checks the host key
// against known_hosts. It implements go-git's ssh.AuthMethod.
type sshKeyAuth struct {
	user    string
	signer  ssh.Signer
	check   ssh.HostKeyCallback
	algos   []string
	timeout time.Duration
}

// Name names the method.
func (a *sshKeyAuth) Name() string { return "ssh-public-key" }

// String describes the method without the key.
func (a *sshKeyAuth) String() string {
	return "user: " + a.user + ", key: " + ssh.FingerprintSHA256(a.signer.PublicKey())
}

// ClientConfig returns the SSH client configuration.
func (a *sshKeyAuth) ClientConfig() (*ssh.ClientConfig, error) {
	return &ssh.ClientConfig{
		User:              a.user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(a.signer)},
		HostKeyCallback:   a.check,
		HostKeyAlgorithms: a.algos,
		Timeout:           a.timeout,
	}, nil
}

// URL returns the repository URL without credentials.
func (g *Git) URL() string { return g.url }

// Last returns a copy of the snapshot the last successful Fetch returned, or
// nil before the first.
func (g *Git) Last() *Snapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.current == nil {
		return nil
	}
	s := *g.current
	return &s
}

// Hold keeps the snapshot's directory on disk, beyond the KeepSnapshots most
// recent, until release is called; a caller holds the snapshot it is still
// reading (rendering, applying) so retention cannot remove it underneath.
// Calling release more than once is harmless. Holding a snapshot this source
// did not return has no effect.
func (g *Git) Hold(s *Snapshot) (release func()) {
	rev := s.Revision
	g.mu.Lock()
	g.holds[rev]++
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.holds[rev]--; g.holds[rev] <= 0 {
				delete(g.holds, rev)
			}
		})
	}
}
