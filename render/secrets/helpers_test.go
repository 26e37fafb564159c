package secrets

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
	sopskms "github.com/getsops/sops/v3/kms"
	"github.com/getsops/sops/v3/pgp"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
	"google.golang.org/grpc"

	"meridian.dev/meridian/internal/testenv/kmstest"
)

// ageKeyPair is a fresh age identity and its key file content.
type ageKeyPair struct {
	id   *age.X25519Identity
	file string // as age-keygen writes it
}

func (k ageKeyPair) recipient() string { return k.id.Recipient().String() }

func newAgeKey(t testing.TB) ageKeyPair {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	file := fmt.Sprintf("# created: %s\n# public key: %s\n%s\n", time.Now().UTC().Format(time.RFC3339), id.Recipient(), id)
	return ageKeyPair{id: id, file: file}
}

// pgpKeyPair is a fresh OpenPGP key: the entity, its armored private key and
// a binary public keyring file (what sops' PGP key source encrypts with).
type pgpKeyPair struct {
	entity  *openpgp.Entity
	armored string
	pubring string
}

func (k pgpKeyPair) fingerprint() string { return fingerprint(k.entity) }

func newPGPKey(t testing.TB) pgpKeyPair {
	t.Helper()
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA}
	e, err := openpgp.NewEntity("Meridian Test", "", "test@example.invalid", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var priv bytes.Buffer
	w, err := armor.Encode(&priv, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivate(w, cfg); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	if err := e.Serialize(&pub); err != nil {
		t.Fatal(err)
	}
	ring := filepath.Join(t.TempDir(), "pubring.gpg")
	if err := os.WriteFile(ring, pub.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return pgpKeyPair{entity: e, armored: priv.String(), pubring: ring}
}

// encrypter is the key service the tests encrypt with, through sops' own
// key sources for age and PGP (public keys only) and the real KMS client
// against a kmstest server for AWS KMS.
type encrypter struct {
	pubrings map[string]string // PGP fingerprint → public keyring file
	kms      aws.Config
}

func (e *encrypter) Encrypt(ctx context.Context, req *keyservice.EncryptRequest, _ ...grpc.CallOption) (*keyservice.EncryptResponse, error) {
	switch k := req.Key.GetKeyType().(type) {
	case *keyservice.Key_AgeKey:
		mk := &sopsage.MasterKey{Recipient: k.AgeKey.Recipient}
		if err := mk.Encrypt(req.Plaintext); err != nil {
			return nil, err
		}
		return &keyservice.EncryptResponse{Ciphertext: mk.EncryptedDataKey()}, nil
	case *keyservice.Key_PgpKey:
		mk := pgp.NewMasterKeyFromFingerprint(k.PgpKey.Fingerprint)
		ring, ok := e.pubrings[k.PgpKey.Fingerprint]
		if !ok {
			return nil, fmt.Errorf("test has no public keyring for %s", k.PgpKey.Fingerprint)
		}
		pgp.PubRing(ring).ApplyToMasterKey(mk)
		if err := mk.Encrypt(req.Plaintext); err != nil {
			return nil, err
		}
		return &keyservice.EncryptResponse{Ciphertext: mk.EncryptedDataKey()}, nil
	case *keyservice.Key_KmsKey:
		m := kmsARN.FindStringSubmatch(k.KmsKey.Arn)
		if m == nil {
			return nil, fmt.Errorf("not a KMS ARN: %s", k.KmsKey.Arn)
		}
		cfg := e.kms.Copy()
		cfg.Region = m[1]
		out, err := awskms.NewFromConfig(cfg).Encrypt(ctx, &awskms.EncryptInput{
			KeyId: aws.String(k.KmsKey.Arn), Plaintext: req.Plaintext, EncryptionContext: k.KmsKey.Context,
		})
		if err != nil {
			return nil, err
		}
		return &keyservice.EncryptResponse{Ciphertext: []byte(base64.StdEncoding.EncodeToString(out.CiphertextBlob))}, nil
	}
	return nil, errors.New("test encrypter: unsupported key type")
}

func (e *encrypter) Decrypt(context.Context, *keyservice.DecryptRequest, ...grpc.CallOption) (*keyservice.DecryptResponse, error) {
	return nil, errors.New("test encrypter does not decrypt")
}

// sopsFile encrypts plain (YAML) for the key groups with the sops library, as
// `sops --encrypt` would, and returns the encrypted file.
func (e *encrypter) sopsFile(t testing.TB, plain string, threshold int, groups ...sops.KeyGroup) []byte {
	t.Helper()
	store := sopsyaml.NewStore(&config.YAMLStoreConfig{})
	branches, err := store.LoadPlainFile([]byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	tree := sops.Tree{Branches: branches, Metadata: sops.Metadata{
		KeyGroups:         groups,
		ShamirThreshold:   threshold,
		UnencryptedSuffix: sops.DefaultUnencryptedSuffix,
		Version:           "3.13.3",
	}}
	dataKey, errs := tree.GenerateDataKeyWithKeyServices([]keyservice.KeyServiceClient{e})
	if len(errs) > 0 {
		t.Fatalf("encrypting the data key: %v", errs)
	}
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(dataKey, cipher)
	if err != nil {
		t.Fatal(err)
	}
	tree.Metadata.LastModified = time.Now().UTC()
	tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		t.Fatal(err)
	}
	out, err := store.EmitEncryptedFile(tree)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Master keys for sops key groups.

func ageMK(k ageKeyPair) *sopsage.MasterKey { return &sopsage.MasterKey{Recipient: k.recipient()} }

func pgpMK(k pgpKeyPair) *pgp.MasterKey { return pgp.NewMasterKeyFromFingerprint(k.fingerprint()) }

func kmsMK(arn, role string, ctx map[string]*string) *sopskms.MasterKey {
	return sopskms.NewMasterKey(arn, role, ctx)
}

// kmsConfig is an explicit SDK configuration for the test server; nothing
// comes from the environment (AWS_CA_BUNDLE may be set on these machines).
func kmsConfig(srv *kmstest.Server, akid, secret string) aws.Config {
	return aws.Config{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider(akid, secret, ""),
		RetryMaxAttempts: 1,
	}
}

// ageKeys and pgpKeys build Keys through the public loaders.
func ageKeys(t testing.TB, ks ...ageKeyPair) *Keys {
	t.Helper()
	var paths []string
	for i, k := range ks {
		p := filepath.Join(t.TempDir(), fmt.Sprintf("key%d.txt", i))
		if err := os.WriteFile(p, []byte(k.file), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	keys, err := KeysFromFiles(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func pgpKeys(t testing.TB, ks ...pgpKeyPair) *Keys {
	t.Helper()
	var paths []string
	for i, k := range ks {
		p := filepath.Join(t.TempDir(), fmt.Sprintf("key%d.asc", i))
		if err := os.WriteFile(p, []byte(k.armored), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	keys, err := KeysFromFiles(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
