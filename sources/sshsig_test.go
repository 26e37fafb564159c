package sources

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

// sshSign signs data with ssh-keygen -Y sign in namespace and returns the
// armored signature.
func sshSign(t *testing.T, k sshSigningKey, namespace string, data []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-Y", "sign", "-n", namespace, "-f", k.file, file).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v: %s", err, out)
	}
	sig, err := os.ReadFile(file + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	return string(sig)
}

// TestSSHSignature verifies signatures made by ssh-keygen and refuses
// altered data, another namespace and malformed armor.
func TestSSHSignature(t *testing.T) {
	t.Parallel()
	requireSSHKeygen(t)
	keys := map[string]sshSigningKey{
		"ed25519": newSigningKey(t, "ed25519"),
		"ecdsa":   newSigningKey(t, "ecdsa"),
		"rsa":     newSigningKey(t, "rsa"),
	}
	data := []byte("tree 0123\nauthor someone\n\nmessage\n")
	for name, k := range keys {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			armored := sshSign(t, k, "git", data)
			sig, pub, err := parseSSHSignature(armored)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := ssh.FingerprintSHA256(pub), k.fingerprint(); got != want {
				t.Errorf("signature key %s, want %s", got, want)
			}
			if err := verifySSHSignature(sig, pub, data); err != nil {
				t.Errorf("valid signature refused: %v", err)
			}
			if err := verifySSHSignature(sig, pub, append([]byte("x"), data...)); err == nil {
				t.Errorf("signature over other data accepted")
			}
			other := sshSign(t, k, "file", data)
			osig, opub, err := parseSSHSignature(other)
			if err != nil {
				t.Fatal(err)
			}
			if err := verifySSHSignature(osig, opub, data); err == nil || err.Error() != `made in namespace "file", not "git"` {
				t.Errorf("signature in namespace file: %v, want a namespace refusal", err)
			}
		})
	}

	bad := []struct{ name, armored, want string }{
		{"not armored", "garbage", "not a single armored SSH SIGNATURE block"},
		{"wrong block", "-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n", "not a single armored SSH SIGNATURE block"},
		{"no preamble", "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n", "missing SSHSIG preamble"},
	}
	for _, tt := range bad {
		if _, _, err := parseSSHSignature(tt.armored); err == nil || err.Error() != tt.want {
			t.Errorf("%s: parseSSHSignature error %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestParseAllowedSigners checks the allowed_signers forms accepted and the
// exact message of each refusal.
func TestParseAllowedSigners(t *testing.T) {
	t.Parallel()
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	const fp = "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"
	type parsed struct {
		Line        int
		Principals  string
		Namespaces  []string
		ValidAfter  time.Time
		ValidBefore time.Time
	}
	summarize := func(ss []allowedSigner) []parsed {
		var out []parsed
		for _, s := range ss {
			out = append(out, parsed{s.line, s.principals, s.namespaces, s.validAfter, s.validBefore})
		}
		return out
	}
	tests := []struct {
		name    string
		content string
		want    []parsed
		wantErr string
	}{
		{"principal and key", "alice@example.com " + key + "\n", []parsed{{Line: 1, Principals: "alice@example.com"}}, ""},
		{"comments, blank lines, CRLF", "# team\r\n\r\nalice@example.com " + key + " laptop\r\n", []parsed{{Line: 3, Principals: "alice@example.com"}}, ""},
		{"options", `a@x,b@x namespaces="git,file",valid-after="20240102",valid-before="20250101120000Z" ` + key,
			[]parsed{{Line: 1, Principals: "a@x,b@x", Namespaces: []string{"git", "file"},
				ValidAfter:  time.Date(2024, 1, 2, 0, 0, 0, 0, time.Local),
				ValidBefore: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}}, ""},
		{"bare key with comment", key + " alice's key", []parsed{{Line: 1, Principals: "alice's key"}}, ""},
		{"bare key", key, []parsed{{Line: 1, Principals: fp}}, ""},
		{"cert authority", "a@x cert-authority " + key, nil, "SSH allowed signers line 1: cert-authority is not supported; list the signers' public keys"},
		{"unknown option", "a@x no-touch-required " + key, nil, `SSH allowed signers line 1: unknown option "no-touch-required"; the options are namespaces, valid-after and valid-before`},
		{"bad time", `a@x valid-after="2024" ` + key, nil, `SSH allowed signers line 1: valid-after: time "2024" is not YYYYMMDD[HHMM[SS]][Z]`},
		{"no key", "a@x", nil, `SSH allowed signers line 1: want "principals [options] keytype base64-key [comment]"`},
		{"bad base64", "a@x ssh-ed25519 !!!", nil, "SSH allowed signers line 1: key is not valid base64: illegal base64 data at input byte 0"},
		{"type mismatch", "a@x ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", nil, `SSH allowed signers line 1: key type "ssh-rsa" does not match the key, which is "ssh-ed25519"`},
		{"certificate type", "a@x ssh-ed25519-cert-v01@openssh.com AAAA", nil, `SSH allowed signers line 1: certificate key type "ssh-ed25519-cert-v01@openssh.com" is not supported; list plain public keys`},
		{"unterminated quote", `a@x namespaces="git ` + key, nil, "SSH allowed signers line 1: unterminated quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseAllowedSigners(tt.content)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summarize(got)); diff != "" {
				t.Errorf("parsed (-want +got):\n%s", diff)
			}
		})
	}
}
