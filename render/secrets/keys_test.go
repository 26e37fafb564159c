package secrets

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func armorPublic(t *testing.T, e *openpgp.Entity) string {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.String()
}

func armorLocked(t *testing.T, k pgpKeyPair) string {
	t.Helper()
	ents, err := openpgp.ReadArmoredKeyRing(strings.NewReader(k.armored))
	if err != nil {
		t.Fatal(err)
	}
	e := ents[0]
	if err := e.EncryptPrivateKeys([]byte("passphrase"), nil); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivateWithoutSigning(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.String()
}

func TestKeysFromFiles(t *testing.T) {
	a, b := newAgeKey(t), newAgeKey(t)
	p := newPGPKey(t)
	both := writeFile(t, "both.agekey", "# two identities, one per line\n\n"+a.id.String()+"\r\n  "+b.id.String()+"  \n")
	again := writeFile(t, "a.txt", a.file)
	asc := writeFile(t, "p.asc", p.armored)

	keys, err := KeysFromFiles(both, again, asc)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a.recipient(), b.recipient(), "pgp:" + p.fingerprint()}
	if diff := cmp.Diff(want, keys.Public()); diff != "" {
		t.Errorf("Public() (-want +got):\n%s", diff)
	}
	if keys.Empty() {
		t.Error("Empty() = true for a set with keys")
	}
}

func TestKeysFromFilesRefusals(t *testing.T) {
	a := newAgeKey(t)
	p := newPGPKey(t)
	secretish := "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.txt")

	tests := []struct {
		name    string
		file    string // base name
		content string
		want    string // %s is the path
	}{
		{name: "malformed identity", file: "k.txt", content: "# key\n" + secretish + "\n",
			want: "%s:2: malformed age identity (AGE-SECRET-KEY-1…); copy it again from the key file age-keygen wrote"},
		{name: "recipient instead of identity", file: "k.txt", content: a.recipient() + "\n",
			want: "%s:1: this is an age recipient (public key); Meridian needs the identity (AGE-SECRET-KEY-1…) that age-keygen wrote next to it"},
		{name: "plugin identity", file: "k.txt", content: "AGE-PLUGIN-YUBIKEY-1QQQQ\n",
			want: "%s:1: age plugin identities are not supported; use a native age identity (AGE-SECRET-KEY-1…)"},
		{name: "something else", file: "k.txt", content: "hunter2\n",
			want: "%s:1: not an age identity; expected AGE-SECRET-KEY-1… (one per line, # starts a comment)"},
		{name: "comments only", file: "k.txt", content: "# nothing here\n\n",
			want: "%s: holds no age identity; put one AGE-SECRET-KEY-1… line in it (age-keygen writes such a file)"},
		{name: "not armored", file: "k.asc", content: "hunter2\n",
			want: "%s: not an armored OpenPGP private key (openpgp: invalid argument: no armored data found); export it with `gpg --export-secret-keys --armor FINGERPRINT`"},
		{name: "public key only", file: "k.asc", content: armorPublic(t, p.entity),
			want: "%s: key " + p.fingerprint() + " is a public key only; export the private key with `gpg --export-secret-keys --armor " + p.fingerprint() + "`"},
		{name: "passphrase-protected key", file: "k.asc", content: armorLocked(t, p),
			want: "%s: key " + p.fingerprint() + " is protected by a passphrase, which Meridian cannot type; export a copy without one for Meridian"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file, tt.content)
			keys, err := KeysFromFiles(path)
			if err == nil {
				t.Fatalf("KeysFromFiles = %v, want an error", keys)
			}
			if diff := cmp.Diff(fmt.Sprintf(tt.want, path), err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			for _, leak := range []string{secretish, "hunter2", "QQQQ"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error quotes the file's content %q: %v", leak, err)
				}
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		_, err := KeysFromFiles(missing)
		want := missing + ": reading key file: open " + missing + ": no such file or directory"
		if err == nil || err.Error() != want {
			t.Errorf("error = %v, want %s", err, want)
		}
	})
}

func TestKeysFromEnv(t *testing.T) {
	a, b, c := newAgeKey(t), newAgeKey(t), newAgeKey(t)

	t.Run("both variables", func(t *testing.T) {
		t.Setenv(EnvAgeKey, a.id.String()+" "+b.id.String()+"\n"+a.id.String())
		t.Setenv(EnvAgeKeyFile, writeFile(t, "keys.txt", c.file))
		keys, err := KeysFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{a.recipient(), b.recipient(), c.recipient()}, keys.Public()); diff != "" {
			t.Errorf("Public() (-want +got):\n%s", diff)
		}
	})
	t.Run("neither variable", func(t *testing.T) {
		t.Setenv(EnvAgeKey, "")
		os.Unsetenv(EnvAgeKey)
		t.Setenv(EnvAgeKeyFile, "")
		os.Unsetenv(EnvAgeKeyFile)
		keys, err := KeysFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		if !keys.Empty() {
			t.Errorf("keys = %v, want none", keys)
		}
	})
	t.Run("malformed SOPS_AGE_KEY", func(t *testing.T) {
		t.Setenv(EnvAgeKey, "hunter2")
		t.Setenv(EnvAgeKeyFile, "")
		_, err := KeysFromEnv()
		want := "$SOPS_AGE_KEY:1: not an age identity; expected AGE-SECRET-KEY-1… (one per line, # starts a comment)"
		if err == nil || err.Error() != want {
			t.Errorf("error = %v, want %s", err, want)
		}
	})
	t.Run("missing SOPS_AGE_KEY_FILE", func(t *testing.T) {
		t.Setenv(EnvAgeKey, "")
		p := filepath.Join(t.TempDir(), "none.txt")
		t.Setenv(EnvAgeKeyFile, p)
		_, err := KeysFromEnv()
		want := p + ": reading the age key file $SOPS_AGE_KEY_FILE names: open " + p + ": no such file or directory"
		if err == nil || err.Error() != want {
			t.Errorf("error = %v, want %s", err, want)
		}
	})
}

func TestKeysMergeAndPrint(t *testing.T) {
	a, b := newAgeKey(t), newAgeKey(t)
	p := newPGPKey(t)
	merged := MergeKeys(ageKeys(t, a), nil, ageKeys(t, b, a), pgpKeys(t, p), pgpKeys(t, p), KeysForAWSKMS(aws.Config{Region: "us-east-1"}))
	want := []string{a.recipient(), b.recipient(), "pgp:" + p.fingerprint(), "aws-kms"}
	if diff := cmp.Diff(want, merged.Public()); diff != "" {
		t.Errorf("Public() (-want +got):\n%s", diff)
	}
	if got, want := merged.String(), "secrets.Keys["+strings.Join(want, " ")+"]"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, merged)
		if strings.Contains(out, "AGE-SECRET-KEY") || strings.Contains(out, a.id.String()) {
			t.Errorf("fmt %s prints key material: %s", format, out)
		}
	}
	if !MergeKeys().Empty() || !(*Keys)(nil).Empty() {
		t.Error("an empty merge is not Empty()")
	}
}
