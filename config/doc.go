// Package config reads the configuration file of `meridian run` (and of
// `meridian plan --config`): which repository to follow and how to authenticate,
// how to reach each region's cluster and Route53, where the decryption keys are,
// and the daemon's intervals, listen address and replicas. Secrets are never
// written in the file itself, only the paths of files that hold them.
//
// It is a leaf: Load decodes the file strictly with the fleet decoder (an unknown
// field or a bad value is an error naming the file and line), applies the
// defaults, resolves relative paths and checks what one field says about
// another; the Read methods read the secret files the configuration names.
// Everything is returned as plain values. Building clients and keys from them is
// the wiring's (cmd/meridian run): the packages configured take options of their
// own, such as sources.GitOptions, dns.ClientOptions and shard.ClientOptions, so
// this package imports none of them, nor client-go, the AWS SDK or net/http.
package config
