package image

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// caBundle is the PEM file of root certificates the image carries: Mozilla's
// NSS trust store as golang.org/x/crypto/x509roots/fallback ships it, so the
// image trusts what that module's version trusts, whatever the build machine
// has installed. A root that NSS distrusts for certificates issued after some
// date carries that constraint in the module; a PEM file cannot say it, so
// such roots are left out rather than trusted without it.
func caBundle() ([]byte, error) {
	var buf bytes.Buffer
	n := 0
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		cert, err := x509.ParseCertificate(root.Certificate)
		if err != nil {
			return nil, fmt.Errorf("image: CA bundle: %w", err)
		}
		fmt.Fprintf(&buf, "# %s\n", cert.Subject)
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate}); err != nil {
			return nil, err
		}
		n++
	}
	if n == 0 {
		return nil, errors.New("image: CA bundle: no root certificates")
	}
	return buf.Bytes(), nil
}
