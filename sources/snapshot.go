package sources

import (
	"context"
	"time"
)

// Snapshot is one revision of the repository checked out into a directory.
// A Git source's snapshot never changes: its files and directories are
// read-only, and it is removed only by retention (see
// GitOptions.KeepSnapshots and Git.Hold). A LocalRepository's belongs to the
// caller (see LocalRepository.Checkout). Consumers read it with
// fleet.LoadDir(snapshot.Dir).
type Snapshot struct {
	// Dir is the path of the checked-out tree: for a Git source the absolute
	// path <cache>/snapshots/<Revision>, for a LocalRepository the directory
	// of the checked-out path. It holds the commit's files only: no .git
	// directory, no submodules. Symbolic links are kept as git records them;
	// read the tree through os.Root, as fleet.LoadDir does, so that none
	// leads outside it.
	Dir string
	// Revision is the full hash of the commit.
	Revision string
	// Ref is the full name of the reference that resolved to the commit, such
	// as "refs/heads/main" or "refs/tags/v1.4.0"; empty for a LocalRepository.
	Ref string
	// Commit describes the commit.
	Commit Commit
	// Files identifies the content of each regular file of Dir by its
	// slash-separated path: equal IDs mean equal content and mode (for a Git
	// source, the blob's hash and the mode). nil when the source does not know
	// them without reading the files: a LocalRepository, or a snapshot this
	// process did not check out. fleet.Loader.Load reads no file whose ID it saw.
	Files map[string]string
	// Unchanged reports that Revision is the revision the previous successful
	// Fetch of this source returned: the fetch listed the remote references
	// and stopped, without fetching objects or writing anything. Callers can
	// skip all work for an unchanged snapshot.
	Unchanged bool
}

// Commit is the metadata of a snapshot's commit.
type Commit struct {
	// Author wrote the change; Committer made the commit.
	Author, Committer Person
	// Subject is the first line of the message; Body is the rest, without
	// the blank line that separates them and without trailing white space.
	Subject, Body string
	// Signer says who signed the commit. It is set when signature
	// verification is on (and then always, as an unverified commit is
	// refused), nil otherwise.
	Signer *Signer
}

// Person is a commit's author or committer.
type Person struct {
	// Name and Email are as recorded in the commit.
	Name, Email string
	// When is the author or commit date, in the time zone recorded.
	When time.Time
}

// SignatureMethod is how a commit was signed.
type SignatureMethod string

// The signature methods a Verification trusts.
const (
	OpenPGP SignatureMethod = "openpgp"
	SSH     SignatureMethod = "ssh"
)

// Signer is the verified signer of a commit.
type Signer struct {
	// Method is OpenPGP or SSH.
	Method SignatureMethod
	// Identity is the OpenPGP user ID, such as "Alice <alice@example.com>",
	// or the comma-separated principals of the allowed_signers line.
	Identity string
	// Key is the signing key's fingerprint: the OpenPGP fingerprint in
	// upper-case hex, or the SSH "SHA256:..." fingerprint.
	Key string
}

// Fetcher is what a Poller needs from a source. Fetch returns the current
// revision of the source as a snapshot, with Unchanged set when it is the one
// the previous successful call returned; on error, the previous snapshot is
// still valid and in place. Git implements it.
type Fetcher interface {
	Fetch(ctx context.Context) (*Snapshot, error)
}

// ShortRevision is the first 12 characters of a revision, the form logs, errors and
// headings show.
func ShortRevision(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
