package reconciler_test

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-cmp/cmp"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"meridian.dev/meridian/internal/testenv/ekstest"
	"meridian.dev/meridian/internal/testenv/gitserver"
	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/access"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/render/secrets"
	"meridian.dev/meridian/sources"
)

// accessFleet is a small fleet whose one tenant, team, holds one ConfigMap (the
// app settings) in every region: healthy as soon as it is applied, so regions
// need no workloads. regions maps a region's name to its spec.cluster lines.
// The greeting is a value of the App substituted into the ConfigMap, so that a
// new greeting changes the unit's digest.
func accessFleet(regions map[string]string, greeting string) map[string]string {
	files := map[string]string{
		"fleet.yaml": `apiVersion: meridian.dev/v1alpha1
kind: Fleet
metadata:
  name: access
spec:
  dns:
    zone: fleet.example.com
    hostedZoneID: Z0EXAMPLE0000000
`,
		"apps/settings/app.yaml": `apiVersion: meridian.dev/v1alpha1
kind: App
metadata:
  name: settings
spec:
  kustomize:
    path: base
    substitute: true
  values:
    greeting: ` + greeting + `
`,
		"apps/settings/base/kustomization.yaml": "resources: [configmap.yaml]\n",
		"apps/settings/base/configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: ${greeting}
`,
	}
	var names []string
	for name, cluster := range regions {
		names = append(names, name)
		files["regions/"+name+".yaml"] = `apiVersion: meridian.dev/v1alpha1
kind: Region
metadata:
  name: ` + name + `
spec:
  awsRegion: ` + name + `
  cluster:
` + cluster + `  endpoint:
    type: CNAME
    target: ingress.` + name + `.example.net
`
	}
	files["tenants/team.yaml"] = `apiVersion: meridian.dev/v1alpha1
kind: Tenant
metadata:
  name: team
spec:
  regions: [` + strings.Join(names, ", ") + `]
  apps:
    - name: settings
`
	return files
}

// accessDaemon is a daemon of accessFleet, its repository and its log.
type accessDaemon struct {
	url   string // the repository's URL
	work  *gitserver.Workdir
	first string // the revision the daemon starts on
	opts  reconciler.RunOptions
	logs  *logBuffer
}

func newAccessDaemon(t *testing.T, files map[string]string, acc reconciler.Access) *accessDaemon {
	t.Helper()
	ctx := t.Context()
	srv := gitserver.New(t, gitserver.Options{})
	if _, err := srv.CreateRepo("fleet.git"); err != nil {
		t.Fatal(err)
	}
	work, err := srv.Clone(ctx, "fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	d := &accessDaemon{url: srv.URL("fleet.git"), work: work, logs: &logBuffer{}}
	d.first = d.push(t, "fleet", files)
	cache := t.TempDir()
	t.Cleanup(func() {
		// Snapshots are read-only; make them writable so the directory can go.
		_ = filepath.WalkDir(cache, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.logs.String())
		}
	})
	git, err := sources.NewGit(sources.GitOptions{URL: srv.URL("fleet.git"), Ref: sources.Ref{Branch: "main"}, CacheDir: cache, Logger: d.logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	charts, err := helm.New(helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	d.opts = reconciler.RunOptions{
		Poller:          &sources.Poller{Source: git, Interval: 200 * time.Millisecond, MinBackoff: 100 * time.Millisecond},
		Snapshots:       git,
		Renderer:        render.New(render.Options{Helm: charts, Decryptor: secrets.NewDecryptor(nil)}),
		Kubeconfig:      filepath.Join(t.TempDir(), "no-kubeconfig"),
		Access:          acc,
		HealthTimeout:   30 * time.Second,
		RetryMin:        time.Hour, // a pass runs for a new revision, never for a retry
		DriftInterval:   -1,
		ShutdownTimeout: 10 * time.Second,
		Log:             d.logs.logger(),
	}
	return d
}

func (d *accessDaemon) push(t *testing.T, message string, files map[string]string) string {
	t.Helper()
	rev, err := d.work.CommitFiles(t.Context(), message, files)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.work.Push(t.Context()); err != nil {
		t.Fatal(err)
	}
	return rev
}

// run starts the daemon; each pass's report is sent on the returned channel.
func (d *accessDaemon) run(t *testing.T) <-chan *reconciler.Report {
	t.Helper()
	passes := make(chan *reconciler.Report, 10)
	opts := d.opts
	opts.Passed = func(r *reconciler.Report) { passes <- r }
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- reconciler.Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return passes
}

// nextPass waits for the pass of revision rev.
func nextPass(t *testing.T, passes <-chan *reconciler.Report, rev string) *reconciler.Report {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case r := <-passes:
			if r.Revision == rev {
				return r
			}
		case <-timeout:
			t.Fatalf("no pass of revision %s within 2m", rev[:12])
		}
	}
}

// greeting is the greeting the settings ConfigMap of team holds in a cluster, or
// "" when it is not there.
func greeting(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	cm, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().ConfigMaps("team").Get(t.Context(), "settings", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return cm.Data["greeting"]
}

// regionProblems is each region's problem in a pass ("" for none).
func regionProblems(r *reconciler.Report) map[string]string {
	out := map[string]string{}
	for name, rr := range r.Regions {
		out[name] = errString(rr.Problem())
	}
	return out
}

// kubeconfigOf is a kubeconfig of one context reaching server, trusting ca, as
// user, who authenticates as edit says.
func kubeconfigOf(t *testing.T, server string, ca []byte, edit func(*clientcmdapi.AuthInfo)) []byte {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["region"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	user := &clientcmdapi.AuthInfo{}
	edit(user)
	kc.AuthInfos["meridian"] = user
	kc.Contexts["region"] = &clientcmdapi.Context{Cluster: "region", AuthInfo: "meridian"}
	kc.CurrentContext = "region"
	b, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serviceAccountClient is a client of the management cluster with the
// identity Meridian has there: a ServiceAccount that may get the Secrets
// named, nothing else.
func serviceAccountClient(t *testing.T, management *testbed.Region, namespace string, secrets ...string) kubernetes.Interface {
	t.Helper()
	ctx := t.Context()
	admin := kubernetes.NewForConfigOrDie(management.Config)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "meridian"}}
	if _, err := admin.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "meridian-region-kubeconfigs"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: secrets, Verbs: []string{"get"}}},
	}
	if _, err := admin.RbacV1().Roles(namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "meridian-region-kubeconfigs"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: namespace, Name: sa.Name}},
	}
	if _, err := admin.RbacV1().RoleBindings(namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := admin.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sa.Name, &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(management.Config)
	cfg.BearerToken = tr.Status.Token
	return kubernetes.NewForConfigOrDie(cfg)
}

// TestSecretRef reaches regions through kubeconfigs kept in Secrets of a
// management cluster, read with the identity Meridian has there (a
// ServiceAccount allowed to get those Secrets only), as the daemon does in
// production: a sync through a Secret; the Secret rotated to another cluster,
// then to revoked credentials, while the daemon runs; a missing Secret or
// key, a Secret Meridian may not read, a kubeconfig that runs a command and
// one that does not parse, each failing its region alone with the fix. No
// content of a Secret reaches the log or an error.
func TestSecretRef(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Names: []string{"management", "first", "second"}})
	management, first, second := tb.Region("management"), tb.Region("first"), tb.Region("second")
	admin := kubernetes.NewForConfigOrDie(management.Config)
	ctx := t.Context()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meridian-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubeconfig := func(r *testbed.Region) []byte {
		b, err := os.ReadFile(r.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Markers that must never reach the log or an error.
	const (
		execMarker    = "exec-plugin-marker-5b1d"
		garbageMarker = "unparsable-marker-9c2e"
		revokedToken  = "revoked-token-marker-7f3a"
	)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "meridian-system", Name: "regions"},
		Data: map[string][]byte{
			"us-east-1": kubeconfig(first),
			"exec": kubeconfigOf(t, first.Server, first.Config.CAData, func(u *clientcmdapi.AuthInfo) {
				u.Exec = &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1", Command: "/bin/" + execMarker, InteractiveMode: clientcmdapi.NeverExecInteractiveMode}
			}),
			"garbage": []byte("apiVersion: v1\nkind: Config\nclusters: [" + garbageMarker + "\n"),
		},
	}
	if _, err := admin.CoreV1().Secrets("meridian-system").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	forbidden := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "meridian-system", Name: "not-meridians"}, Data: map[string][]byte{"kubeconfig": kubeconfig(first)}}
	if _, err := admin.CoreV1().Secrets("meridian-system").Create(ctx, forbidden, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mc := serviceAccountClient(t, management, "meridian-system", "regions", "eu-west-2")

	regions := map[string]string{
		"us-east-1": "    secretRef: {namespace: meridian-system, name: regions, key: us-east-1}\n",
		"eu-west-2": "    secretRef: {namespace: meridian-system, name: regions, key: eu-west-2}\n",
	}
	d := newAccessDaemon(t, accessFleet(regions, "hello"), reconciler.Access{Secrets: access.NewSecrets(mc)})
	passes := d.run(t)
	var errs []string // every region problem the daemon reported

	start := time.Now()
	r := nextPass(t, passes, d.first)
	t.Logf("first pass through the Secret: %v", time.Since(start))
	wantKey := "regions/eu-west-2.yaml:8: spec.cluster.secretRef: Secret meridian-system/regions has no key \"eu-west-2\" (its keys: exec, garbage, us-east-1); put the region's kubeconfig under that key or correct spec.cluster.secretRef.key"
	if diff := cmp.Diff(map[string]string{"us-east-1": "", "eu-west-2": "read inventory: " + wantKey}, regionProblems(r)); diff != "" {
		t.Errorf("problems of the first pass (-want +got):\n%s", diff)
	}
	errs = append(errs, slices.Collect(maps.Values(regionProblems(r)))...)
	if got := greeting(t, first.Config); got != "hello" {
		t.Errorf("first cluster: greeting %q, want hello", got)
	}

	t.Run("a rotated Secret is used from the next pass, without a restart", func(t *testing.T) {
		secret.Data["us-east-1"] = kubeconfig(second)
		if _, err := admin.CoreV1().Secrets("meridian-system").Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		rev := d.push(t, "greet again", accessFleet(regions, "hello-again"))
		r := nextPass(t, passes, rev)
		if got := regionProblems(r)["us-east-1"]; got != "" {
			t.Fatalf("us-east-1 after the rotation: %s", got)
		}
		if got := greeting(t, second.Config); got != "hello-again" {
			t.Errorf("second cluster: greeting %q, want hello-again", got)
		}
		if got := greeting(t, first.Config); got != "hello" {
			t.Errorf("first cluster: greeting %q, want hello: the old kubeconfig was used after the rotation", got)
		}
	})

	t.Run("revoked credentials in the Secret stop the region at the next pass", func(t *testing.T) {
		secret.Data["us-east-1"] = kubeconfigOf(t, second.Server, second.Config.CAData, func(u *clientcmdapi.AuthInfo) { u.Token = revokedToken })
		if _, err := admin.CoreV1().Secrets("meridian-system").Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		rev := d.push(t, "greet a third time", accessFleet(regions, "hello-revoked"))
		r := nextPass(t, passes, rev)
		got := regionProblems(r)["us-east-1"]
		errs = append(errs, got)
		if !strings.Contains(got, "Unauthorized") {
			t.Errorf("us-east-1 with a revoked token: problem %q, want Unauthorized", got)
		}
		if got := greeting(t, second.Config); got != "hello-again" {
			t.Errorf("second cluster: greeting %q, want hello-again: something was written with revoked credentials", got)
		}
		secret.Data["us-east-1"] = kubeconfig(second)
		if _, err := admin.CoreV1().Secrets("meridian-system").Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("refused Secrets fail their region alone and say what to do", func(t *testing.T) {
		regions := map[string]string{
			"us-east-1":    regions["us-east-1"],
			"eu-west-2":    "    secretRef: {namespace: meridian-system, name: eu-west-2, key: kubeconfig}\n",
			"eu-west-3":    "    secretRef: {namespace: meridian-system, name: not-meridians, key: kubeconfig}\n",
			"eu-central-1": "    secretRef: {namespace: meridian-system, name: regions, key: exec}\n",
			"eu-north-1":   "    secretRef: {namespace: meridian-system, name: regions, key: garbage}\n",
		}
		rev := d.push(t, "regions from refused Secrets", accessFleet(regions, "hello-4"))
		r := nextPass(t, passes, rev)
		at := func(region string) string {
			return "read inventory: regions/" + region + ".yaml:8: spec.cluster.secretRef: "
		}
		want := map[string]string{
			"us-east-1": "",
			"eu-west-2": at("eu-west-2") + "Secret meridian-system/eu-west-2: not found in the management cluster; " +
				"create it with the region's kubeconfig under key \"kubeconfig\" (kubectl create secret generic eu-west-2 -n meridian-system --from-file=kubeconfig=KUBECONFIG_FILE)",
			"eu-west-3": at("eu-west-3") + "Secret meridian-system/not-meridians: Meridian may not read it in the management cluster; " +
				"grant its service account get on this Secret (a Role in namespace meridian-system)",
			"eu-central-1": at("eu-central-1") + "Secret meridian-system/regions, key \"exec\": the kubeconfig's user \"meridian\" runs a command (exec), " +
				"which Meridian does not do for a kubeconfig in a Secret; embed a token or a client certificate and key, or reach an EKS cluster with spec.cluster.eks",
			"eu-north-1": at("eu-north-1") + "Secret meridian-system/regions, key \"garbage\": does not hold a kubeconfig that parses; store a kubeconfig file there",
		}
		got := regionProblems(r)
		errs = append(errs, slices.Collect(maps.Values(got))...)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
		if got := greeting(t, second.Config); got != "hello-4" {
			t.Errorf("second cluster: greeting %q, want hello-4: the other regions' refusals held it back", got)
		}
	})

	t.Run("no content of a Secret is logged or in an error", func(t *testing.T) {
		logs := d.logs.String()
		out := logs + "\n" + strings.Join(errs, "\n")
		secrets := map[string]string{
			"the first region's token":  first.Config.BearerToken,
			"the second region's token": second.Config.BearerToken,
			"the revoked token":         revokedToken,
			"the exec kubeconfig":       execMarker,
			"the unparsable kubeconfig": garbageMarker,
		}
		for what, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("the log or an error holds %s", what)
			}
		}
		for _, line := range []string{`"secret":"meridian-system/regions"`, `"key":"us-east-1"`} {
			if !strings.Contains(logs, line) {
				t.Errorf("the log does not say which Secret a region was reached through (%s)", line)
			}
		}
	})
}

// TestEKS reaches an EKS cluster as the daemon does in production: its
// endpoint and CA from EKS DescribeCluster, its bearer token made by Meridian
// from its AWS credentials through a role it assumes. The cluster is a
// testbed kube-apiserver whose webhook authenticator accepts a token only
// when its presigned GetCallerIdentity request passes the STS test server's
// signature check and its identity has an access entry, as EKS does; a wrong,
// expired or other cluster's token is refused by the API server.
func TestEKS(t *testing.T) {
	const deployer = "arn:aws:iam::111122223333:role/meridian-deployer"
	srv := ekstest.NewServer()
	t.Cleanup(srv.Close)
	user := srv.AddCredentials("AKIDMERIDIAN", "meridian-secret-key", "meridian")
	srv.AddRole(deployer, user)
	auth, err := ekstest.NewAuthenticator(srv, "prod-use1", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auth.Close)
	auth.AddAccessEntry(deployer, ekstest.AccessEntry{Username: "meridian-deployer"})
	auth.AddAccessEntry(user, ekstest.AccessEntry{Username: "meridian-user"}) // no RBAC: authenticated, allowed nothing

	tb := testbed.New(t, testbed.Options{Names: []string{"prod-use1"}, APIServerFlags: auth.APIServerFlags()})
	cluster := tb.Region("prod-use1")
	admin := kubernetes.NewForConfigOrDie(cluster.Config)
	ctx := t.Context()
	// The access entry's policy: cluster admin, as AmazonEKSClusterAdminPolicy.
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "meridian-deployer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "meridian-deployer"}},
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.AddCluster(ekstest.Cluster{Name: "prod-use1", Region: "us-east-1", Endpoint: cluster.Server, CA: cluster.Config.CAData, Describers: []string{deployer}})

	eks := access.NewEKS(access.EKSOptions{
		AWS: aws.Config{
			Credentials: credentials.NewStaticCredentialsProvider("AKIDMERIDIAN", "meridian-secret-key", ""),
			HTTPClient:  srv.Client(),
		},
		EKSEndpoint: srv.URL,
		STSEndpoint: srv.URL,
	})
	regions := map[string]string{
		"us-east-1": "    eks: {name: prod-use1, roleARN: \"" + deployer + "\"}\n",
		"eu-west-2": "    eks: {name: prod-euw2, roleARN: \"" + deployer + "\"}\n",
	}
	d := newAccessDaemon(t, accessFleet(regions, "hello"), reconciler.Access{EKS: eks})
	passes := d.run(t)
	start := time.Now()
	r := nextPass(t, passes, d.first)
	t.Logf("first pass through EKS: %v", time.Since(start))
	want := map[string]string{
		"us-east-1": "",
		"eu-west-2": `read inventory: regions/eu-west-2.yaml:8: spec.cluster.eks: EKS cluster "prod-euw2": not found in eu-west-2; correct spec.cluster.eks.name, or spec.cluster.eks.region (default spec.awsRegion)`,
	}
	got := regionProblems(r)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if got := greeting(t, cluster.Config); got != "hello" {
		t.Errorf("EKS cluster: greeting %q, want hello", got)
	}
	var accepted int
	for _, r := range auth.Reviews() {
		if r.Authenticated && r.Username == "meridian-deployer" {
			accepted++
		}
	}
	if accepted == 0 {
		t.Errorf("the authenticator accepted no token of the role; reviews: %+v", auth.Reviews())
	}

	t.Run("the API server refuses a wrong or expired token", func(t *testing.T) {
		tokens := []struct {
			name   string
			token  func() (string, error)
			status string // what listing namespaces returns
			reason string // why the authenticator refused it
		}{{
			name: "fresh, of an identity allowed nothing",
			token: func() (string, error) {
				return srv.SignedToken(ctx, "AKIDMERIDIAN", "meridian-secret-key", "prod-use1", time.Now())
			},
			status: "Forbidden",
		}, {
			name: "signed 16 minutes ago",
			token: func() (string, error) {
				return srv.SignedToken(ctx, "AKIDMERIDIAN", "meridian-secret-key", "prod-use1", time.Now().Add(-16*time.Minute))
			},
			status: "Unauthorized",
			reason: "token expired: signed 16m",
		}, {
			name: "signed with a wrong secret key",
			token: func() (string, error) {
				return srv.SignedToken(ctx, "AKIDMERIDIAN", "not-the-secret", "prod-use1", time.Now())
			},
			status: "Unauthorized",
			reason: "STS refused the token's request: 403 SignatureDoesNotMatch",
		}, {
			name: "made for another cluster",
			token: func() (string, error) {
				return srv.SignedToken(ctx, "AKIDMERIDIAN", "meridian-secret-key", "prod-euw2", time.Now())
			},
			status: "Unauthorized",
			reason: "STS refused the token's request: 403 SignatureDoesNotMatch",
		}, {
			name:   "not an EKS token",
			token:  func() (string, error) { return "k8s-aws-v1.bm90IGEgdG9rZW4", nil },
			status: "Unauthorized",
			reason: "token is not a presigned request of the STS endpoint",
		}}
		for _, tt := range tokens {
			t.Run(tt.name, func(t *testing.T) {
				token, err := tt.token()
				if err != nil {
					t.Fatal(err)
				}
				before := len(auth.Reviews())
				cfg := &rest.Config{Host: cluster.Server, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: cluster.Config.CAData}}
				_, err = kubernetes.NewForConfigOrDie(cfg).CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
				if got := string(apierrors.ReasonForError(err)); got != tt.status {
					t.Errorf("listing namespaces: %v (reason %q), want %s", err, got, tt.status)
				}
				reviews := auth.Reviews()[before:]
				if len(reviews) == 0 {
					t.Fatal("the API server did not consult the authenticator")
				}
				if got := reviews[len(reviews)-1].Reason; !strings.HasPrefix(got, tt.reason) || (tt.reason == "") != (got == "") {
					t.Errorf("authenticator's reason %q, want %q", got, tt.reason)
				}
			})
		}
	})

	t.Run("no token or key is logged", func(t *testing.T) {
		logs := d.logs.String()
		for _, s := range []string{"k8s-aws-v1.", "meridian-secret-key", "X-Amz-Signature", "X-Amz-Security-Token"} {
			if strings.Contains(logs, s) {
				t.Errorf("the log holds %q", s)
			}
		}
		if !strings.Contains(logs, `"eks":"prod-use1"`) {
			t.Errorf("the log does not say which EKS cluster a region was reached through")
		}
	})
}

// TestDaemonAccess runs the meridian binary as it runs in production, with
// its configuration file only: one region through a Secret read from the
// management cluster of management.kubeconfigContext, another an EKS cluster
// described and authenticated with the AWS credentials of the environment (the
// SDK's default chain), through the eks section's endpoints and CA.
func TestDaemonAccess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the meridian binary")
	}
	srv := ekstest.NewServer()
	t.Cleanup(srv.Close)
	user := srv.AddCredentials("AKIDDAEMON", "daemon-secret-key", "meridian")
	auth, err := ekstest.NewAuthenticator(srv, "prod-use1", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auth.Close)
	auth.AddAccessEntry(user, ekstest.AccessEntry{Username: "meridian", Groups: []string{"system:masters"}})
	tb := testbed.New(t, testbed.Options{Names: []string{"management", "by-secret", "by-eks"}, APIServerFlags: auth.APIServerFlags()})
	management, bySecret, byEKS := tb.Region("management"), tb.Region("by-secret"), tb.Region("by-eks")
	srv.AddCluster(ekstest.Cluster{Name: "prod-use1", Region: "us-east-1", Endpoint: byEKS.Server, CA: byEKS.Config.CAData})

	ctx := t.Context()
	admin := kubernetes.NewForConfigOrDie(management.Config)
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meridian-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kc, err := os.ReadFile(bySecret.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "meridian-system", Name: "regions"}, Data: map[string][]byte{"eu-west-2": kc}}
	if _, err := admin.CoreV1().Secrets("meridian-system").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	regions := map[string]string{
		"eu-west-2": "    secretRef: {namespace: meridian-system, name: regions, key: eu-west-2}\n",
		"us-east-1": "    eks: {name: prod-use1}\n",
	}
	d := newAccessDaemon(t, accessFleet(regions, "from-the-binary"), reconciler.Access{})
	dir := t.TempDir()
	ca := filepath.Join(dir, "aws-ca.pem")
	if err := os.WriteFile(ca, srv.CA, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(`apiVersion: meridian.dev/v1alpha1
kind: Config
repository:
  url: `+d.url+`
  branch: main
kubeconfig: `+tb.Kubeconfig+`
management:
  kubeconfigContext: management
eks:
  endpoint: `+srv.URL+`
  stsEndpoint: `+srv.URL+`
  caFile: `+ca+`
cacheDir: `+filepath.Join(dir, "cache")+`
listen: 127.0.0.1:0
healthTimeout: 1m
`), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := buildMeridian(t)
	run := exec.CommandContext(ctx, bin, "run", "--config", cfg, "--once")
	// The environment's AWS settings are replaced: credentials come from
	// these variables through the SDK's default chain, nothing else.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			run.Env = append(run.Env, kv)
		}
	}
	run.Env = append(run.Env, "AWS_ACCESS_KEY_ID=AKIDDAEMON", "AWS_SECRET_ACCESS_KEY=daemon-secret-key",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE="+filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("meridian run --once: %v\n%s", err, out)
	}
	for _, r := range []*testbed.Region{bySecret, byEKS} {
		if got := greeting(t, r.Config); got != "from-the-binary" {
			t.Errorf("%s: greeting %q, want from-the-binary", r.Name, got)
		}
	}

	// meridian plan reaches the regions the same way: nothing left to do.
	plan := exec.CommandContext(ctx, bin, "plan", "--config", cfg, "--format", "json")
	plan.Env = run.Env
	planOut, err := plan.Output()
	if err != nil {
		t.Fatalf("meridian plan: %v\n%s", err, planOut)
	}
	var p struct {
		Changed bool `json:"changed"`
		Regions []struct {
			Name  string `json:"name"`
			Error string `json:"error"`
			Units []struct {
				Action string `json:"action"`
			} `json:"units"`
		} `json:"regions"`
	}
	if err := json.Unmarshal(planOut, &p); err != nil {
		t.Fatalf("meridian plan --format json: %v\n%s", err, planOut)
	}
	planned := map[string]string{}
	for _, r := range p.Regions {
		var actions []string
		for _, u := range r.Units {
			actions = append(actions, u.Action)
		}
		planned[r.Name] = r.Error + strings.Join(actions, ",")
	}
	if p.Changed {
		t.Errorf("meridian plan after the run says something would change:\n%s", planOut)
	}
	if diff := cmp.Diff(map[string]string{"eu-west-2": "unchanged,unchanged", "us-east-1": "unchanged,unchanged"}, planned); diff != "" {
		t.Errorf("meridian plan after the run (-want +got):\n%s\n%s", diff, planOut)
	}
	out = append(out, planOut...)

	for _, s := range []string{"k8s-aws-v1.", "daemon-secret-key", bySecret.Config.BearerToken} {
		if strings.Contains(string(out), s) {
			t.Errorf("the daemon's output holds a credential (%.12s…)", s)
		}
	}
	for _, s := range []string{`"secret":"meridian-system/regions"`, `"eks":"prod-use1"`} {
		if !strings.Contains(string(out), s) {
			t.Errorf("the daemon's log does not say %s:\n%s", s, out)
		}
	}
}
