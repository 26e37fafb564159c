package secrets

import (
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/aws/smithy-go"
	"github.com/getsops/sops/v3"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/internal/testenv/kmstest"
)

const tenantFile = "tenants/trucking.secrets.sops.yaml"

// plainSecrets is the content the tests encrypt; plainValues is what Decrypt
// must return for it and secretValues what must never appear in an error.
const plainSecrets = `portal:
    database:
        password: s3cr3t-Passw0rd
        port: 5432
        ratio: 0.75
        tls: true
    apiKeys:
        - key-aaaa-1111
        - key-bbbb-2222
    note_unencrypted: visible
billing:
    token: tok_9f8e7d6c
`

var plainValues = map[string]any{
	"portal": map[string]any{
		"database": map[string]any{
			"password": "s3cr3t-Passw0rd",
			"port":     5432,
			"ratio":    0.75,
			"tls":      true,
		},
		"apiKeys":          []any{"key-aaaa-1111", "key-bbbb-2222"},
		"note_unencrypted": "visible",
	},
	"billing": map[string]any{"token": "tok_9f8e7d6c"},
}

var secretValues = []string{"s3cr3t-Passw0rd", "5432", "key-aaaa-1111", "key-bbbb-2222", "tok_9f8e7d6c"}

// assertNoLeak fails when an error message contains a secret value.
func assertNoLeak(t *testing.T, err error, extra ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range append(append([]string(nil), secretValues...), extra...) {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error message contains the secret value %q: %v", s, err)
		}
	}
}

func TestDecrypt(t *testing.T) {
	ageA, ageB := newAgeKey(t), newAgeKey(t)
	pgpP := newPGPKey(t)
	pq, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	pqKeys, err := KeysFromFiles(writeFile(t, "pq.txt", "# post-quantum\n"+pq.String()+"\n"))
	if err != nil {
		t.Fatal(err)
	}

	srv := kmstest.NewServer()
	defer srv.Close()
	srv.AddCredentials("AKIDMERIDIAN", "meridian-secret")
	kmsUS := srv.CreateKey("us-east-1")
	kmsEU := srv.CreateKey("eu-west-1")
	kmsRoleOnly := srv.CreateKey("eu-west-1")
	role := "arn:aws:iam::111122223333:role/sops-decrypt"
	srv.AddRole(role, kmsRoleOnly)
	srv.AddCredentials("AKIDNOKEYS", "nokeys-secret", "arn:aws:kms:eu-west-1:111122223333:key/none")
	kmsCfg := kmsConfig(srv, "AKIDMERIDIAN", "meridian-secret")
	noKeysCfg := kmsConfig(srv, "AKIDNOKEYS", "nokeys-secret")

	enc := &encrypter{pubrings: map[string]string{pgpP.fingerprint(): pgpP.pubring}, kms: kmsCfg}
	ctxTenant := map[string]*string{"tenant": ptr("trucking")}

	tests := []struct {
		name string
		file []byte
		keys *Keys
	}{
		{
			name: "age identity from a key file",
			file: enc.sopsFile(t, plainSecrets, 0, sops.KeyGroup{ageMK(ageA)}),
			keys: ageKeys(t, ageA),
		},
		{
			name: "age identity among several",
			file: enc.sopsFile(t, plainSecrets, 0, sops.KeyGroup{ageMK(ageA)}),
			keys: ageKeys(t, ageB, ageA),
		},
		{
			name: "post-quantum age identity",
			file: enc.sopsFile(t, plainSecrets, 0, sops.KeyGroup{&sopsage.MasterKey{Recipient: pq.Recipient().String()}}),
			keys: pqKeys,
		},
		{
			name: "OpenPGP private key",
			file: enc.sopsFile(t, plainSecrets, 0, sops.KeyGroup{pgpMK(pgpP)}),
			keys: pgpKeys(t, pgpP),
		},
		{
			name: "any key of a single group",
			file: enc.sopsFile(t, plainSecrets, 0, sops.KeyGroup{ageMK(ageA), pgpMK(pgpP)}),
			keys: pgpKeys(t, pgpP),
		},
		{
			name: "threshold 2 of the groups age and pgp",
			file: enc.sopsFile(t, plainSecrets, 2, sops.KeyGroup{ageMK(ageA)}, sops.KeyGroup{pgpMK(pgpP)}),
			keys: MergeKeys(ageKeys(t, ageA), pgpKeys(t, pgpP)),
		},
		{
			name: "threshold 2 of 3 groups without the KMS one",
			file: enc.sopsFile(t, plainSecrets, 2, sops.KeyGroup{ageMK(ageA)}, sops.KeyGroup{pgpMK(pgpP)}, sops.KeyGroup{kmsMK(kmsUS, "", nil)}),
			keys: MergeKeys(ageKeys(t, ageA), pgpKeys(t, pgpP)),
		},
		{
			name: "threshold 2 of 3 groups with KMS and age",
			file: enc.sopsFile(t, plainSecrets, 2, sops.KeyGroup{ageMK(ageA)}, sops.KeyGroup{pgpMK(pgpP)}, sops.KeyGroup{kmsMK(kmsUS, "", nil)}),
			keys: MergeKeys(ageKeys(t, ageA), KeysForAWSKMS(kmsCfg)),
		},
		{
			name: "AWS KMS key with encryption context",
			file: enc.sopsFile(t, plainSecrets, 0, sops.KeyGroup{kmsMK(kmsUS, "", ctxTenant)}),
			keys: KeysForAWSKMS(kmsCfg),
		},
		{
			name: "AWS KMS key in another region than the configuration",
			file: enc.sopsFile(t, plainSecrets, 0, sops.KeyGroup{kmsMK(kmsEU, "", nil)}),
			keys: KeysForAWSKMS(kmsCfg),
		},
		{
			name: "AWS KMS key through an assumed role",
			file: enc.sopsFile(t, plainSecrets, 0, sops.KeyGroup{kmsMK(kmsRoleOnly, role, nil)}),
			keys: KeysForAWSKMS(noKeysCfg),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewDecryptor(tt.keys).Decrypt(tenantFile, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(plainValues, got); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}

	assumed := func() int {
		n := 0
		for _, c := range srv.Calls() {
			if c.Service == "sts" && c.Operation == "AssumeRole" && c.AccessKeyID == "AKIDNOKEYS" && c.Error == "" {
				n++
			}
		}
		return n
	}
	if n := assumed(); n != 1 {
		t.Errorf("the role was assumed %d times with the configured credentials, want once; calls: %+v", n, srv.Calls())
	}
	// One Decryptor assumes a role once and reuses the credentials.
	roleFile := enc.sopsFile(t, plainSecrets, 0, sops.KeyGroup{kmsMK(kmsRoleOnly, role, nil)})
	d := NewDecryptor(KeysForAWSKMS(noKeysCfg))
	for range 3 {
		if _, err := d.Decrypt(tenantFile, roleFile); err != nil {
			t.Fatal(err)
		}
	}
	if n := assumed(); n != 2 {
		t.Errorf("three decryptions by one Decryptor assumed the role %d times, want once", n-1)
	}
}

func TestDecryptRefusesWithoutAMatchingKey(t *testing.T) {
	ageA, ageB := newAgeKey(t), newAgeKey(t)
	pgpP, pgpQ := newPGPKey(t), newPGPKey(t)

	srv := kmstest.NewServer()
	defer srv.Close()
	srv.AddCredentials("AKIDOWNER", "owner-secret")
	kmsKey := srv.CreateKey("eu-west-1")
	srv.AddCredentials("AKIDOTHER", "other-secret", "arn:aws:kms:eu-west-1:111122223333:key/none")
	enc := &encrypter{pubrings: map[string]string{pgpP.fingerprint(): pgpP.pubring}, kms: kmsConfig(srv, "AKIDOWNER", "owner-secret")}

	// Encrypt first, so that the KMS request ids in the messages are fixed.
	ageOnly := enc.sopsFile(t, plainSecrets, 0, sops.KeyGroup{ageMK(ageA)})
	mixed := enc.sopsFile(t, plainSecrets, 0, sops.KeyGroup{ageMK(ageA), pgpMK(pgpP), kmsMK(kmsKey, "", nil)})
	twoGroups := enc.sopsFile(t, plainSecrets, 2, sops.KeyGroup{ageMK(ageA)}, sops.KeyGroup{pgpMK(pgpP)})
	kmsOnly := enc.sopsFile(t, plainSecrets, 0, sops.KeyGroup{kmsMK(kmsKey, "", nil)})

	advice := "; add the matching key to Meridian's key configuration"
	tests := []struct {
		name string
		file []byte
		keys *Keys
		want string
	}{
		{
			name: "another age identity",
			file: ageOnly,
			keys: ageKeys(t, ageB),
			want: tenantFile + ": no configured key can decrypt it (encrypted for " + ageA.recipient() + ")" + advice,
		},
		{
			name: "no keys configured",
			file: mixed,
			keys: nil,
			want: tenantFile + ": no configured key can decrypt it (encrypted for " + ageA.recipient() + ", pgp:" + pgpP.fingerprint() + ", " + kmsKey + ")" + advice,
		},
		{
			name: "other age and OpenPGP keys, KMS not enabled",
			file: mixed,
			keys: MergeKeys(ageKeys(t, ageB), pgpKeys(t, pgpQ)),
			want: tenantFile + ": no configured key can decrypt it (encrypted for " + ageA.recipient() + ", pgp:" + pgpP.fingerprint() + ", " + kmsKey + ")" + advice,
		},
		{
			name: "one of two required key groups",
			file: twoGroups,
			keys: ageKeys(t, ageA),
			want: tenantFile + ": no configured key can decrypt it: it needs keys of 2 of its 2 key groups and the configured keys open 1 " +
				"(group 2 is encrypted for pgp:" + pgpP.fingerprint() + ")" + advice,
		},
		{
			name: "KMS refuses the configured credentials",
			file: kmsOnly,
			keys: KeysForAWSKMS(kmsConfig(srv, "AKIDOTHER", "other-secret")),
			want: tenantFile + ": no configured key can decrypt it (encrypted for " + kmsKey + "); " + kmsKey +
				": AWS KMS: operation error KMS: Decrypt, https response error StatusCode: 400, RequestID: 00000000-0000-4000-8000-000000000003, " +
				"api error AccessDeniedException: User: arn:aws:iam::111122223333:user/AKIDOTHER is not authorized to perform: kms:Decrypt on resource: " + kmsKey +
				" because no identity-based policy allows the kms:Decrypt action" + advice + ", or fix the access to the key that failed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewDecryptor(tt.keys).Decrypt(tenantFile, tt.file)
			if err == nil {
				t.Fatalf("Decrypt succeeded with %d apps, want an error", len(got))
			}
			if !errors.Is(err, ErrNoKey) {
				t.Errorf("error %v is not ErrNoKey", err)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			assertNoLeak(t, err)
			var apiErr smithy.APIError
			if got, want := errors.As(err, &apiErr), strings.Contains(tt.name, "KMS refuses"); got != want {
				t.Errorf("errors.As(err, smithy.APIError) = %v, want %v", got, want)
			} else if got && apiErr.ErrorCode() != "AccessDeniedException" {
				t.Errorf("AWS error code = %s, want AccessDeniedException", apiErr.ErrorCode())
			}
		})
	}
}

func TestDecryptRefusesTamperedFiles(t *testing.T) {
	ageA := newAgeKey(t)
	enc := &encrypter{}
	file := string(enc.sopsFile(t, plainSecrets, 0, sops.KeyGroup{ageMK(ageA)}))
	keys := ageKeys(t, ageA)

	// lineWith returns the line of file that contains s.
	lineWith := func(s string) string {
		for _, l := range strings.Split(file, "\n") {
			if strings.Contains(l, s) {
				return l
			}
		}
		t.Fatalf("no line with %q in\n%s", s, file)
		return ""
	}
	flipData := func(line string) string {
		i := strings.Index(line, "data:") + len("data:")
		c := "A"
		if line[i] == 'A' {
			c = "B"
		}
		return line[:i] + c + line[i+1:]
	}
	valueChanged := func(f string) string {
		l := lineWith("password: ENC[")
		return strings.Replace(f, l, flipData(l), 1)
	}
	valueMoved := func(f string) string {
		return strings.Replace(f, "password: ENC[", "passwd: ENC[", 1)
	}
	plainAdded := func(f string) string {
		return strings.Replace(f, "    database:\n", "    database:\n        extra: hunter2-plain\n", 1)
	}
	unencryptedChanged := func(f string) string {
		return strings.Replace(f, "note_unencrypted: visible", "note_unencrypted: changed", 1)
	}
	valueRemoved := func(f string) string {
		l := lineWith("token: ENC[")
		return strings.Replace(strings.Replace(f, l+"\n", "", 1), "billing:\n", "billing: {}\n", 1)
	}
	dateChanged := func(f string) string {
		l := lineWith("lastmodified:")
		return strings.Replace(f, l, `    lastmodified: "2020-01-01T00:00:00Z"`, 1)
	}

	const changed = tenantFile + ": MAC mismatch: the content no longer matches the MAC sops recorded, so the file was changed without sops; " +
		"restore it from git history and change it only with `sops edit " + tenantFile + "`"
	tests := []struct {
		name   string
		tamper func(string) string
		want   string
	}{
		{
			name:   "encrypted value changed",
			tamper: valueChanged,
			want: tenantFile + ": MAC mismatch: an encrypted value does not decrypt with the file's data key, so it was changed or moved after sops encrypted it; " +
				"restore the file from git history or set the value again with `sops edit " + tenantFile + "`",
		},
		{
			name:   "encrypted value moved to another key",
			tamper: valueMoved,
			want: tenantFile + ": MAC mismatch: an encrypted value does not decrypt with the file's data key, so it was changed or moved after sops encrypted it; " +
				"restore the file from git history or set the value again with `sops edit " + tenantFile + "`",
		},
		{
			name:   "plain-text value added",
			tamper: plainAdded,
			want: tenantFile + ": MAC mismatch: a value that should be encrypted is in plain text, so it was added without sops; " +
				"remove it and set it again with `sops edit " + tenantFile + "`",
		},
		{name: "unencrypted value changed", tamper: unencryptedChanged, want: changed},
		{name: "encrypted value removed", tamper: valueRemoved, want: changed},
		{name: "last modified date changed", tamper: dateChanged, want: changed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tampered := tt.tamper(file)
			if tampered == file {
				t.Fatal("the tampering changed nothing")
			}
			got, err := NewDecryptor(keys).Decrypt(tenantFile, []byte(tampered))
			if err == nil {
				t.Fatalf("Decrypt accepted a tampered file and returned %d apps", len(got))
			}
			if !errors.Is(err, ErrMACMismatch) {
				t.Errorf("error %v is not ErrMACMismatch", err)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			assertNoLeak(t, err, "hunter2-plain")
		})
	}

	// The untampered file still decrypts: the refusals above are the tampering's.
	if _, err := NewDecryptor(keys).Decrypt(tenantFile, []byte(file)); err != nil {
		t.Fatal(err)
	}
}

func TestDecryptRefusesDamagedKeyGroups(t *testing.T) {
	ageA := newAgeKey(t)
	pgpP := newPGPKey(t)
	enc := &encrypter{pubrings: map[string]string{pgpP.fingerprint(): pgpP.pubring}}
	groups := []sops.KeyGroup{{ageMK(ageA)}, {pgpMK(pgpP)}}
	keys := MergeKeys(ageKeys(t, ageA), pgpKeys(t, pgpP))

	// replacePart re-encrypts group 2's part of the data key with newPart.
	replacePart := func(file []byte, newPart func(old []byte) []byte) []byte {
		store := sopsyaml.NewStore(&config.YAMLStoreConfig{})
		tree, err := store.LoadEncryptedFile(file)
		if err != nil {
			t.Fatal(err)
		}
		mk := tree.Metadata.KeyGroups[1][0]
		old, err := keys.pgpDecryptForTest(mk.EncryptedDataKey())
		if err != nil {
			t.Fatal(err)
		}
		k := keyservice.KeyFromMasterKey(mk)
		rsp, err := enc.Encrypt(t.Context(), &keyservice.EncryptRequest{Key: &k, Plaintext: newPart(old)})
		if err != nil {
			t.Fatal(err)
		}
		mk.SetEncryptedDataKey(rsp.Ciphertext)
		out, err := store.EmitEncryptedFile(tree)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	file := enc.sopsFile(t, plainSecrets, 2, groups...)
	other := enc.sopsFile(t, plainSecrets, 2, groups...)

	tests := []struct {
		name string
		file []byte
		want string
	}{
		{
			name: "a part of another file's data key",
			file: replacePart(file, func([]byte) []byte {
				store := sopsyaml.NewStore(&config.YAMLStoreConfig{})
				tree, err := store.LoadEncryptedFile(other)
				if err != nil {
					t.Fatal(err)
				}
				part, err := keys.pgpDecryptForTest(tree.Metadata.KeyGroups[1][0].EncryptedDataKey())
				if err != nil {
					t.Fatal(err)
				}
				return part
			}),
			want: tenantFile + ": MAC mismatch: an encrypted value does not decrypt with the file's data key, so it was changed or moved after sops encrypted it; " +
				"restore the file from git history or set the value again with `sops edit " + tenantFile + "`",
		},
		{
			name: "a part of the wrong length",
			file: replacePart(file, func(old []byte) []byte { return old[:len(old)-1] }),
			want: tenantFile + ": MAC mismatch: the configured keys open 2 of its 2 key groups, but their parts of the data key do not combine, " +
				"so its sops metadata was changed; restore the file from git history",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewDecryptor(keys).Decrypt(tenantFile, tt.file)
			if err == nil {
				t.Fatalf("Decrypt returned %d apps, want an error", len(got))
			}
			if !errors.Is(err, ErrMACMismatch) {
				t.Errorf("error %v is not ErrMACMismatch", err)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// pgpDecryptForTest decrypts a PGP-encrypted data key part with the keys.
func (k *Keys) pgpDecryptForTest(enc []byte) ([]byte, error) {
	return NewDecryptor(k).decryptPGP(enc)
}

func TestDecryptRefusesMalformedFiles(t *testing.T) {
	ageA := newAgeKey(t)
	enc := &encrypter{}
	keys := ageKeys(t, ageA)
	notEncrypted := tenantFile + ": not encrypted with SOPS; encrypt it with `sops --encrypt --in-place " + tenantFile + "`"

	tests := []struct {
		name    string
		file    []byte
		want    string
		wantErr error
	}{
		{name: "plain YAML", file: []byte(plainSecrets), want: notEncrypted, wantErr: ErrNotEncrypted},
		{name: "empty file", file: nil, want: notEncrypted, wantErr: ErrNotEncrypted},
		{
			name: "invalid YAML",
			file: []byte("portal: [unclosed\n"),
			want: tenantFile + ": not a valid SOPS YAML file: yaml: line 1: did not find expected ',' or ']'",
		},
		{
			name: "app values that are not a mapping",
			file: enc.sopsFile(t, "portal: just-a-string\nbilling:\n    token: tok_9f8e7d6c\n", 0, sops.KeyGroup{ageMK(ageA)}),
			want: tenantFile + `: "portal" must map to the app's values (a mapping), not a string; nest the values under the app name`,
		},
		{
			name: "app values that are a list",
			file: enc.sopsFile(t, "portal:\n    - key-aaaa-1111\n", 0, sops.KeyGroup{ageMK(ageA)}),
			want: tenantFile + `: "portal" must map to the app's values (a mapping), not a list; nest the values under the app name`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewDecryptor(keys).Decrypt(tenantFile, tt.file)
			if err == nil {
				t.Fatalf("Decrypt returned %v, want an error", got)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v is not %v", err, tt.wantErr)
			}
			assertNoLeak(t, err)
		})
	}
}

func TestDecryptIsSafeForConcurrentUse(t *testing.T) {
	ageA := newAgeKey(t)
	pgpP := newPGPKey(t)
	enc := &encrypter{pubrings: map[string]string{pgpP.fingerprint(): pgpP.pubring}}
	files := [][]byte{
		enc.sopsFile(t, plainSecrets, 0, sops.KeyGroup{ageMK(ageA)}),
		enc.sopsFile(t, plainSecrets, 0, sops.KeyGroup{pgpMK(pgpP)}),
		enc.sopsFile(t, plainSecrets, 2, sops.KeyGroup{ageMK(ageA)}, sops.KeyGroup{pgpMK(pgpP)}),
	}
	d := NewDecryptor(MergeKeys(ageKeys(t, ageA), pgpKeys(t, pgpP)))
	errs := make(chan error, 12)
	for i := range 12 {
		go func() {
			got, err := d.Decrypt(tenantFile, files[i%len(files)])
			if err == nil && !cmp.Equal(plainValues, got) {
				err = errors.New("wrong values")
			}
			errs <- err
		}()
	}
	for range 12 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func ptr[T any](v T) *T { return &v }
