package ekstest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// signed is who signed a request, as its signature proved it.
type signed struct {
	accessKeyID string
	region      string
	service     string
	cred        *credential
	// headers are the signed header names, lowercase.
	headers []string
}

// verify checks the request's AWS Signature Version 4 the way AWS does, in
// either of its forms: the Authorization header, or the query string of a
// presigned URL (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
// X-Amz-SignedHeaders, X-Amz-Signature). A signature more than 15 minutes off
// the server's clock is refused.
func (s *Server) verify(r *http.Request, body []byte) (*signed, *apiError) {
	const algo = "AWS4-HMAC-SHA256"
	q := r.URL.Query()
	presigned := q.Get("X-Amz-Signature") != ""
	var credential, signedHeaders, signature, amzDate, token string
	if presigned {
		if q.Get("X-Amz-Algorithm") != algo {
			return nil, errorf(400, "IncompleteSignature", "Unsupported signing algorithm; use %s", algo)
		}
		credential, signedHeaders, signature = q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature")
		amzDate, token = q.Get("X-Amz-Date"), q.Get("X-Amz-Security-Token")
	} else {
		auth := r.Header.Get("Authorization")
		if auth == "" {
			return nil, errorf(403, "MissingAuthenticationToken", "Missing Authentication Token")
		}
		if !strings.HasPrefix(auth, algo+" ") {
			return nil, errorf(400, "IncompleteSignature", "Unsupported signing algorithm; use %s", algo)
		}
		params := map[string]string{}
		for _, p := range strings.Split(strings.TrimPrefix(auth, algo+" "), ",") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok {
				params[k] = v
			}
		}
		credential, signedHeaders, signature = params["Credential"], params["SignedHeaders"], params["Signature"]
		amzDate, token = r.Header.Get("X-Amz-Date"), r.Header.Get("X-Amz-Security-Token")
	}
	scopeParts := strings.Split(credential, "/")
	if len(scopeParts) != 5 || scopeParts[4] != "aws4_request" || signedHeaders == "" || signature == "" {
		return nil, errorf(400, "IncompleteSignature", "The request signature requires 'Credential', 'SignedHeaders' and 'Signature'")
	}
	akid, date, region, service := scopeParts[0], scopeParts[1], scopeParts[2], scopeParts[3]
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || !strings.HasPrefix(amzDate, date) {
		return nil, errorf(400, "IncompleteSignature", "X-Amz-Date is missing or does not match the credential scope date")
	}
	now := s.now()
	if d := now.Sub(t); d > 15*time.Minute || d < -15*time.Minute {
		return nil, errorf(403, "SignatureDoesNotMatch", "Signature expired: %s is now earlier than %s (%s - 15 min.)",
			amzDate, now.Add(-15*time.Minute).UTC().Format("20060102T150405Z"), now.UTC().Format("20060102T150405Z"))
	}
	if presigned {
		if exp, err := strconv.Atoi(q.Get("X-Amz-Expires")); err != nil || exp < 1 || exp > 604800 {
			return nil, errorf(400, "AuthorizationQueryParametersError", "X-Amz-Expires must be a number of seconds between 1 and 604800")
		}
	}

	s.mu.Lock()
	cred, ok := s.creds[akid]
	s.mu.Unlock()
	if !ok || cred.token != token {
		return nil, errorf(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
	}
	if !cred.expires.IsZero() && now.After(cred.expires) {
		return nil, errorf(403, "ExpiredToken", "The security token included in the request is expired")
	}
	headers := strings.Split(signedHeaders, ";")
	if !contains(headers, "host") || (!presigned && !contains(headers, "x-amz-date")) {
		return nil, errorf(403, "SignatureDoesNotMatch", "'Host' and 'X-Amz-Date' must be signed")
	}

	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canon.WriteString(path + "\n")
	query := r.URL.Query()
	query.Del("X-Amz-Signature")
	canon.WriteString(canonicalQuery(query) + "\n")
	for _, h := range headers {
		v := r.Host
		if h != "host" {
			vals := r.Header.Values(h)
			for i := range vals {
				vals[i] = strings.Join(strings.Fields(vals[i]), " ")
			}
			v = strings.Join(vals, ",")
		}
		canon.WriteString(h + ":" + v + "\n")
	}
	canon.WriteString("\n" + signedHeaders + "\n")
	payload := sha256Hex(body) // presigned URLs of services other than S3 sign the empty body's hash
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" {
		payload = h
	}
	canon.WriteString(payload)

	toSign := algo + "\n" + amzDate + "\n" + date + "/" + region + "/" + service + "/aws4_request\n" + sha256Hex([]byte(canon.String()))
	k := hmacSHA256([]byte("AWS4"+cred.secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "aws4_request")
	if want := hex.EncodeToString(hmacSHA256(k, toSign)); !hmac.Equal([]byte(want), []byte(signature)) {
		return nil, errorf(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. "+
			"Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return &signed{accessKeyID: akid, region: region, service: service, cred: cred, headers: headers}, nil
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
	return strings.ReplaceAll(strings.ReplaceAll(url.QueryEscape(s), "+", "%20"), "%7E", "~")
}

func contains(list []string, s string) bool {
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
