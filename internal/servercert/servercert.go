package servercert

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// TLSConfig returns the TLS configuration of a server presenting the PEM
// certificate chain in certFile with the key in keyFile. It loads the pair at
// once, so a wrong file stops the daemon at startup, and loads it again on a
// handshake after either file changed on disk; if the new pair does not load,
// the last good one is kept.
func TLSConfig(certFile, keyFile string) (*tls.Config, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile}
	if _, err := c.get(nil); err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get}, nil
}

// certificate is a key pair read from files, reloaded when they change.
type certificate struct {
	certFile, keyFile string

	mu       sync.Mutex
	cert     *tls.Certificate
	modified [2]time.Time
}

func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	var modified [2]time.Time
	for i, f := range []string{c.certFile, c.keyFile} {
		if info, err := os.Stat(f); err == nil {
			modified[i] = info.ModTime()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && modified == c.modified {
		return c.cert, nil
	}
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		if c.cert != nil {
			return c.cert, nil // a renewal half written: keep serving the last good pair
		}
		return nil, fmt.Errorf("tls: load certFile %s and keyFile %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert, c.modified = &pair, modified
	return c.cert, nil
}
