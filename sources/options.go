package sources

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// DefaultKeepSnapshots is how many snapshots a Git source keeps on disk when
// GitOptions.KeepSnapshots is zero.
const DefaultKeepSnapshots = 3

// DefaultConnectTimeout bounds establishing an SSH connection when
// GitOptions.ConnectTimeout is zero. HTTPS requests are bounded by the
// context given to Fetch.
const DefaultConnectTimeout = 30 * time.Second

// GitOptions configures a Git source. Secrets (password, token, private key)
// are held in memory only; they never reach error messages, logs or disk.
type GitOptions struct {
	// URL is the repository: https://host/path, ssh://[user@]host[:port]/path
	// or the scp-like user@host:path. http:// is accepted without
	// credentials only. Credentials never go in the URL: put them in Auth.
	URL string
	// Ref selects the revision to follow.
	Ref Ref
	// Auth holds the credentials, if the repository needs any.
	Auth Auth
	// CABundle holds PEM certificates trusted for HTTPS in addition to the
	// system's, for servers with a private certificate authority.
	CABundle []byte
	// CacheDir holds the cached repository and the snapshots. It is created
	// when missing. Only one Git source, in one process, may use a cache
	// directory at a time.
	CacheDir string
	// Verify, when not nil, turns on commit signature verification: a head
	// commit that is not signed by one of its keys is refused with an
	// *UntrustedError.
	Verify *Verification
	// KeepSnapshots is how many of the most recently returned snapshots are
	// kept on disk; zero means DefaultKeepSnapshots. It must be at least 2,
	// so the current and the previous snapshot are always there. Snapshots
	// held with Git.Hold are kept in addition.
	KeepSnapshots int
	// ConnectTimeout bounds establishing an SSH connection; zero means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Logger receives a line per fetched revision and per removed snapshot.
	// Nil discards them.
	Logger *slog.Logger
}

// Ref selects a revision: exactly one of its fields is set.
type Ref struct {
	// Branch follows the head of a branch, such as "main".
	Branch string
	// Tag follows a tag, such as "v1.4.0"; a tag moved by a force-push is
	// followed too.
	Tag string
	// SemVer follows the highest tag that is a semantic version (MAJOR.MINOR.PATCH,
	// optionally with a "v" prefix, a pre-release and build metadata)
	// satisfying this range, such as ">=1.2.0 <2.0.0" or "~1.4". Pre-releases
	// are considered only when the range names one, as in ">=1.5.0-rc.0".
	SemVer string
}

// String describes the reference, as in `branch "main"`.
func (r Ref) String() string {
	switch {
	case r.Branch != "":
		return fmt.Sprintf("branch %q", r.Branch)
	case r.Tag != "":
		return fmt.Sprintf("tag %q", r.Tag)
	case r.SemVer != "":
		return fmt.Sprintf("semver range %q", r.SemVer)
	}
	return "no reference"
}

// Auth holds credentials. For HTTPS set a BearerToken, or a Username and
// Password (for GitHub and GitLab tokens, any username such as "git" with the
// token as password). For SSH set SSHPrivateKey and KnownHosts; host keys are
// always checked.
type Auth struct {
	// Username and Password are HTTP basic credentials.
	Username string
	// Password is the HTTP basic password or access token.
	Password string
	// BearerToken is sent as "Authorization: Bearer <token>".
	BearerToken string
	// SSHPrivateKey is a PEM or OpenSSH private key.
	SSHPrivateKey []byte
	// SSHPassphrase decrypts SSHPrivateKey when it is encrypted.
	SSHPassphrase []byte
	// KnownHosts is the content of a known_hosts file listing the SSH
	// server's host key. It is required for SSH.
	KnownHosts []byte
}

// Verification lists the keys trusted to sign head commits. At least one key
// is required.
type Verification struct {
	// OpenPGPKeys are ASCII-armored OpenPGP public keys (each may hold
	// several keys).
	OpenPGPKeys []string
	// SSHAllowedSigners is in the format of ssh-keygen's allowed_signers
	// file: one key per line, "principals [options] keytype base64-key
	// [comment]", where options may be namespaces="git,...", valid-after and
	// valid-before (checked against the committer date); cert-authority is
	// not supported. A line may also be a bare "keytype base64-key
	// [comment]", whose comment is then its identity. Blank lines and lines
	// starting with # are ignored.
	SSHAllowedSigners string
}

// endpoint parses and checks the repository URL and returns the transport
// endpoint and the URL as errors show it (without credentials, query or
// fragment).
func parseEndpoint(raw string) (*transport.Endpoint, string, error) {
	if raw == "" {
		return nil, "git source", fmt.Errorf("git source: no repository URL; set an https://, ssh:// or user@host:path URL")
	}
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		return nil, redactURL(raw), fmt.Errorf("%s: invalid repository URL; use https://host/path, ssh://user@host/path or user@host:path", redactURL(raw))
	}
	shown := redactURL(raw)
	switch ep.Protocol {
	case "https", "http", "ssh":
	default:
		return nil, shown, fmt.Errorf("%s: unsupported URL scheme %q; use https://, ssh:// or user@host:path", shown, ep.Protocol)
	}
	if ep.Host == "" {
		return nil, shown, fmt.Errorf("%s: the URL names no host", shown)
	}
	if ep.Protocol != "ssh" {
		if ep.User != "" || ep.Password != "" {
			return nil, shown, fmt.Errorf("%s: the URL carries credentials; remove them from the URL and set the username, password or token in the auth options", shown)
		}
		if u, err := url.Parse(raw); err == nil && (u.RawQuery != "" || u.Fragment != "") {
			return nil, shown, fmt.Errorf("%s: the URL has a query or fragment; remove it", shown)
		}
	}
	if ep.Password != "" || strings.Contains(ep.User, ":") {
		return nil, shown, fmt.Errorf("%s: the URL carries a password; SSH authenticates with a private key in the auth options", shown)
	}
	return ep, shown, nil
}

// redactURL returns the URL without password, query and fragment, and for
// http(s) without any user information, for use in messages. Input that does
// not parse is reduced to its scheme and host, or to "repository".
func redactURL(raw string) string {
	if !strings.Contains(raw, "://") {
		// scp-like user@host:path: the user is not a secret, a password
		// cannot be written in this form.
		if at := strings.Index(raw, "@"); at >= 0 && strings.Contains(raw[:at], ":") {
			return raw[at+1:]
		}
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		scheme, rest, _ := strings.Cut(raw, "://")
		host, _, _ := strings.Cut(rest, "/")
		if at := strings.LastIndex(host, "@"); at >= 0 {
			host = host[at+1:]
		}
		return scheme + "://" + host + "/..."
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	if u.Scheme == "ssh" && u.User != nil {
		u.User = url.User(u.User.Username())
	} else {
		u.User = nil
	}
	return u.String()
}
