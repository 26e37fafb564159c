// Package servercert serves TLS with a certificate and key kept in PEM files that
// may be renewed while the server runs, as cert-manager or a mounted Secret
// renews them: a renewed pair is taken on the next handshake, without a restart,
// and a pair caught half written is ignored in favour of the last good one.
package servercert
