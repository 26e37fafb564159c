// Package sigv4test verifies AWS Signature Version 4 the way AWS services do,
// for the AWS test servers of internal/testenv (kmstest, ekstest): from the
// Authorization header, or from the query string of a presigned URL, against
// the secret of the access key it names. Each server turns a Failure into the
// error code and status its own service answers with.
package sigv4test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Credential is an access key a test server accepts.
type Credential struct {
	// Secret is the secret access key.
	Secret string
	// Token is the session token of temporary credentials; empty for long-term
	// ones, which must then send none.
	Token string
	// Expires ends temporary credentials; zero never.
	Expires time.Time
}

// Signed is what a verified signature proves.
type Signed struct {
	// AccessKeyID, Region and Service are those of the credential scope.
	AccessKeyID, Region, Service string
	// Headers are the signed headers' names, lowercase.
	Headers []string
	// Presigned says the signature was in the query string.
	Presigned bool
}

// Kind is why a request's signature was refused.
type Kind int

// The kinds of refusal, each of which AWS services answer with a code of their own.
const (
	// Missing: no signature at all.
	Missing Kind = iota
	// Incomplete: a signature that lacks parts or uses another algorithm.
	Incomplete
	// Expired: signed more than 15 minutes from the server's clock.
	Expired
	// UnknownKey: an access key, or a session token, the server does not know.
	UnknownKey
	// ExpiredToken: temporary credentials past their expiry.
	ExpiredToken
	// Mismatch: the signature is not the one the secret makes.
	Mismatch
)

// Failure is a refused signature: its kind and AWS's message for it.
type Failure struct {
	Kind    Kind
	Message string
}

func (f *Failure) Error() string { return f.Message }

func fail(k Kind, format string, args ...any) *Failure {
	return &Failure{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Verify checks r's signature at now. lookup returns the credential of an
// access key id, or false when the server does not know it.
func Verify(r *http.Request, body []byte, now time.Time, lookup func(accessKeyID string) (Credential, bool)) (*Signed, *Failure) {
	const algo = "AWS4-HMAC-SHA256"
	q := r.URL.Query()
	presigned := q.Get("X-Amz-Signature") != ""
	var credential, signedHeaders, signature, amzDate, token string
	if presigned {
		if q.Get("X-Amz-Algorithm") != algo {
			return nil, fail(Incomplete, "Unsupported signing algorithm; use %s", algo)
		}
		credential, signedHeaders, signature = q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature")
		amzDate, token = q.Get("X-Amz-Date"), q.Get("X-Amz-Security-Token")
		if exp, err := strconv.Atoi(q.Get("X-Amz-Expires")); err != nil || exp < 1 || exp > 604800 {
			return nil, fail(Incomplete, "X-Amz-Expires must be a number of seconds between 1 and 604800")
		}
	} else {
		auth := r.Header.Get("Authorization")
		if auth == "" {
			return nil, fail(Missing, "Missing Authentication Token")
		}
		if !strings.HasPrefix(auth, algo+" ") {
			return nil, fail(Incomplete, "Unsupported signing algorithm; use %s", algo)
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
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || signedHeaders == "" || signature == "" {
		return nil, fail(Incomplete, "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters")
	}
	akid, date, region, service := scope[0], scope[1], scope[2], scope[3]
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || !strings.HasPrefix(amzDate, date) {
		return nil, fail(Incomplete, "X-Amz-Date is missing or does not match the credential scope date")
	}
	if d := now.Sub(t); d > 15*time.Minute || d < -15*time.Minute {
		return nil, fail(Expired, "Signature expired: %s is now earlier than %s", amzDate, now.Add(-15*time.Minute).UTC().Format("20060102T150405Z"))
	}
	cred, ok := lookup(akid)
	if !ok || cred.Token != token {
		return nil, fail(UnknownKey, "The security token included in the request is invalid.")
	}
	if !cred.Expires.IsZero() && now.After(cred.Expires) {
		return nil, fail(ExpiredToken, "The security token included in the request is expired")
	}

	payload := sha256Hex(body) // presigned URLs of services other than S3 sign the body's hash too
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != "UNSIGNED-PAYLOAD" {
		if h != payload {
			return nil, fail(Mismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
	}
	headers := strings.Split(signedHeaders, ";")
	if !contains(headers, "host") || (!presigned && !contains(headers, "x-amz-date")) {
		return nil, fail(Mismatch, "'Host' and 'X-Amz-Date' must be signed headers")
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
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" {
		payload = h
	}
	canon.WriteString(payload)

	toSign := algo + "\n" + amzDate + "\n" + date + "/" + region + "/" + service + "/aws4_request\n" + sha256Hex([]byte(canon.String()))
	k := hmacSHA256([]byte("AWS4"+cred.Secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "aws4_request")
	if want := hex.EncodeToString(hmacSHA256(k, toSign)); !hmac.Equal([]byte(want), []byte(signature)) {
		return nil, fail(Mismatch, "The request signature we calculated does not match the signature you provided. "+
			"Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return &Signed{AccessKeyID: akid, Region: region, Service: service, Headers: headers, Presigned: presigned}, nil
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
