// Package gitserver runs a real git server for tests.
//
// A Server serves bare repositories kept under a temporary directory over the
// git smart HTTP protocol. Every request is handed to the system's
// `git http-backend` through net/http/cgi, so clients talk to the same
// upload-pack and receive-pack programs a production git host runs, not to an
// in-memory imitation. Pushes over HTTP are enabled. The server listens on
// 127.0.0.1 only and can require HTTP basic credentials, a bearer token, or
// both, and can serve HTTPS with a freshly generated certificate authority
// whose PEM certificate clients are given to trust.
//
// With Options.SSHAuthorizedKeys the server also speaks git over SSH on a
// second port of 127.0.0.1: an in-process SSH server (golang.org/x/crypto/ssh)
// with a fresh Ed25519 host key authenticates clients by public key and runs
// the real git-upload-pack or git-receive-pack on the repository the client
// names. SSHKnownHosts gives the known_hosts line that trusts it.
//
// Every answered request, HTTP or SSH, is recorded with its service, status
// and byte counts (Server.Requests), so tests can tell a client that only
// listed references from one that fetched objects.
//
// A Workdir is a clone of one of the server's repositories in which tests write
// files, commit, tag and push with the real git command-line tool. Every git
// command runs in an isolated environment (a private HOME, no system or user
// configuration, no terminal prompts), and commits carry a fixed author,
// committer and date, so the same sequence of changes yields the same commit
// hashes on every machine.
//
// The package needs the git command-line tool, including git-http-backend, on
// PATH (and an OpenSSH client only for the tests of the SSH transport). It is
// meant for tests; nothing in a production binary should import it.
package gitserver
