package secrets

import (
	"testing"

	"github.com/getsops/sops/v3"
	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"meridian.dev/meridian/internal/testenv/testbed"
)

// KeysFromSecret against a real kube-apiserver: the typed client, real
// Secrets, real RBAC.
func TestKeysFromSecret(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1})
	admin, err := kubernetes.NewForConfig(tb.Regions[0].Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const ns = "meridian-system"
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	a, p := newAgeKey(t), newPGPKey(t)
	for name, data := range map[string]map[string]string{
		"sops-keys": {"identity.agekey": a.file, "team.asc": p.armored, "README.md": "keys for Meridian"},
		"no-keys":   {"token": "not a key"},
		"bad-age":   {"identity.agekey": "hunter2\n"},
	} {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}
		if _, err := admin.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	keys, err := KeysFromSecret(ctx, admin, ns, "sops-keys")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{a.recipient(), "pgp:" + p.fingerprint()}, keys.Public()); diff != "" {
		t.Errorf("Public() (-want +got):\n%s", diff)
	}
	enc := &encrypter{pubrings: map[string]string{p.fingerprint(): p.pubring}}
	file := enc.sopsFile(t, plainSecrets, 2, sops.KeyGroup{ageMK(a)}, sops.KeyGroup{pgpMK(p)})
	got, err := NewDecryptor(keys).Decrypt(tenantFile, file)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(plainValues, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}

	// A service account without RBAC rights, with a token from the real
	// TokenRequest API.
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "reader", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(tb.Regions[0].Config)
	cfg.BearerToken = tr.Status.Token
	reader, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		client kubernetes.Interface
		secret string
		want   string
	}{
		{
			name: "missing Secret", client: admin, secret: "missing",
			want: "Secret/meridian-system/missing: not found; create it with the decryption keys as data keys ending in .agekey or .asc",
		},
		{
			name: "Secret without key entries", client: admin, secret: "no-keys",
			want: "Secret/meridian-system/no-keys: holds no data key ending in .agekey (age) or .asc (OpenPGP); add the decryption keys under such names",
		},
		{
			name: "malformed age entry", client: admin, secret: "bad-age",
			want: "Secret/meridian-system/bad-age[identity.agekey]:1: not an age identity; expected AGE-SECRET-KEY-1… (one per line, # starts a comment)",
		},
		{
			name: "no permission to read it", client: reader, secret: "sops-keys",
			want: `Secret/meridian-system/sops-keys: reading decryption keys: secrets "sops-keys" is forbidden: ` +
				`User "system:serviceaccount:meridian-system:reader" cannot get resource "secrets" in API group "" in the namespace "meridian-system"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := KeysFromSecret(ctx, tt.client, ns, tt.secret)
			if err == nil {
				t.Fatalf("KeysFromSecret = %v, want an error", keys)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}
