package sources

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// This file verifies SSH signatures in the sshsig format that
// `ssh-keygen -Y sign` writes and git stores in a commit's gpgsig header
// (OpenSSH's PROTOCOL.sshsig), against keys listed in the allowed_signers
// format of ssh-keygen(1). The cryptography is golang.org/x/crypto/ssh's; only
// the framing is implemented here.

// sshsigMagic starts both the signature blob and the signed data.
const sshsigMagic = "SSHSIG"

// sshsigNamespace is the namespace git signs commits in.
const sshsigNamespace = "git"

// allowedSigner is one line of an allowed_signers file.
type allowedSigner struct {
	line        int
	principals  string
	key         ssh.PublicKey
	namespaces  []string // nil: any namespace
	validAfter  time.Time
	validBefore time.Time
}

// sshSignature is the sshsig blob after the magic preamble.
type sshSignature struct {
	Version       uint32
	PublicKey     []byte
	Namespace     string
	Reserved      []byte
	HashAlgorithm string
	Signature     []byte
}

// wireSignature is an SSH signature as it is encoded inside the sshsig blob;
// Rest holds the flags and counter of security-key signatures.
type wireSignature struct {
	Format string
	Blob   []byte
	Rest   []byte `ssh:"rest"`
}

// verifySSH checks an armored SSH signature over signed, made in the git
// namespace by a trusted key, at the commit's committer time.
func (v *verifier) verifySSH(signed []byte, armored string, when time.Time) (*Signer, string) {
	sig, pub, err := parseSSHSignature(armored)
	if err != nil {
		return nil, fmt.Sprintf("its SSH signature cannot be read: %v", err)
	}
	fp := ssh.FingerprintSHA256(pub)
	var matched []allowedSigner
	for _, s := range v.ssh {
		if bytes.Equal(s.key.Marshal(), pub.Marshal()) {
			matched = append(matched, s)
		}
	}
	if len(matched) == 0 {
		if len(v.ssh) == 0 {
			return nil, fmt.Sprintf("it is signed with SSH key %s, and no SSH key is trusted", fp)
		}
		return nil, fmt.Sprintf("it is signed with SSH key %s, which is not trusted", fp)
	}
	if err := verifySSHSignature(sig, pub, signed); err != nil {
		return nil, fmt.Sprintf("its SSH signature by key %s does not verify: %v", fp, err)
	}
	var principals []string
	var why string
	for _, s := range matched {
		switch {
		case s.namespaces != nil && !slices.Contains(s.namespaces, sshsigNamespace):
			why = fmt.Sprintf("allowed signers line %d does not allow the %q namespace", s.line, sshsigNamespace)
		case !s.validAfter.IsZero() && when.Before(s.validAfter):
			why = fmt.Sprintf("allowed signers line %d is valid only after %s", s.line, s.validAfter.UTC().Format(time.RFC3339))
		case !s.validBefore.IsZero() && when.After(s.validBefore):
			why = fmt.Sprintf("allowed signers line %d is valid only before %s", s.line, s.validBefore.UTC().Format(time.RFC3339))
		default:
			principals = append(principals, s.principals)
		}
	}
	if len(principals) == 0 {
		return nil, fmt.Sprintf("it is signed with SSH key %s, which is not trusted for this commit (%s; the commit date is %s)", fp, why, when.UTC().Format(time.RFC3339))
	}
	return &Signer{Method: SSH, Identity: strings.Join(principals, ","), Key: fp}, ""
}

// parseSSHSignature decodes an armored sshsig blob and its public key.
func parseSSHSignature(armored string) (*sshSignature, ssh.PublicKey, error) {
	block, rest := pem.Decode([]byte(armored))
	if block == nil || block.Type != "SSH SIGNATURE" || len(bytes.TrimSpace(rest)) > 0 {
		return nil, nil, errors.New("not a single armored SSH SIGNATURE block")
	}
	blob, ok := bytes.CutPrefix(block.Bytes, []byte(sshsigMagic))
	if !ok {
		return nil, nil, errors.New("missing SSHSIG preamble")
	}
	var sig sshSignature
	if err := ssh.Unmarshal(blob, &sig); err != nil {
		return nil, nil, err
	}
	if sig.Version != 1 {
		return nil, nil, fmt.Errorf("unsupported sshsig version %d", sig.Version)
	}
	pub, err := ssh.ParsePublicKey(sig.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := pub.(*ssh.Certificate); ok {
		return nil, nil, errors.New("signed with an SSH certificate, which is not supported; sign with a plain key")
	}
	return &sig, pub, nil
}

// verifySSHSignature checks that sig is pub's signature over message in the
// git namespace.
func verifySSHSignature(sig *sshSignature, pub ssh.PublicKey, message []byte) error {
	if sig.Namespace != sshsigNamespace {
		return fmt.Errorf("made in namespace %q, not %q", sig.Namespace, sshsigNamespace)
	}
	var h hash.Hash
	switch sig.HashAlgorithm {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return fmt.Errorf("unsupported hash algorithm %q", sig.HashAlgorithm)
	}
	var ws wireSignature
	if err := ssh.Unmarshal(sig.Signature, &ws); err != nil {
		return err
	}
	// sshsig forbids SHA-1 RSA signatures.
	if pub.Type() == ssh.KeyAlgoRSA && ws.Format != ssh.KeyAlgoRSASHA256 && ws.Format != ssh.KeyAlgoRSASHA512 {
		return fmt.Errorf("RSA signature algorithm %q is not allowed; sign with rsa-sha2-256 or rsa-sha2-512", ws.Format)
	}
	h.Write(message)
	signed := append([]byte(sshsigMagic), ssh.Marshal(struct {
		Namespace     string
		Reserved      []byte
		HashAlgorithm string
		Digest        []byte
	}{sig.Namespace, sig.Reserved, sig.HashAlgorithm, h.Sum(nil)})...)
	return pub.Verify(signed, &ssh.Signature{Format: ws.Format, Blob: ws.Blob, Rest: ws.Rest})
}

// parseAllowedSigners parses allowed_signers content; see
// Verification.SSHAllowedSigners.
func parseAllowedSigners(content string) ([]allowedSigner, error) {
	var out []allowedSigner
	for i, line := range splitLines([]byte(content)) {
		if isBlankOrComment(line) {
			continue
		}
		s, err := parseAllowedSigner(line)
		if err != nil {
			return nil, fmt.Errorf("SSH allowed signers line %d: %v", i+1, err)
		}
		s.line = i + 1
		out = append(out, s)
	}
	return out, nil
}

func parseAllowedSigner(line string) (allowedSigner, error) {
	var s allowedSigner
	fields, err := splitFields(line)
	if err != nil {
		return s, err
	}
	i := 0
	if !isKeyType(fields[0]) {
		s.principals = fields[0]
		i = 1
		if i < len(fields) && !isKeyType(fields[i]) {
			if err := s.parseOptions(fields[i]); err != nil {
				return s, err
			}
			i++
		}
	}
	if i+1 >= len(fields) {
		return s, errors.New(`want "principals [options] keytype base64-key [comment]"`)
	}
	keyType, b64 := fields[i], fields[i+1]
	if strings.HasSuffix(keyType, "-cert-v01@openssh.com") {
		return s, fmt.Errorf("certificate key type %q is not supported; list plain public keys", keyType)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return s, fmt.Errorf("key is not valid base64: %v", err)
	}
	key, err := ssh.ParsePublicKey(raw)
	if err != nil {
		return s, fmt.Errorf("key cannot be parsed: %v", err)
	}
	if key.Type() != keyType {
		return s, fmt.Errorf("key type %q does not match the key, which is %q", keyType, key.Type())
	}
	s.key = key
	if s.principals == "" {
		s.principals = strings.Join(fields[i+2:], " ")
	}
	if s.principals == "" {
		s.principals = ssh.FingerprintSHA256(key)
	}
	return s, nil
}

// parseOptions parses a comma-separated options field such as
// namespaces="git,file",valid-after="20240101".
func (s *allowedSigner) parseOptions(field string) error {
	for _, opt := range splitOutsideQuotes(field, ',') {
		name, value, hasValue := strings.Cut(opt, "=")
		value = strings.Trim(value, `"`)
		switch strings.ToLower(name) {
		case "cert-authority":
			return errors.New("cert-authority is not supported; list the signers' public keys")
		case "namespaces":
			if !hasValue {
				return errors.New(`namespaces needs a value, as in namespaces="git"`)
			}
			s.namespaces = strings.Split(value, ",")
		case "valid-after", "valid-before":
			t, err := parseSignerTime(value)
			if err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
			if strings.ToLower(name) == "valid-after" {
				s.validAfter = t
			} else {
				s.validBefore = t
			}
		default:
			return fmt.Errorf("unknown option %q; the options are namespaces, valid-after and valid-before", name)
		}
	}
	return nil
}

// parseSignerTime parses YYYYMMDD[HHMM[SS]], in local time unless followed by
// Z for UTC, as ssh-keygen does.
func parseSignerTime(v string) (time.Time, error) {
	loc := time.Local
	if s, ok := strings.CutSuffix(v, "Z"); ok {
		v, loc = s, time.UTC
	}
	for _, layout := range []string{"20060102", "200601021504", "20060102150405"} {
		if len(v) == len(layout) {
			return time.ParseInLocation(layout, v, loc)
		}
	}
	return time.Time{}, fmt.Errorf("time %q is not YYYYMMDD[HHMM[SS]][Z]", v)
}

// splitFields splits a line at white space outside double quotes.
func splitFields(line string) ([]string, error) {
	var fields []string
	var cur strings.Builder
	inQuote := false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote = !inQuote
			cur.WriteRune(r)
		case (r == ' ' || r == '\t') && !inQuote:
			if cur.Len() > 0 {
				fields = append(fields, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if inQuote {
		return nil, errors.New("unterminated quote")
	}
	if cur.Len() > 0 {
		fields = append(fields, cur.String())
	}
	if len(fields) == 0 {
		return nil, errors.New("empty line")
	}
	return fields, nil
}

// splitOutsideQuotes splits s at sep outside double quotes.
func splitOutsideQuotes(s string, sep rune) []string {
	var parts []string
	start, inQuote := 0, false
	for i, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
		case r == sep && !inQuote:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// isKeyType reports whether s names an SSH public key type.
func isKeyType(s string) bool {
	switch s {
	case ssh.KeyAlgoRSA, ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256, ssh.KeyAlgoDSA:
		return true
	}
	return strings.HasSuffix(s, "-cert-v01@openssh.com")
}

// splitLines splits content into lines without their line endings.
func splitLines(content []byte) []string {
	s := strings.ReplaceAll(string(content), "\r\n", "\n")
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// isBlankOrComment reports whether a line holds nothing or a # comment.
func isBlankOrComment(line string) bool {
	t := strings.TrimSpace(line)
	return t == "" || strings.HasPrefix(t, "#")
}
