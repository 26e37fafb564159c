package secrets

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"filippo.io/age"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/getsops/sops/v3"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/keyservice"
	"google.golang.org/grpc"
)

// errNotHeld marks a master key none of the configured keys matches.
var errNotHeld = errors.New("not configured")

// keyService is the sops key service of one DecryptContext call: it decrypts
// a file's data key (or its Shamir parts) with the Decryptor's keys only, and
// records what happened to each master key for the error message.
type keyService struct {
	ctx     context.Context
	d       *Decryptor
	outcome map[string]error // by describe(key): nil when it decrypted
}

var _ keyservice.KeyServiceClient = (*keyService)(nil)

// Encrypt is refused: Meridian only decrypts.
func (ks *keyService) Encrypt(context.Context, *keyservice.EncryptRequest, ...grpc.CallOption) (*keyservice.EncryptResponse, error) {
	return nil, errors.New("meridian does not encrypt SOPS files")
}

// Decrypt decrypts one encrypted data key (or part of it) with the matching
// configured key.
func (ks *keyService) Decrypt(_ context.Context, req *keyservice.DecryptRequest, _ ...grpc.CallOption) (*keyservice.DecryptResponse, error) {
	var (
		plain []byte
		err   error
	)
	switch k := req.Key.GetKeyType().(type) {
	case *keyservice.Key_AgeKey:
		plain, err = ks.d.decryptAge(k.AgeKey, req.Ciphertext)
	case *keyservice.Key_PgpKey:
		plain, err = ks.d.decryptPGP(req.Ciphertext)
	case *keyservice.Key_KmsKey:
		plain, err = ks.d.decryptKMS(ks.ctx, k.KmsKey, req.Ciphertext)
	default:
		err = errNotHeld
	}
	ks.outcome[describe(req.Key)] = err
	if err != nil {
		return nil, err
	}
	return &keyservice.DecryptResponse{Plaintext: plain}, nil
}

func (d *Decryptor) decryptAge(k *keyservice.AgeKey, ciphertext []byte) ([]byte, error) {
	if len(d.keys.age) == 0 {
		// Without identities sops' age key source would read them from the
		// environment and the user's files.
		return nil, errNotHeld
	}
	ids := make(sopsage.ParsedIdentities, len(d.keys.age))
	for i, a := range d.keys.age {
		ids[i] = a.identity
	}
	mk := &sopsage.MasterKey{Recipient: k.Recipient, EncryptedKey: string(ciphertext)}
	ids.ApplyToMasterKey(mk)
	plain, err := mk.Decrypt()
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return nil, errNotHeld
	}
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	return plain, nil
}

func (d *Decryptor) decryptPGP(ciphertext []byte) ([]byte, error) {
	if len(d.keys.pgp) == 0 {
		return nil, errNotHeld
	}
	block, err := armor.Decode(bytes.NewReader(ciphertext))
	if err != nil {
		return nil, fmt.Errorf("OpenPGP: the encrypted data key is not armored: %w", err)
	}
	md, err := openpgp.ReadMessage(block.Body, d.keys.pgp, nil, nil)
	if errors.Is(err, pgperrors.ErrKeyIncorrect) {
		return nil, errNotHeld
	}
	if err != nil {
		return nil, fmt.Errorf("OpenPGP: %w", err)
	}
	plain, err := io.ReadAll(md.UnverifiedBody)
	if err != nil {
		return nil, fmt.Errorf("OpenPGP: %w", err)
	}
	return plain, nil
}

// kmsARN matches a KMS key or alias ARN and captures its region, as sops does.
var kmsARN = regexp.MustCompile(`^arn:aws[\w-]*:kms:([^:]+):[0-9]+:(key|alias)/.+$`)

func (d *Decryptor) decryptKMS(ctx context.Context, k *keyservice.KmsKey, ciphertext []byte) ([]byte, error) {
	if d.keys.awsKMS == nil {
		return nil, errNotHeld
	}
	m := kmsARN.FindStringSubmatch(k.Arn)
	if m == nil {
		return nil, errors.New("AWS KMS: not a KMS key ARN")
	}
	blob, err := base64.StdEncoding.DecodeString(string(ciphertext))
	if err != nil {
		return nil, fmt.Errorf("AWS KMS: the encrypted data key is not base64: %w", err)
	}
	out, err := d.kmsClient(m[1], k.Role).Decrypt(ctx, &kms.DecryptInput{
		KeyId:             aws.String(k.Arn),
		CiphertextBlob:    blob,
		EncryptionContext: k.Context,
	})
	if err != nil {
		return nil, fmt.Errorf("AWS KMS: %w", err)
	}
	return out.Plaintext, nil
}

// kmsClient returns the cached KMS client for a region, and for a role when
// the key names one: the role is assumed through STS in that region with the
// configured credentials and endpoint, and its credentials are refreshed
// before they expire.
func (d *Decryptor) kmsClient(region, role string) *kms.Client {
	key := region + " " + role
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.kmsClients[key]; ok {
		return c
	}
	cfg := d.keys.awsKMS.Copy()
	cfg.Region = region
	if role != "" {
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), role, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "meridian"
		}))
	}
	c := kms.NewFromConfig(cfg)
	d.kmsClients[key] = c
	return c
}

// describe names a master key by its public identifier.
func describe(k *keyservice.Key) string {
	switch t := k.GetKeyType().(type) {
	case *keyservice.Key_AgeKey:
		return t.AgeKey.Recipient
	case *keyservice.Key_PgpKey:
		return "pgp:" + t.PgpKey.Fingerprint
	case *keyservice.Key_KmsKey:
		if t.KmsKey.Role != "" {
			return t.KmsKey.Arn + "+" + t.KmsKey.Role
		}
		return t.KmsKey.Arn
	case *keyservice.Key_GcpKmsKey:
		return "gcp-kms:" + t.GcpKmsKey.ResourceId
	case *keyservice.Key_AzureKeyvaultKey:
		a := t.AzureKeyvaultKey
		return "azure-kv:" + a.VaultUrl + "/keys/" + a.Name + "/" + a.Version
	case *keyservice.Key_VaultKey:
		v := t.VaultKey
		return "hc-vault:" + v.VaultAddress + "/v1/" + v.EnginePath + "/keys/" + v.KeyName
	case *keyservice.Key_HckmsKey:
		return "hckms:" + t.HckmsKey.KeyId
	}
	return "unknown key type"
}

// noKeyError explains why the data key could not be recovered: which keys the
// file is encrypted for, and what went wrong with the configured keys that
// match some of them.
func (ks *keyService) noKeyError(file string, md sops.Metadata) error {
	var (
		groups   [][]string
		failures []string
		causes   = []error{ErrNoKey}
		opened   int
	)
	for _, g := range md.KeyGroups {
		var descs []string
		open := false
		for _, mk := range g {
			k := keyservice.KeyFromMasterKey(mk)
			desc := describe(&k)
			descs = append(descs, desc)
			err, tried := ks.outcome[desc]
			switch {
			case tried && err == nil:
				open = true
			case tried && !errors.Is(err, errNotHeld):
				failures = append(failures, desc+": "+err.Error())
				causes = append(causes, err)
			}
		}
		if open {
			opened++
		}
		// Name local keys first, in the order sops tries them.
		slices.SortStableFunc(descs, func(a, b string) int { return cmp.Compare(descRank(a), descRank(b)) })
		groups = append(groups, descs)
	}
	need := md.ShamirThreshold
	if need <= 0 {
		need = len(groups)
	}
	var b strings.Builder
	switch {
	case len(groups) > 1 && opened >= need:
		return fmt.Errorf("%s: %w: the configured keys open %d of its %d key groups, but their parts of the data key do not combine, "+
			"so its sops metadata was changed; restore the file from git history", file, ErrMACMismatch, opened, len(groups))
	case len(groups) == 0:
		return fmt.Errorf("%s: %w (its sops metadata names no key); encrypt it again with `sops --encrypt`", file, ErrNoKey)
	case len(groups) == 1:
		fmt.Fprintf(&b, " (encrypted for %s)", strings.Join(groups[0], ", "))
	default:
		var missing []string
		for i, g := range groups {
			if !groupOpened(ks.outcome, g) {
				missing = append(missing, fmt.Sprintf("group %d is encrypted for %s", i+1, strings.Join(g, ", ")))
			}
		}
		fmt.Fprintf(&b, ": it needs keys of %d of its %d key groups and the configured keys open %d (%s)",
			need, len(groups), opened, strings.Join(missing, "; "))
	}
	for _, f := range failures {
		b.WriteString("; ")
		b.WriteString(f)
	}
	b.WriteString("; add the matching key to Meridian's key configuration")
	if len(failures) > 0 {
		b.WriteString(", or fix the access to the key that failed")
	}
	return &keyError{msg: file + ": " + ErrNoKey.Error() + b.String(), causes: causes}
}

// keyError is ErrNoKey with the errors of the configured keys that were tried
// and failed, so that callers can tell a throttled or unreachable KMS
// (errors.As on the AWS error) from a missing key.
type keyError struct {
	msg    string
	causes []error
}

func (e *keyError) Error() string   { return e.msg }
func (e *keyError) Unwrap() []error { return e.causes }

// descRank orders key descriptions: age, then OpenPGP, then the rest.
func descRank(desc string) int {
	switch {
	case strings.HasPrefix(desc, "age1"):
		return 0
	case strings.HasPrefix(desc, "pgp:"):
		return 1
	}
	return 2
}

func groupOpened(outcome map[string]error, descs []string) bool {
	for _, d := range descs {
		if err, ok := outcome[d]; ok && err == nil {
			return true
		}
	}
	return false
}
