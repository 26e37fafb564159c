package access

import (
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// TestRestConfigRefuses refuses kubeconfigs from Secrets whose credentials
// would come from Meridian's machine, or that say no usable context, with a
// message that quotes nothing of the kubeconfig but names.
func TestRestConfigRefuses(t *testing.T) {
	const marker = "content-marker-4e1f"
	base := func() *clientcmdapi.Config {
		kc := clientcmdapi.NewConfig()
		kc.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:6443", CertificateAuthorityData: []byte(marker)}
		kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: marker}
		kc.Contexts["ctx"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
		kc.CurrentContext = "ctx"
		return kc
	}
	tests := []struct {
		name string
		edit func(*clientcmdapi.Config)
		want string // "" when accepted
	}{
		{name: "embedded token", edit: func(*clientcmdapi.Config) {}},
		{name: "the only context, without current-context", edit: func(kc *clientcmdapi.Config) { kc.CurrentContext = "" }},
		{name: "exec", edit: func(kc *clientcmdapi.Config) {
			kc.AuthInfos["u"].Exec = &clientcmdapi.ExecConfig{Command: "/bin/" + marker, APIVersion: "client.authentication.k8s.io/v1"}
		}, want: `the kubeconfig's user "u" runs a command (exec), which Meridian does not do for a kubeconfig in a Secret; embed a token or a client certificate and key, or reach an EKS cluster with spec.cluster.eks`},
		{name: "auth-provider", edit: func(kc *clientcmdapi.Config) {
			kc.AuthInfos["u"].AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "oidc", Config: map[string]string{"id-token": marker}}
		}, want: `the kubeconfig's user "u" uses an auth-provider plugin, which Meridian does not do for a kubeconfig in a Secret; embed a token or a client certificate and key, or reach an EKS cluster with spec.cluster.eks`},
		{name: "token file", edit: func(kc *clientcmdapi.Config) { kc.AuthInfos["u"].TokenFile = "/var/run/" + marker },
			want: `the kubeconfig's user "u" reads files (tokenFile, client-certificate or client-key), which Meridian does not do for a kubeconfig in a Secret; embed a token or a client certificate and key, or reach an EKS cluster with spec.cluster.eks`},
		{name: "client key file", edit: func(kc *clientcmdapi.Config) { kc.AuthInfos["u"].ClientKey = "/etc/" + marker },
			want: `the kubeconfig's user "u" reads files (tokenFile, client-certificate or client-key), which Meridian does not do for a kubeconfig in a Secret; embed a token or a client certificate and key, or reach an EKS cluster with spec.cluster.eks`},
		{name: "CA file", edit: func(kc *clientcmdapi.Config) {
			kc.Clusters["c"].CertificateAuthorityData = nil
			kc.Clusters["c"].CertificateAuthority = "/etc/" + marker
		}, want: `the kubeconfig's cluster "c" reads its CA from a file; embed it (certificate-authority-data)`},
		{name: "no current context among several", edit: func(kc *clientcmdapi.Config) {
			kc.CurrentContext = ""
			kc.Contexts["other"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
		}, want: `the kubeconfig has no current-context (and 2 contexts); set current-context to the region's`},
		{name: "an undefined user", edit: func(kc *clientcmdapi.Config) { kc.Contexts["ctx"].AuthInfo = "nobody" },
			want: `the kubeconfig's context "ctx" names user "nobody", which it does not define`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kc := base()
			tt.edit(kc)
			data, err := clientcmd.Write(*kc)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := restConfig(data)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tt.want)
			}
			if tt.want == "" && (cfg == nil || cfg.BearerToken != marker) {
				t.Errorf("accepted kubeconfig gave %+v, want its embedded token", cfg)
			}
		})
	}
	if _, err := restConfig([]byte("clusters: [" + marker)); err == nil || err.Error() != "does not hold a kubeconfig that parses; store a kubeconfig file there" {
		t.Errorf("unparsable kubeconfig: %v", err)
	}
}
