package kmstest

import (
	"net/http"
	"time"

	"meridian.dev/meridian/internal/testenv/sigv4test"
)

// signer is who signed a request, as the signature proved it.
type signer struct {
	accessKeyID string
	region      string
	service     string
	cred        *credential
}

// kmsCodes are the error codes KMS answers a refused signature with.
var kmsCodes = map[sigv4test.Kind]string{
	sigv4test.Missing:      "MissingAuthenticationTokenException",
	sigv4test.Incomplete:   "IncompleteSignatureException",
	sigv4test.Expired:      "InvalidSignatureException",
	sigv4test.UnknownKey:   "UnrecognizedClientException",
	sigv4test.ExpiredToken: "ExpiredTokenException",
	sigv4test.Mismatch:     "InvalidSignatureException",
}

// authenticate verifies the request's AWS Signature Version 4 the way AWS
// does, against the secret of the access key it names. It returns the error
// KMS would return otherwise.
func (s *Server) authenticate(r *http.Request, body []byte, now time.Time) (*signer, *apiError) {
	var cred *credential
	sg, f := sigv4test.Verify(r, body, now, func(akid string) (sigv4test.Credential, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		c, ok := s.creds[akid]
		if !ok {
			return sigv4test.Credential{}, false
		}
		cred = c
		return sigv4test.Credential{Secret: c.secret, Token: c.token, Expires: c.expires}, true
	})
	if f != nil {
		return nil, errorf(400, kmsCodes[f.Kind], "%s", f.Message)
	}
	return &signer{accessKeyID: sg.AccessKeyID, region: sg.Region, service: sg.Service, cred: cred}, nil
}
