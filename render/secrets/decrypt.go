package secrets

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
)

// The classes of refusal that callers may want to tell apart with errors.Is.
// Decrypt's other errors concern the file's YAML or its layout.
var (
	// ErrNotEncrypted: the file has no sops metadata.
	ErrNotEncrypted = errors.New("not encrypted with SOPS")
	// ErrNoKey: no configured key recovers the data key.
	ErrNoKey = errors.New("no configured key can decrypt it")
	// ErrMACMismatch: the file was changed after sops encrypted it.
	ErrMACMismatch = errors.New("MAC mismatch")
)

// Decryptor decrypts SOPS files with a fixed set of Keys. It is safe for
// concurrent use.
type Decryptor struct {
	keys *Keys

	mu         sync.Mutex
	kmsClients map[string]*kms.Client // by region and role ARN
}

// NewDecryptor returns a Decryptor that uses keys, and nothing else, to
// decrypt.
func NewDecryptor(keys *Keys) *Decryptor {
	if keys == nil {
		keys = &Keys{}
	}
	return &Decryptor{keys: keys, kmsClients: map[string]*kms.Client{}}
}

// Decrypt is DecryptContext without a deadline of its own.
func (d *Decryptor) Decrypt(file string, data []byte) (map[string]any, error) {
	return d.DecryptContext(context.Background(), file, data)
}

// DecryptContext decrypts data, the content of the SOPS-encrypted YAML file
// named file, and returns its values by app name: each top-level key must map
// to a mapping. It recovers the data key from the file's key groups as sops
// does (any key of a group opens it; with several groups, the file's Shamir
// threshold of them is needed) and verifies the file's MAC, so a file changed
// after encryption is refused rather than partly used. ctx bounds the calls
// to AWS KMS. Errors start with file and never contain a decrypted value.
func (d *Decryptor) DecryptContext(ctx context.Context, file string, data []byte) (map[string]any, error) {
	store := sopsyaml.NewStore(&config.YAMLStoreConfig{})
	tree, err := store.LoadEncryptedFile(data)
	if errors.Is(err, sops.MetadataNotFound) {
		return nil, fmt.Errorf("%s: %w; encrypt it with `sops --encrypt --in-place %s`", file, ErrNotEncrypted, file)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: not a valid SOPS YAML file: %w", file, err)
	}
	if len(tree.Branches) != 1 {
		return nil, fmt.Errorf("%s: holds %d YAML documents; keep the secret values in one document", file, len(tree.Branches))
	}

	ks := &keyService{ctx: ctx, d: d, outcome: map[string]error{}}
	dataKey, err := tree.Metadata.GetDataKeyWithKeyServices([]keyservice.KeyServiceClient{ks}, sops.DefaultDecryptionOrder)
	if err != nil {
		return nil, ks.noKeyError(file, tree.Metadata)
	}

	cipher := aes.NewCipher()
	// sops' messages for values that do not decrypt may quote the value
	// (a plain-text value added by hand), so they are never passed on.
	mac, err := tree.Decrypt(dataKey, cipher)
	if err != nil {
		// sops reports a value that is not in its encrypted format only as text.
		if strings.Contains(err.Error(), "does not match sops' data format") {
			return nil, fmt.Errorf("%s: %w: a value that should be encrypted is in plain text, so it was added without sops; "+
				"remove it and set it again with `sops edit %s`", file, ErrMACMismatch, file)
		}
		return nil, fmt.Errorf("%s: %w: an encrypted value does not decrypt with the file's data key, so it was changed or moved "+
			"after sops encrypted it; restore the file from git history or set the value again with `sops edit %s`", file, ErrMACMismatch, file)
	}
	stored, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if s, ok := stored.(string); err != nil || !ok || s != mac {
		return nil, fmt.Errorf("%s: %w: the content no longer matches the MAC sops recorded, so the file was changed without sops; "+
			"restore it from git history and change it only with `sops edit %s`", file, ErrMACMismatch, file)
	}

	values := branchToMap(tree.Branches[0])
	for _, app := range sortedKeys(values) {
		if _, ok := values[app].(map[string]any); !ok {
			return nil, fmt.Errorf("%s: %q must map to the app's values (a mapping), not %s; nest the values under the app name",
				file, app, kindOf(values[app]))
		}
	}
	return values, nil
}

// branchToMap turns a decrypted sops tree into plain Go values: mappings
// become map[string]any, sequences []any, bytes strings; comments are dropped.
func branchToMap(b sops.TreeBranch) map[string]any {
	out := make(map[string]any, len(b))
	for _, item := range b {
		k, ok := item.Key.(string)
		if !ok {
			continue // a comment
		}
		out[k] = plainValue(item.Value)
	}
	return out
}

func plainValue(v any) any {
	switch t := v.(type) {
	case sops.TreeBranch:
		return branchToMap(t)
	case []any:
		out := make([]any, 0, len(t))
		for _, item := range t {
			if _, ok := item.(sops.Comment); ok {
				continue
			}
			out = append(out, plainValue(item))
		}
		return out
	case []byte:
		return string(t)
	}
	return v
}

// kindOf names a value's YAML kind without showing the value.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, float64:
		return "a number"
	}
	return fmt.Sprintf("a %T", v)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
