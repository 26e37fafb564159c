package sources

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"golang.org/x/crypto/ssh/knownhosts"
)

// The kinds of fetch failure. Every error Fetch returns, except a canceled
// context, wraps exactly one of them, so a caller tells them apart with
// errors.Is. Only ErrTransient is worth retrying soon; the others need a
// person to change something (credentials, configuration, the repository or
// a signature) and are reported, while the last good snapshot stays in use.
var (
	// ErrTransient marks a failure that may go away by itself: a network
	// error, a timeout, a server error (HTTP 5xx, 408, 429), a local I/O
	// error, or anything not known to be permanent. See Transient.
	ErrTransient = errors.New("transient error")
	// ErrAuth marks credentials that are missing or refused: HTTP 401 or
	// 403, or an SSH server that accepted none of the offered keys.
	ErrAuth = errors.New("authentication refused")
	// ErrServerIdentity marks a server whose identity could not be verified:
	// an HTTPS certificate not signed by a trusted authority (or for another
	// host), or an SSH host key absent from, or different from, known_hosts.
	ErrServerIdentity = errors.New("server identity not verified")
	// ErrRepositoryNotFound marks a repository the server does not have, or
	// does not show to these credentials.
	ErrRepositoryNotFound = errors.New("repository not found")
	// ErrRefNotFound marks a branch or tag that does not exist, a semver
	// range that no tag satisfies, or an empty repository.
	ErrRefNotFound = errors.New("reference not found")
	// ErrInvalidRevision marks a revision that cannot be checked out: a
	// reference to something other than a commit, or a tree with entries no
	// file system should hold (such as ".git" or "..").
	ErrInvalidRevision = errors.New("invalid revision")
	// ErrUntrusted marks a head commit refused by signature verification:
	// unsigned, signed by a key that is not trusted, or carrying a signature
	// that does not verify. The error is an *UntrustedError.
	ErrUntrusted = errors.New("commit signature not trusted")
)

// Transient reports whether err is worth retrying soon with backoff: it wraps
// ErrTransient. A canceled or expired context is not transient.
func Transient(err error) bool { return errors.Is(err, ErrTransient) }

// Error is a fetch failure. Its message starts with the repository URL,
// credentials stripped, says what went wrong and what to do about it. Kind is
// one of the sentinel errors above and Err the underlying cause; both are
// reachable through errors.Is and errors.As.
type Error struct {
	// URL is the repository URL without credentials.
	URL string
	// Kind is ErrTransient, ErrAuth, ErrServerIdentity,
	// ErrRepositoryNotFound, ErrRefNotFound or ErrInvalidRevision.
	Kind error
	// Msg says what went wrong, without the URL.
	Msg string
	// Hint says what to do, or is empty.
	Hint string
	// Err is the underlying cause, or nil.
	Err error
}

// Error returns "<url>: <msg>: <cause>; <hint>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.URL)
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns the kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// UntrustedError is the error of a head commit refused by signature
// verification. Nothing of the refused commit is checked out, and the last
// verified snapshot stays as it was.
type UntrustedError struct {
	// URL is the repository URL without credentials.
	URL string
	// Commit is the full hash of the refused commit.
	Commit string
	// Reason says why, such as "the commit is not signed".
	Reason string
}

// Error returns "<url>: commit <hash> refused: <reason>; ...".
func (e *UntrustedError) Error() string {
	return fmt.Sprintf("%s: commit %s refused: %s; the last verified revision stays in use: sign the commit with a trusted key, or add the signer's public key to the trusted keys",
		e.URL, e.Commit, e.Reason)
}

// Is reports whether target is ErrUntrusted.
func (e *UntrustedError) Is(target error) bool { return target == ErrUntrusted }

// redactor removes secrets from error text that comes from libraries, as a
// second line of defence: credentials never go into URLs, so they should
// never appear there in the first place.
type redactor []string

func (r redactor) redact(s string) string {
	for _, secret := range r {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// redactedError is an error whose message had secrets removed; it still
// unwraps to the original so errors.Is keeps working.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func (r redactor) wrap(err error) error {
	if err == nil {
		return nil
	}
	if msg := r.redact(err.Error()); msg != err.Error() {
		return &redactedError{msg: msg, err: err}
	}
	return err
}

// classify turns an error from the git transport into an *Error with a kind,
// a message and a hint. A context error is returned as it is, prefixed with
// the URL.
func (g *Git) classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %s: %w", g.url, op, err)
	}
	e := &Error{URL: g.url, Kind: ErrTransient, Msg: op + " failed", Err: g.secrets.wrap(err)}

	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	var certInvalid x509.CertificateInvalidError
	var certVerify *tls.CertificateVerificationError
	var httpErr *githttp.Err
	var netErr net.Error
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired):
		e.Kind, e.Msg, e.Err = ErrAuth, op+": the server requires authentication (HTTP 401)", nil
		e.Hint = "check the credentials: the token, or the username and password"
	case errors.Is(err, transport.ErrAuthorizationFailed):
		e.Kind, e.Msg, e.Err = ErrAuth, op+": the server refused access (HTTP 403)", nil
		e.Hint = "check that the credentials may read this repository"
	case strings.Contains(err.Error(), "ssh: unable to authenticate"): // x/crypto/ssh has no typed error for this
		e.Kind, e.Msg, e.Err = ErrAuth, op+": the SSH server accepted none of the offered keys", nil
		e.Hint = "check that the private key's public half is authorized to read this repository"
	case errors.Is(err, transport.ErrRepositoryNotFound):
		e.Kind, e.Msg, e.Err = ErrRepositoryNotFound, op+": repository not found", nil
		e.Hint = "check the URL, and that the credentials may read the repository"
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		e.Kind, e.Msg, e.Err = ErrRefNotFound, op+": the repository is empty", nil
		e.Hint = "push a commit to it"
	case errors.As(err, &keyErr):
		e.Kind, e.Err = ErrServerIdentity, nil
		if len(keyErr.Want) == 0 {
			e.Msg = op + ": the SSH host key is not in known_hosts"
			e.Hint = "add the server's host key to known_hosts (never disable host key checking)"
		} else {
			e.Msg = op + ": the SSH host key does not match known_hosts"
			e.Hint = "if the server's key really changed, replace its known_hosts entry; otherwise someone may be intercepting the connection"
		}
	case errors.As(err, &revoked):
		e.Kind, e.Msg, e.Err = ErrServerIdentity, op+": the SSH host key is revoked in known_hosts", nil
		e.Hint = "the server presents a revoked key; contact the repository's administrators"
	case errors.As(err, &unknownAuthority), errors.As(err, &hostnameErr), errors.As(err, &certInvalid), errors.As(err, &certVerify):
		e.Kind, e.Msg = ErrServerIdentity, op+": the server's TLS certificate is not trusted"
		e.Hint = "if the server uses a private certificate authority, add its PEM certificate to the CA bundle"
	case errors.As(err, &httpErr):
		code := httpErr.StatusCode()
		e.Msg, e.Err = fmt.Sprintf("%s: the server answered HTTP %d", op, code), nil
		switch {
		case code == 410:
			e.Kind, e.Hint = ErrRepositoryNotFound, "check the URL"
		case code >= 500 || code == 408 || code == 429:
			e.Hint = "retrying"
		default:
			e.Hint = "retrying; check the URL if this persists"
		}
	case errors.As(err, &netErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		e.Msg = op + ": network error"
		e.Hint = "retrying"
	default:
		e.Hint = "retrying"
	}
	return e
}
