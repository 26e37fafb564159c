package sources

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// verifier checks head commits against the trusted keys.
type verifier struct {
	pgp openpgp.EntityList
	ssh []allowedSigner
}

// newVerifier parses the trusted keys. Private keys are refused, so that no
// secret is held for verification.
func newVerifier(v *Verification) (*verifier, error) {
	out := &verifier{}
	for i, k := range v.OpenPGPKeys {
		list, err := openpgp.ReadArmoredKeyRing(strings.NewReader(k))
		if err != nil {
			return nil, fmt.Errorf("trusted OpenPGP key %d cannot be read (%v); give an ASCII-armored public key (gpg --armor --export)", i+1, err)
		}
		for _, e := range list {
			if e.PrivateKey != nil {
				return nil, fmt.Errorf("trusted OpenPGP key %d is a private key; give its public key (gpg --armor --export) instead", i+1)
			}
		}
		out.pgp = append(out.pgp, list...)
	}
	signers, err := parseAllowedSigners(v.SSHAllowedSigners)
	if err != nil {
		return nil, err
	}
	out.ssh = signers
	if len(out.pgp) == 0 && len(out.ssh) == 0 {
		return nil, errors.New("signature verification is on but no key is trusted; add OpenPGP public keys or SSH allowed signers")
	}
	return out, nil
}

// verify checks the commit's signature. It returns the signer when the
// signature verifies with a trusted key, or a reason for refusing the commit.
// An error is returned only when the commit cannot be read.
func (v *verifier) verify(c *object.Commit) (*Signer, string, error) {
	sig := c.PGPSignature
	if strings.TrimSpace(sig) == "" {
		return nil, "the commit is not signed", nil
	}
	payload := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(payload); err != nil {
		return nil, "", err
	}
	r, err := payload.Reader()
	if err != nil {
		return nil, "", err
	}
	signed, err := io.ReadAll(r)
	if err != nil {
		return nil, "", err
	}
	switch {
	case strings.HasPrefix(sig, "-----BEGIN PGP SIGNATURE-----"):
		s, reason := v.verifyOpenPGP(signed, sig)
		return s, reason, nil
	case strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE-----"):
		s, reason := v.verifySSH(signed, sig, c.Committer.When)
		return s, reason, nil
	default:
		return nil, "its signature is in an unsupported format (only OpenPGP and SSH signatures are verified)", nil
	}
}

// verifyOpenPGP checks an armored detached OpenPGP signature over signed.
func (v *verifier) verifyOpenPGP(signed []byte, armored string) (*Signer, string) {
	block, err := armor.Decode(strings.NewReader(armored))
	if err != nil {
		return nil, fmt.Sprintf("its OpenPGP signature cannot be read: %v", err)
	}
	body, err := io.ReadAll(block.Body)
	if err != nil {
		return nil, fmt.Sprintf("its OpenPGP signature cannot be read: %v", err)
	}
	issuer := "of unknown ID"
	if p, err := packet.Read(bytes.NewReader(body)); err == nil {
		if s, ok := p.(*packet.Signature); ok {
			switch {
			case len(s.IssuerFingerprint) > 0:
				issuer = fmt.Sprintf("%X", s.IssuerFingerprint)
			case s.IssuerKeyId != nil:
				issuer = fmt.Sprintf("%016X", *s.IssuerKeyId)
			}
		}
	}
	if len(v.pgp) == 0 {
		return nil, fmt.Sprintf("it is signed with OpenPGP key %s, and no OpenPGP key is trusted", issuer)
	}
	_, entity, err := openpgp.VerifyDetachedSignature(v.pgp, bytes.NewReader(signed), bytes.NewReader(body), nil)
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return nil, fmt.Sprintf("it is signed with OpenPGP key %s, which is not trusted", issuer)
	case err != nil:
		return nil, fmt.Sprintf("its OpenPGP signature by key %s does not verify: %v", issuer, err)
	}
	s := &Signer{Method: OpenPGP, Key: fmt.Sprintf("%X", entity.PrimaryKey.Fingerprint)}
	if id := entity.PrimaryIdentity(); id != nil {
		s.Identity = id.Name
	}
	return s, ""
}
