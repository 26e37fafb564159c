package secrets

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"filippo.io/age"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/aws/aws-sdk-go-v2/aws"
)

// Keys are the private keys Meridian may decrypt with, gathered from its own
// configuration. A Keys is immutable once built and safe for concurrent use;
// MergeKeys combines several sources. Printing a Keys with fmt shows only
// public identifiers, never key material.
type Keys struct {
	age    []ageKey
	pgp    openpgp.EntityList
	awsKMS *aws.Config
}

// ageKey is one age identity and its public recipient, which identifies it in
// messages and deduplicates it.
type ageKey struct {
	identity  age.Identity
	recipient string
}

// KeysForAWSKMS enables AWS KMS with cfg: its credentials, HTTP client, retry
// settings and BaseEndpoint (a VPC endpoint, or a local server in tests) are
// used as given. The region comes from each key's ARN, so one configuration
// reaches keys in every region. A key with a role in the SOPS file is used
// through STS AssumeRole with the same configuration. cfg is copied; merge the
// result with the other sources with MergeKeys.
func KeysForAWSKMS(cfg aws.Config) *Keys {
	c := cfg.Copy()
	return &Keys{awsKMS: &c}
}

// MergeKeys returns the keys of all sets together, without duplicates; nil
// sets are skipped. When more than one set enables AWS KMS, the last one's
// configuration is used.
func MergeKeys(sets ...*Keys) *Keys {
	out := &Keys{}
	seenAge := map[string]bool{}
	seenPGP := map[string]bool{}
	for _, s := range sets {
		if s == nil {
			continue
		}
		for _, k := range s.age {
			if !seenAge[k.recipient] {
				seenAge[k.recipient] = true
				out.age = append(out.age, k)
			}
		}
		for _, e := range s.pgp {
			fp := fingerprint(e)
			if !seenPGP[fp] {
				seenPGP[fp] = true
				out.pgp = append(out.pgp, e)
			}
		}
		if s.awsKMS != nil {
			out.awsKMS = s.awsKMS
		}
	}
	return out
}

// Empty reports whether the set holds no key at all and does not enable AWS
// KMS, so a caller can refuse to start a daemon that could never decrypt.
func (k *Keys) Empty() bool {
	return k == nil || (len(k.age) == 0 && len(k.pgp) == 0 && k.awsKMS == nil)
}

// Public lists what the set can decrypt for, in public terms fit for logs: the
// age recipients, "pgp:" and each OpenPGP primary key fingerprint, and
// "aws-kms" when AWS KMS is enabled.
func (k *Keys) Public() []string {
	if k == nil {
		return nil
	}
	var out []string
	for _, a := range k.age {
		out = append(out, a.recipient)
	}
	for _, e := range k.pgp {
		out = append(out, "pgp:"+fingerprint(e))
	}
	if k.awsKMS != nil {
		out = append(out, "aws-kms")
	}
	return out
}

// String describes the set by its public identifiers only.
func (k *Keys) String() string {
	return "secrets.Keys[" + strings.Join(k.Public(), " ") + "]"
}

// GoString keeps %#v from printing the identities' fields.
func (k *Keys) GoString() string { return k.String() }

// fingerprint is the upper-case hex fingerprint of an entity's primary key,
// the form SOPS files record.
func fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

// parseAgeIdentities reads age identities: one or more per line, separated by
// white space; blank lines and lines starting with # are skipped. src names
// the source in errors, which carry the line number but never the line itself.
func parseAgeIdentities(src string, data []byte) ([]ageKey, error) {
	var out []ageKey
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, word := range strings.Fields(line) {
			k, err := parseAgeIdentity(word)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", src, n, err)
			}
			out = append(out, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: reading age identities: %w", src, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: holds no age identity; put one AGE-SECRET-KEY-1… line in it (age-keygen writes such a file)", src)
	}
	return out, nil
}

// parseAgeIdentity parses one identity. Its errors never quote the input: a
// mistyped line may well be a private key.
func parseAgeIdentity(s string) (ageKey, error) {
	switch {
	case strings.HasPrefix(s, "AGE-SECRET-KEY-PQ-1"):
		id, err := age.ParseHybridIdentity(s)
		if err != nil {
			return ageKey{}, errors.New("malformed age post-quantum identity (AGE-SECRET-KEY-PQ-1…); copy it again from the key file age-keygen -pq wrote")
		}
		return ageKey{identity: id, recipient: id.Recipient().String()}, nil
	case strings.HasPrefix(s, "AGE-SECRET-KEY-1"):
		id, err := age.ParseX25519Identity(s)
		if err != nil {
			return ageKey{}, errors.New("malformed age identity (AGE-SECRET-KEY-1…); copy it again from the key file age-keygen wrote")
		}
		return ageKey{identity: id, recipient: id.Recipient().String()}, nil
	case strings.HasPrefix(s, "AGE-PLUGIN-"):
		return ageKey{}, errors.New("age plugin identities are not supported; use a native age identity (AGE-SECRET-KEY-1…)")
	case strings.HasPrefix(s, "age1"):
		return ageKey{}, errors.New("this is an age recipient (public key); Meridian needs the identity (AGE-SECRET-KEY-1…) that age-keygen wrote next to it")
	}
	return ageKey{}, errors.New("not an age identity; expected AGE-SECRET-KEY-1… (one per line, # starts a comment)")
}

// parsePGPKeys reads armored OpenPGP private keys. Every entity must carry an
// unencrypted private key that can decrypt: Meridian has no one to ask for a
// passphrase.
func parsePGPKeys(src string, data []byte) (openpgp.EntityList, error) {
	ents, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: not an armored OpenPGP private key (%w); export it with `gpg --export-secret-keys --armor FINGERPRINT`", src, err)
	}
	if len(ents) == 0 {
		return nil, fmt.Errorf("%s: holds no OpenPGP key; export one with `gpg --export-secret-keys --armor FINGERPRINT`", src)
	}
	for _, e := range ents {
		fp := fingerprint(e)
		if e.PrivateKey == nil {
			return nil, fmt.Errorf("%s: key %s is a public key only; export the private key with `gpg --export-secret-keys --armor %s`", src, fp, fp)
		}
		if encrypted(e) {
			return nil, fmt.Errorf("%s: key %s is protected by a passphrase, which Meridian cannot type; export a copy without one for Meridian", src, fp)
		}
	}
	return ents, nil
}

// encrypted reports whether any private key of the entity is still locked.
func encrypted(e *openpgp.Entity) bool {
	locked := func(pk *packet.PrivateKey) bool { return pk != nil && pk.Encrypted }
	if locked(e.PrivateKey) {
		return true
	}
	return slices.ContainsFunc(e.Subkeys, func(s openpgp.Subkey) bool { return locked(s.PrivateKey) })
}
