// Package ststest is what AWS STS test doubles share: the shapes STS's query
// protocol answers with, and the temporary credentials AssumeRole hands out. The
// servers that use it (kmstest, ekstest) keep their own identities and policies;
// this package keeps the wire format in one place.
package ststest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Namespace is the XML namespace of STS's answers.
const Namespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// AssumeRoleResponse is the answer to AssumeRole.
type AssumeRoleResponse struct {
	XMLName xml.Name `xml:"AssumeRoleResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Credentials struct {
			AccessKeyID     string `xml:"AccessKeyId"`
			SecretAccessKey string `xml:"SecretAccessKey"`
			SessionToken    string `xml:"SessionToken"`
			Expiration      string `xml:"Expiration"`
		} `xml:"Credentials"`
		AssumedRoleUser struct {
			Arn           string `xml:"Arn"`
			AssumedRoleID string `xml:"AssumedRoleId"`
		} `xml:"AssumedRoleUser"`
	} `xml:"AssumeRoleResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

// CallerIdentity is the answer to GetCallerIdentity.
type CallerIdentity struct {
	XMLName xml.Name `xml:"GetCallerIdentityResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

// ErrorResponse is STS's answer to a request it refuses.
type ErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

// WriteError answers a refused request: status, and the error's code and
// message; Type is Receiver for a status of 500 or more, else Sender.
func WriteError(w http.ResponseWriter, status int, code, message, requestID string) {
	var e ErrorResponse
	e.Xmlns = Namespace
	e.Error.Type = "Sender"
	if status >= 500 {
		e.Error.Type = "Receiver"
	}
	e.Error.Code, e.Error.Message, e.RequestID = code, message, requestID
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(status)
	_ = xml.NewEncoder(w).Encode(e)
}

// WriteResult answers with out, an *AssumeRoleResponse or *CallerIdentity,
// setting its namespace and request ID.
func WriteResult(w http.ResponseWriter, out any, requestID string) {
	switch o := out.(type) {
	case *AssumeRoleResponse:
		o.Xmlns, o.RequestID = Namespace, requestID
	case *CallerIdentity:
		o.Xmlns, o.RequestID = Namespace, requestID
	default:
		panic(fmt.Sprintf("ststest: WriteResult of %T", out))
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", requestID)
	_ = xml.NewEncoder(w).Encode(out)
}

// Session is the temporary credentials of an assumed role.
type Session struct {
	// AccessKeyID is the given prefix and the session's number.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Identity is the assumed role's ARN, as GetCallerIdentity and errors name it.
	Identity string
	// RoleID is the AssumedRoleId: the given prefix, the role's name and the
	// session's name.
	RoleID  string
	Expires time.Time
}

// NewSession makes the credentials of session n of role (an IAM role ARN) in
// account, valid for an hour from now: access keys start with keyPrefix (ASIA and
// the server's name, as AWS's start with ASIA), role IDs with idPrefix.
func NewSession(account, role, sessionName, keyPrefix, idPrefix string, n int, now time.Time) Session {
	roleName := role[strings.LastIndex(role, "/")+1:]
	return Session{
		AccessKeyID:     fmt.Sprintf("%s%09d", keyPrefix, n),
		SecretAccessKey: randomHex(20),
		SessionToken:    randomHex(32),
		Identity:        fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", account, roleName, sessionName),
		RoleID:          idPrefix + strings.ToUpper(roleName) + ":" + sessionName,
		Expires:         now.Add(time.Hour),
	}
}

// Response is the AssumeRole answer that hands out s.
func (s Session) Response() *AssumeRoleResponse {
	out := &AssumeRoleResponse{}
	out.Result.Credentials.AccessKeyID = s.AccessKeyID
	out.Result.Credentials.SecretAccessKey = s.SecretAccessKey
	out.Result.Credentials.SessionToken = s.SessionToken
	out.Result.Credentials.Expiration = s.Expires.UTC().Format(time.RFC3339)
	out.Result.AssumedRoleUser.Arn = s.Identity
	out.Result.AssumedRoleUser.AssumedRoleID = s.RoleID
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
