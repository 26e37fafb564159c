// Package secrets decrypts the SOPS-encrypted values of a fleet's tenants
// (tenants/<name>.secrets.sops.yaml, whose top-level keys are app names) with
// the sops library, and keeps the decrypted values out of everything a person
// reads.
//
// Keys holds the private keys Meridian may decrypt with. They come from
// Meridian's own configuration (key files, the SOPS_AGE_KEY and
// SOPS_AGE_KEY_FILE variables read once by KeysFromEnv, a Kubernetes Secret),
// never from the fleet repository, and are handed to the decryption
// explicitly: nothing here reads the process environment while decrypting,
// starts gpg, talks to a GnuPG agent or writes a key to disk.
//
//   - age identities (AGE-SECRET-KEY-1… and AGE-SECRET-KEY-PQ-1…) are given
//     to sops' age key source.
//   - OpenPGP private keys (armored, without a passphrase) decrypt the data key
//     in memory with the OpenPGP library sops itself uses; sops' own PGP key
//     source only reads keyrings from files and falls back to the gpg binary.
//   - AWS KMS is used only when KeysForAWSKMS enables it, with the aws.Config
//     the caller built (credentials, endpoint); the region comes from each key's
//     ARN, and a key's role is assumed through STS with that configuration.
//     sops' own KMS key source loads the default AWS configuration from the
//     environment instead, so it is not used to decrypt.
//
// Decryptor.Decrypt recovers the data key the way sops does (every key group,
// Shamir threshold), decrypts the values and verifies the file's MAC before
// returning anything. Its errors name the file and say what to do, and never
// contain a decrypted value or key material.
//
// Leaves and Redactor serve the callers that print rendered output (diffs,
// logs, the dashboard): every secret value, and its base64 encoding, becomes
// Redacted.
package secrets
