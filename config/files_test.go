package config

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReadFiles reads the secret files the configuration names: text trimmed of
// its trailing newline, keys and certificates as they are, signature
// verification on only when trusted keys are named; a file that cannot be read
// is an error naming its section and path.
func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"username": "fleet\n", "password": "s3cret-pass\r\n", "token": "tok-0123456789\n",
		"id_ed25519":  "-----BEGIN OPENSSH PRIVATE KEY-----\nkey\n-----END OPENSSH PRIVATE KEY-----\n",
		"known_hosts": "git.example.com ssh-ed25519 AAAA\n", "ca.pem": "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
		"alice.asc": "-----BEGIN PGP PUBLIC KEY BLOCK-----\nalice\n", "allowed_signers": "alice@example.com ssh-ed25519 AAAA\n",
		"github": "gh-secret\n", "slack": "https://hooks.slack.example.com/T0/B0/x\n",
	} {
		write(t, dir, name, content)
	}
	head := "apiVersion: meridian.dev/v1alpha1\nkind: Config\n"
	tests := []struct {
		name, content   string
		wantCredentials Credentials
		wantWebhook     WebhookSecrets
		wantSlack       string
		wantErr         string // from any of the readers
	}{{
		name:            "none",
		content:         head + "repository: {url: https://git.example.com/fleet.git, branch: main}\n",
		wantCredentials: Credentials{},
	}, {
		name: "https with a private CA, verified commits",
		content: head + `repository:
  url: https://git.example.com/fleet.git
  branch: main
  usernameFile: username
  passwordFile: password
  caFile: ca.pem
  verifyOpenPGPKeyFiles: [alice.asc]
  githubSecretFile: github
notifications:
  slackURLFile: slack
`,
		wantCredentials: Credentials{Username: "fleet", Password: "s3cret-pass", CABundle: []byte("-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"),
			Verify: true, OpenPGPKeys: []string{"-----BEGIN PGP PUBLIC KEY BLOCK-----\nalice\n"}},
		wantWebhook: WebhookSecrets{GitHub: "gh-secret"},
		wantSlack:   "https://hooks.slack.example.com/T0/B0/x",
	}, {
		name: "ssh, commits verified by allowed signers",
		content: head + `repository:
  url: ssh://git@git.example.com/fleet.git
  branch: main
  sshKeyFile: id_ed25519
  knownHostsFile: known_hosts
  verifySSHAllowedSignersFile: allowed_signers
`,
		wantCredentials: Credentials{SSHPrivateKey: []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nkey\n-----END OPENSSH PRIVATE KEY-----\n"),
			KnownHosts: []byte("git.example.com ssh-ed25519 AAAA\n"), Verify: true, SSHAllowedSigners: "alice@example.com ssh-ed25519 AAAA\n"},
	}, {
		name:            "a token",
		content:         head + "repository: {url: https://git.example.com/fleet.git, branch: main, tokenFile: token}\n",
		wantCredentials: Credentials{BearerToken: "tok-0123456789"},
	}, {
		name:    "a missing credential",
		content: head + "repository: {url: https://git.example.com/fleet.git, branch: main, tokenFile: missing-token}\n",
		wantErr: "repository: open " + filepath.Join(dir, "missing-token"),
	}, {
		name:    "a missing webhook secret",
		content: head + "repository: {url: https://git.example.com/fleet.git, branch: main, gitlabTokenFile: gitlab}\n",
		wantErr: "repository webhook: open " + filepath.Join(dir, "gitlab"),
	}, {
		name:    "a missing notification URL",
		content: head + "repository: {url: https://git.example.com/fleet.git, branch: main}\nnotifications: {webhookURLFile: hook}\n",
		wantErr: "notifications: open " + filepath.Join(dir, "hook"),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(write(t, dir, "meridian.yaml", tt.content))
			if err != nil {
				t.Fatal(err)
			}
			creds, cerr := c.Repository.ReadCredentials()
			hooks, herr := c.Repository.ReadWebhookSecrets()
			_, slack, nerr := c.NotificationURLs()
			if tt.wantErr != "" {
				for _, err := range []error{cerr, herr, nerr} {
					if err != nil && strings.Contains(err.Error(), tt.wantErr) {
						return
					}
				}
				t.Fatalf("errors %v, %v, %v; want one containing %q", cerr, herr, nerr, tt.wantErr)
			}
			for _, err := range []error{cerr, herr, nerr} {
				if err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tt.wantCredentials, creds); diff != "" {
				t.Errorf("credentials (-want +got):\n%s", diff)
			}
			if hooks != tt.wantWebhook || slack != tt.wantSlack {
				t.Errorf("webhook secrets %+v, slack %q; want %+v, %q", hooks, slack, tt.wantWebhook, tt.wantSlack)
			}
		})
	}
}

// TestLeaf keeps this package a leaf that maps a file to values: of Meridian it
// imports only the fleet decoder, and nothing that builds clients.
func TestLeaf(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the dependencies with")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		forbidden := dep == "net/http" || strings.HasPrefix(dep, "k8s.io/client-go/") || strings.HasPrefix(dep, "github.com/aws/") ||
			(strings.HasPrefix(dep, "meridian.dev/meridian/") && dep != "meridian.dev/meridian/config" && dep != "meridian.dev/meridian/fleet")
		if forbidden {
			t.Errorf("config depends on %s", dep)
		}
	}
}
