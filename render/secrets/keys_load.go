package secrets

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The environment variables KeysFromEnv reads, named as sops names them.
const (
	// EnvAgeKey holds age identities, one or more per line.
	EnvAgeKey = "SOPS_AGE_KEY"
	// EnvAgeKeyFile names an age key file.
	EnvAgeKeyFile = "SOPS_AGE_KEY_FILE"
)

// Data key suffixes KeysFromSecret reads, as in Flux's decryption Secret.
const (
	// SecretAgeSuffix marks a Secret data key holding age identities.
	SecretAgeSuffix = ".agekey"
	// SecretPGPSuffix marks a Secret data key holding an armored OpenPGP
	// private key.
	SecretPGPSuffix = ".asc"
)

// KeysFromFiles reads key files: a file whose name ends in ".asc" holds
// armored OpenPGP private keys, any other file age identities, one per line,
// with blank lines and # comments allowed (the format age-keygen writes).
// Errors name the file (and line) and never quote its content.
func KeysFromFiles(paths ...string) (*Keys, error) {
	out := &Keys{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: reading key file: %w", p, err)
		}
		k, err := keysFromData(p, filepath.Base(p), data)
		if err != nil {
			return nil, err
		}
		out = MergeKeys(out, k)
	}
	return out, nil
}

// KeysFromEnv reads age identities from SOPS_AGE_KEY and from the file named
// by SOPS_AGE_KEY_FILE, the variables sops reads. It reads them once, here:
// decryption itself never consults the environment. Neither set gives an empty
// Keys, not an error.
func KeysFromEnv() (*Keys, error) {
	out := &Keys{}
	if v, ok := os.LookupEnv(EnvAgeKey); ok && strings.TrimSpace(v) != "" {
		ids, err := parseAgeIdentities("$"+EnvAgeKey, []byte(v))
		if err != nil {
			return nil, err
		}
		out = MergeKeys(out, &Keys{age: ids})
	}
	if p, ok := os.LookupEnv(EnvAgeKeyFile); ok && p != "" {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: reading the age key file $%s names: %w", p, EnvAgeKeyFile, err)
		}
		ids, err := parseAgeIdentities(p, data)
		if err != nil {
			return nil, err
		}
		out = MergeKeys(out, &Keys{age: ids})
	}
	return out, nil
}

// KeysFromSecret reads the Kubernetes Secret namespace/name: each data key
// ending in ".agekey" holds age identities, each ending in ".asc" an armored
// OpenPGP private key, like the decryption Secret Flux reads. Other data keys
// are ignored, but a Secret with no key of either kind is an error.
func KeysFromSecret(ctx context.Context, client kubernetes.Interface, namespace, name string) (*Keys, error) {
	obj := "Secret/" + namespace + "/" + name
	sec, err := client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%s: not found; create it with the decryption keys as data keys ending in %s or %s", obj, SecretAgeSuffix, SecretPGPSuffix)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: reading decryption keys: %w", obj, err)
	}
	names := make([]string, 0, len(sec.Data))
	for k := range sec.Data {
		names = append(names, k)
	}
	slices.Sort(names)
	out := &Keys{}
	found := false
	for _, k := range names {
		if !strings.HasSuffix(k, SecretAgeSuffix) && !strings.HasSuffix(k, SecretPGPSuffix) {
			continue
		}
		found = true
		keys, err := keysFromData(obj+"["+k+"]", k, sec.Data[k])
		if err != nil {
			return nil, err
		}
		out = MergeKeys(out, keys)
	}
	if !found {
		return nil, fmt.Errorf("%s: holds no data key ending in %s (age) or %s (OpenPGP); add the decryption keys under such names", obj, SecretAgeSuffix, SecretPGPSuffix)
	}
	return out, nil
}

// keysFromData parses one source by its name: ".asc" is OpenPGP, anything
// else age.
func keysFromData(src, name string, data []byte) (*Keys, error) {
	if strings.HasSuffix(name, SecretPGPSuffix) {
		ents, err := parsePGPKeys(src, data)
		if err != nil {
			return nil, err
		}
		return &Keys{pgp: ents}, nil
	}
	ids, err := parseAgeIdentities(src, data)
	if err != nil {
		return nil, err
	}
	return &Keys{age: ids}, nil
}
