// Package sources turns revisions of the fleet repository into immutable
// snapshots on disk, with their commit metadata and, when configured, a
// verified signer.
//
// A Git source follows one reference of a repository (a branch, a tag, or the
// highest tag in a semver range) over HTTPS (bearer token or basic
// credentials, optional private CA bundle) or SSH (private key, host key
// checked against known_hosts, always). Git.Fetch is the unit of work: it
// lists the remote references, and when the reference still resolves to the
// commit it returned last time it returns that snapshot marked Unchanged
// without fetching or writing anything. Otherwise it fetches the commit at
// depth 1 into a cached bare repository, claiming the previous commit so that
// the server sends only the objects that changed, verifies the commit's
// OpenPGP or SSH signature against the trusted keys, and checks the tree out
// into <cache>/snapshots/<commit>/, written under a temporary name, made
// read-only and renamed into place. The most recent snapshots (and any a
// caller holds) are kept; older ones are removed.
//
// Errors start with the repository URL, credentials stripped, say what to do,
// and wrap one sentinel kind: ErrTransient (network, server errors; retry
// soon) or a permanent one (ErrAuth, ErrServerIdentity,
// ErrRepositoryNotFound, ErrRefNotFound, ErrInvalidRevision, ErrUntrusted).
// After any error the previous snapshot is still current and on disk, so the
// daemon keeps serving the last good revision.
//
// Poller adds the clock around Fetch: an interval with jitter, backoff with
// jitter after transient errors, and an immediate fetch when a Webhook, an
// http.Handler verifying GitHub, GitLab and generic HMAC-signed push
// notifications, signals its trigger.
//
// LocalRepository reads commits of a repository someone has checked out on
// the local disk, with the git binary, into snapshot directories of the
// caller's, so that a change can be reviewed or planned before it is pushed
// (meridian diff, meridian plan --repo). Its commit metadata is read as Git
// reads a fetched commit's, so a trailer in the message means the same to
// both.
//
// docs/sources.md describes the configuration for users.
package sources
