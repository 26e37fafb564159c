package config

import (
	"fmt"
	"os"
)

// Credentials are the contents of the files the repository section names to
// authenticate to the repository, trust its server and verify its commits. A
// value whose file is not set is empty. Secrets written as text (username,
// password, token) are trimmed of a trailing newline; keys and certificates are
// kept as they are.
type Credentials struct {
	// Username and Password are HTTPS basic credentials.
	Username, Password string
	// BearerToken is an HTTPS bearer token.
	BearerToken string
	// SSHPrivateKey is an SSH private key, KnownHosts the server's host keys.
	SSHPrivateKey, KnownHosts []byte
	// CABundle holds PEM certificates trusted for HTTPS besides the system's.
	CABundle []byte
	// Verify says that commit signatures are verified: the section names
	// trusted keys, OpenPGPKeys (armored public keys) and SSHAllowedSigners (an
	// allowed_signers file), either of which may be empty.
	Verify            bool
	OpenPGPKeys       []string
	SSHAllowedSigners string
}

// ReadCredentials reads the files the repository section names for
// credentials, trust and signature verification. Errors start with
// "repository:" and name the file.
func (r *Repository) ReadCredentials() (Credentials, error) {
	f := fileReader{section: "repository"}
	c := Credentials{
		Username:      f.text(r.UsernameFile),
		Password:      f.text(r.PasswordFile),
		BearerToken:   f.text(r.TokenFile),
		SSHPrivateKey: f.bytes(r.SSHKeyFile),
		KnownHosts:    f.bytes(r.KnownHostsFile),
		CABundle:      f.bytes(r.CAFile),
	}
	if len(r.VerifyOpenPGPKeyFiles) > 0 || r.VerifySSHAllowedSignersFile != "" {
		c.Verify = true
		c.SSHAllowedSigners = string(f.bytes(r.VerifySSHAllowedSignersFile))
		for _, file := range r.VerifyOpenPGPKeyFiles {
			c.OpenPGPKeys = append(c.OpenPGPKeys, string(f.bytes(file)))
		}
	}
	return c, f.err
}

// WebhookSecrets are the contents of the repository's webhook secret files; a
// secret whose file is not set is empty, and then its kind of webhook is not
// accepted.
type WebhookSecrets struct {
	// GitHub is GitHub's HMAC secret, GitLab GitLab's token, Generic the secret
	// of the generic HMAC-signed webhook.
	GitHub, GitLab, Generic string
}

// ReadWebhookSecrets reads the webhook secret files of the repository section.
// Errors start with "repository webhook:" and name the file.
func (r *Repository) ReadWebhookSecrets() (WebhookSecrets, error) {
	f := fileReader{section: "repository webhook"}
	s := WebhookSecrets{
		GitHub:  f.text(r.GitHubSecretFile),
		GitLab:  f.text(r.GitLabTokenFile),
		Generic: f.text(r.GenericSecretFile),
	}
	return s, f.err
}

// NotificationURLs reads the receivers' URLs; empty ones are not configured.
// Errors start with "notifications:" and name the file.
func (c *Config) NotificationURLs() (webhook, slack string, err error) {
	f := fileReader{section: "notifications"}
	webhook = f.text(c.Notifications.WebhookURLFile)
	slack = f.text(c.Notifications.SlackURLFile)
	return webhook, slack, f.err
}

// fileReader reads the files of one section until the first error, which it
// keeps: after it, every read returns nothing.
type fileReader struct {
	section string
	err     error
}

// bytes returns the contents of file, or nil when file is empty.
func (f *fileReader) bytes(file string) []byte {
	if file == "" || f.err != nil {
		return nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		f.err = fmt.Errorf("%s: %w", f.section, err)
	}
	return data
}

// text returns the contents of file without trailing newlines and blanks.
func (f *fileReader) text(file string) string {
	b := f.bytes(file)
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return string(b)
}
