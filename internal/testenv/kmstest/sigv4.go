package kmstest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// signer is who signed a request, as the signature proved it.
type signer struct {
	accessKeyID string
	region      string
	service     string
	cred        *credential
}

// authenticate verifies the request's AWS Signature Version 4 the way AWS
// does: from the headers the signature names, against the secret of the
// access key it names. It returns the error AWS would return otherwise.
func (s *Server) authenticate(r *http.Request, body []byte, now time.Time) (*signer, *apiError) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return nil, errorf(400, "MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	const algo = "AWS4-HMAC-SHA256"
	if !strings.HasPrefix(auth, algo+" ") {
		return nil, errorf(400, "IncompleteSignatureException", "Unsupported signing algorithm; use %s", algo)
	}
	params := map[string]string{}
	for _, p := range strings.Split(strings.TrimPrefix(auth, algo+" "), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok {
			params[k] = v
		}
	}
	credParts := strings.Split(params["Credential"], "/")
	if len(credParts) != 5 || credParts[4] != "aws4_request" || params["SignedHeaders"] == "" || params["Signature"] == "" {
		return nil, errorf(400, "IncompleteSignatureException", "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters")
	}
	akid, date, region, service := credParts[0], credParts[1], credParts[2], credParts[3]
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || !strings.HasPrefix(amzDate, date) {
		return nil, errorf(400, "IncompleteSignatureException", "X-Amz-Date is missing or does not match the credential scope date")
	}
	if d := now.Sub(t); d > 15*time.Minute || d < -15*time.Minute {
		return nil, errorf(400, "InvalidSignatureException", "Signature expired: %s is now earlier than %s", amzDate, now.Add(-15*time.Minute).UTC().Format("20060102T150405Z"))
	}

	s.mu.Lock()
	cred, ok := s.creds[akid]
	s.mu.Unlock()
	if !ok || (cred.token != "" && r.Header.Get("X-Amz-Security-Token") != cred.token) {
		return nil, errorf(400, "UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	if !cred.expires.IsZero() && now.After(cred.expires) {
		return nil, errorf(400, "ExpiredTokenException", "The security token included in the request is expired")
	}

	payload := sha256Hex(body)
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != "UNSIGNED-PAYLOAD" {
		if h != payload {
			return nil, errorf(400, "InvalidSignatureException", "The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
	}
	signed := strings.Split(params["SignedHeaders"], ";")
	if !containsFold(signed, "host") || !containsFold(signed, "x-amz-date") {
		return nil, errorf(400, "InvalidSignatureException", "'Host' and 'X-Amz-Date' must be signed headers")
	}
	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canon.WriteString(path + "\n")
	canon.WriteString(canonicalQuery(r.URL.Query()) + "\n")
	for _, h := range signed {
		var v string
		if h == "host" {
			v = r.Host
		} else {
			vals := r.Header.Values(h)
			for i := range vals {
				vals[i] = strings.Join(strings.Fields(vals[i]), " ")
			}
			v = strings.Join(vals, ",")
		}
		canon.WriteString(h + ":" + v + "\n")
	}
	canon.WriteString("\n" + params["SignedHeaders"] + "\n")
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" {
		payload = h
	}
	canon.WriteString(payload)

	scope := date + "/" + region + "/" + service + "/aws4_request"
	toSign := algo + "\n" + amzDate + "\n" + scope + "\n" + sha256Hex([]byte(canon.String()))
	k := hmacSHA256([]byte("AWS4"+cred.secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(k, toSign))
	if !hmac.Equal([]byte(want), []byte(params["Signature"])) {
		return nil, errorf(400, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. "+
			"Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return &signer{accessKeyID: akid, region: region, service: service, cred: cred}, nil
}

func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			parts = append(parts, awsEscape(k)+"="+awsEscape(v))
		}
	}
	return strings.Join(parts, "&")
}

func awsEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
