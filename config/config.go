package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"meridian.dev/meridian/fleet"
)

// Kind is the kind of a configuration file; its apiVersion is fleet.APIVersion.
const Kind = "Config"

// Config is the configuration file of `meridian run`.
type Config struct {
	fleet.TypeMeta `yaml:",inline"`
	// Repository is the fleet repository to follow.
	Repository Repository `yaml:"repository" schema:"required"`
	// Kubeconfig is a kubeconfig file holding a context per region; each Region file
	// of the fleet names its context. Empty means the default loading rules
	// (KUBECONFIG, ~/.kube/config).
	Kubeconfig string `yaml:"kubeconfig,omitempty"`
	// Management is the cluster Meridian runs in, where the kubeconfigs of regions
	// that name a Secret (spec.cluster.secretRef) are kept.
	Management Management `yaml:"management,omitempty"`
	// EKS says how Meridian reaches the AWS APIs for regions that name an EKS
	// cluster (spec.cluster.eks).
	EKS EKS `yaml:"eks,omitempty"`
	// Decryption says where the SOPS keys are.
	Decryption Decryption `yaml:"decryption,omitempty"`
	// CacheDir holds the repository cache, snapshots and downloaded charts. Empty
	// means the user cache directory.
	CacheDir string `yaml:"cacheDir,omitempty"`
	// StateDir holds what the daemon keeps across restarts and may not lose with
	// a cache: the dashboard's history of passes (status/history.json). Empty
	// means CacheDir's state/ directory.
	StateDir string `yaml:"stateDir,omitempty"`
	// Listen is the address of the HTTP server (health, webhooks). Default :8080.
	Listen string `yaml:"listen,omitempty"`
	// TLS makes the server on Listen speak HTTPS only.
	TLS *TLS `yaml:"tls,omitempty"`
	// Profiling serves Go's runtime profiles (net/http/pprof) under /debug/pprof/
	// on Listen, for finding where time and memory go. Default off.
	Profiling bool `yaml:"profiling,omitempty"`
	// HealthTimeout bounds how long a wave waits for health. Default 5m.
	HealthTimeout Duration `yaml:"healthTimeout,omitempty"`
	// KubeAPI bounds the requests Meridian makes to each region's API server.
	KubeAPI KubeAPI `yaml:"kubeAPI,omitempty"`
	// DriftInterval is how often the current revision is checked for drift between
	// polls. Default 10m.
	DriftInterval Duration `yaml:"driftInterval,omitempty"`
	// Route53 turns DNS on: the latency records and health checks of the fleet's
	// exposed apps are kept in the hosted zone fleet.yaml names. Absent, DNS is
	// left alone.
	Route53 *Route53 `yaml:"route53,omitempty"`
	// Notifications says where each region's outcome of every revision, and every
	// hold of deletions, is posted.
	Notifications Notifications `yaml:"notifications,omitempty"`
	// HA shares the fleet among several replicas. Absent, this replica applies
	// everything.
	HA *HA `yaml:"ha,omitempty"`
}

// KubeAPI is the request rate Meridian allows itself against each region's API
// server: one budget per region, shared by its own writes, every tenant's, the
// inventories' and the health reads. Zero means the default.
type KubeAPI struct {
	// QPS is the sustained rate, in requests a second. Default 200.
	QPS int `yaml:"qps,omitempty" schema:"min=1"`
	// Burst is how many requests may go above that rate at once. Default 400.
	Burst int `yaml:"burst,omitempty" schema:"min=1"`
}

// Notifications name files holding the receivers' URLs: webhook URLs carry their
// own credentials, so they are secrets and never written in this file.
type Notifications struct {
	// WebhookURLFile holds the URL of a generic webhook, posted each event as JSON.
	WebhookURLFile string `yaml:"webhookURLFile,omitempty"`
	// SlackURLFile holds the URL of a Slack-compatible incoming webhook.
	SlackURLFile string `yaml:"slackURLFile,omitempty"`
}

// Route53 says how to reach Route53. Credentials come from the AWS SDK's default
// chain (environment, web identity, shared files, instance role), never from
// this file.
type Route53 struct {
	// Endpoint is the URL of a Route53-compatible API; empty means AWS's.
	Endpoint string `yaml:"endpoint,omitempty"`
	// Region signs the requests. Default us-east-1, where Route53's API lives.
	Region string `yaml:"region,omitempty"`
	// Profile is the shared-config profile to take credentials from; empty means
	// AWS_PROFILE or the default.
	Profile string `yaml:"profile,omitempty"`
	// CAFile holds PEM certificates trusted for Endpoint besides the system's.
	CAFile string `yaml:"caFile,omitempty"`
	// RequestsPerSecond limits Meridian's Route53 requests. Default 5, Route53's
	// per-account quota; lower it when other tools share the account.
	RequestsPerSecond int `yaml:"requestsPerSecond,omitempty" schema:"min=1,max=5"`
	// RateScale multiplies every Route53 rate and burst Meridian keeps to:
	// RequestsPerSecond and the per-operation rates of Route53's documented
	// limits (CreateHealthCheck's 0.5 a second after a burst of 50, among
	// others). Default 1, AWS's documented limits. Below 1 leaves room in the
	// account for other Route53 writers; above 1 only for an endpoint whose
	// limits are higher than AWS's, such as a test server run faster.
	RateScale float64 `yaml:"rateScale,omitempty" schema:"positive"`
}

// Management says how Meridian reaches the management cluster with its own
// identity there, to read the Secrets that Region files name.
type Management struct {
	// KubeconfigContext is the context of Kubeconfig that reaches the management
	// cluster. Empty means the pod's own service account (in-cluster), as in the
	// Helm chart.
	KubeconfigContext string `yaml:"kubeconfigContext,omitempty"`
	// HistoryConfigMap, as namespace/name, is the ConfigMap of the management
	// cluster the daemon keeps the dashboard's history of passes in (it creates
	// it, and needs get, create and update on ConfigMaps there); replicas that
	// name the same one share one history. Empty keeps it in StateDir.
	HistoryConfigMap string `yaml:"historyConfigMap,omitempty"`
}

// HistoryConfigMapName returns the namespace and name of HistoryConfigMap, or
// an error when it is not namespace/name (Load refuses such a file).
func (m Management) HistoryConfigMapName() (namespace, name string, err error) {
	namespace, name, ok := strings.Cut(m.HistoryConfigMap, "/")
	if !ok || namespace == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("management.historyConfigMap: %q is not namespace/name; name the ConfigMap, e.g. meridian-system/meridian-status-history", m.HistoryConfigMap)
	}
	return namespace, name, nil
}

// EKS says how Meridian reaches the EKS and STS APIs for regions that name an EKS
// cluster. Credentials come from the AWS SDK's default chain (IRSA, EKS Pod
// Identity, environment, shared files, instance role), never from this file.
type EKS struct {
	// Endpoint is the URL of an EKS-compatible API; empty means AWS's endpoint in
	// each cluster's region.
	Endpoint string `yaml:"endpoint,omitempty"`
	// STSEndpoint is the URL of an STS-compatible API that signs the clusters'
	// tokens (and serves AssumeRole); empty means AWS's regional STS endpoint of
	// each cluster's region.
	STSEndpoint string `yaml:"stsEndpoint,omitempty"`
	// Profile is the shared-config profile to take credentials from; empty means
	// AWS_PROFILE or the default.
	Profile string `yaml:"profile,omitempty"`
	// CAFile holds PEM certificates trusted for Endpoint and STSEndpoint besides
	// the system's.
	CAFile string `yaml:"caFile,omitempty"`
}

// Repository is the fleet repository and how to fetch it.
type Repository struct {
	// URL of the repository, https:// or ssh://; never with credentials in it.
	URL string `yaml:"url" schema:"required"`
	// Branch, Tag or SemVer selects the revision; exactly one.
	Branch string `yaml:"branch,omitempty"`
	Tag    string `yaml:"tag,omitempty"`
	SemVer string `yaml:"semver,omitempty"`
	// Interval between polls. Default 1m.
	Interval Duration `yaml:"interval,omitempty"`
	// UsernameFile and PasswordFile hold HTTPS basic credentials.
	UsernameFile string `yaml:"usernameFile,omitempty"`
	PasswordFile string `yaml:"passwordFile,omitempty"`
	// TokenFile holds an HTTPS bearer token.
	TokenFile string `yaml:"tokenFile,omitempty"`
	// SSHKeyFile and KnownHostsFile hold an SSH private key and the server's host key.
	SSHKeyFile     string `yaml:"sshKeyFile,omitempty"`
	KnownHostsFile string `yaml:"knownHostsFile,omitempty"`
	// CAFile holds PEM certificates trusted for HTTPS besides the system's.
	CAFile string `yaml:"caFile,omitempty"`
	// VerifyOpenPGPKeyFiles hold armored public keys; VerifySSHAllowedSignersFile an
	// allowed_signers file. Either turns on commit signature verification.
	VerifyOpenPGPKeyFiles       []string `yaml:"verifyOpenPGPKeyFiles,omitempty"`
	VerifySSHAllowedSignersFile string   `yaml:"verifySSHAllowedSignersFile,omitempty"`
	// Webhook secrets: GitHub's HMAC secret, GitLab's token, the generic HMAC secret.
	GitHubSecretFile  string `yaml:"githubSecretFile,omitempty"`
	GitLabTokenFile   string `yaml:"gitlabTokenFile,omitempty"`
	GenericSecretFile string `yaml:"genericSecretFile,omitempty"`
}

// Decryption says where SOPS keys come from; they may be combined.
type Decryption struct {
	// KeyFiles are age identity files, or armored OpenPGP private keys named *.asc.
	KeyFiles []string `yaml:"keyFiles,omitempty"`
	// FromEnvironment reads SOPS_AGE_KEY and SOPS_AGE_KEY_FILE.
	FromEnvironment bool `yaml:"fromEnvironment,omitempty"`
}

// Duration is a time.Duration written as "90s" or "5m".
type Duration time.Duration

// UnmarshalText parses a duration such as 90s.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 90s or 5m", b)
	}
	*d = Duration(v)
	return nil
}

// Load reads and checks the configuration file at path. Relative paths in it are
// relative to the file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := fleet.Decode(path, data, &c); err != nil {
		return nil, err
	}
	if c.APIVersion != fleet.APIVersion || c.Kind != Kind {
		return nil, fmt.Errorf("%s: apiVersion and kind must be %s and %s", path, fleet.APIVersion, Kind)
	}
	refs := 0
	for _, r := range []string{c.Repository.Branch, c.Repository.Tag, c.Repository.SemVer} {
		if r != "" {
			refs++
		}
	}
	if refs != 1 {
		return nil, fmt.Errorf("%s: repository: set exactly one of branch, tag and semver", path)
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&c.Kubeconfig, &c.CacheDir, &c.StateDir, &c.Repository.UsernameFile, &c.Repository.PasswordFile, &c.Repository.TokenFile,
		&c.Repository.SSHKeyFile, &c.Repository.KnownHostsFile, &c.Repository.CAFile, &c.Repository.VerifySSHAllowedSignersFile,
		&c.Repository.GitHubSecretFile, &c.Repository.GitLabTokenFile, &c.Repository.GenericSecretFile,
		&c.Notifications.WebhookURLFile, &c.Notifications.SlackURLFile, &c.EKS.CAFile} {
		*p = relativeTo(dir, *p)
	}
	if c.TLS != nil {
		if c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
			return nil, fmt.Errorf("%s: tls: set both certFile and keyFile, or remove tls to serve plain HTTP", path)
		}
		c.TLS.CertFile, c.TLS.KeyFile = relativeTo(dir, c.TLS.CertFile), relativeTo(dir, c.TLS.KeyFile)
	}
	if c.Route53 != nil {
		c.Route53.CAFile = relativeTo(dir, c.Route53.CAFile)
		if c.Route53.Region == "" {
			c.Route53.Region = "us-east-1"
		}
		if c.Route53.RequestsPerSecond == 0 {
			c.Route53.RequestsPerSecond = 5
		}
		if c.Route53.RateScale == 0 { // absent; an explicit 0 is refused by its schema
			c.Route53.RateScale = 1
		}
	}
	for i := range c.Repository.VerifyOpenPGPKeyFiles {
		c.Repository.VerifyOpenPGPKeyFiles[i] = relativeTo(dir, c.Repository.VerifyOpenPGPKeyFiles[i])
	}
	for i := range c.Decryption.KeyFiles {
		c.Decryption.KeyFiles[i] = relativeTo(dir, c.Decryption.KeyFiles[i])
	}
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.Repository.Interval == 0 {
		c.Repository.Interval = Duration(time.Minute)
	}
	if c.HealthTimeout == 0 {
		c.HealthTimeout = Duration(5 * time.Minute)
	}
	if c.DriftInterval == 0 {
		c.DriftInterval = Duration(10 * time.Minute)
	}
	if c.CacheDir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("%s: set cacheDir: %w", path, err)
		}
		c.CacheDir = filepath.Join(cache, "meridian")
	}
	if c.Management.HistoryConfigMap != "" {
		if _, _, err := c.Management.HistoryConfigMapName(); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if c.StateDir == "" {
		c.StateDir = filepath.Join(c.CacheDir, "state")
	}
	if err := c.checkHA(path); err != nil {
		return nil, err
	}
	return &c, nil
}

// TLS is the server's certificate and key, PEM files; both are read again when
// they change on disk, so a renewed certificate needs no restart.
type TLS struct {
	// CertFile holds the certificate chain, the server's certificate first.
	CertFile string `yaml:"certFile" schema:"required"`
	// KeyFile holds the certificate's private key.
	KeyFile string `yaml:"keyFile" schema:"required"`
}

func relativeTo(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}
