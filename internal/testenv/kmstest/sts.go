package kmstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"time"
)

const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

type assumeRoleResponse struct {
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

type errorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

// serveSTS answers the awsquery protocol of STS; only AssumeRole is known.
func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request, body []byte) {
	call := Call{Service: "sts"}
	out, aerr := s.sts(r, body, &call)
	s.mu.Lock()
	if aerr != nil {
		call.Error = aerr.code
	}
	s.calls = append(s.calls, call)
	s.mu.Unlock()

	w.Header().Set("Content-Type", "text/xml")
	reqID := s.newRequestID()
	w.Header().Set("X-Amzn-Requestid", reqID)
	if aerr != nil {
		var e errorResponse
		e.Xmlns = stsNamespace
		e.Error.Type = "Sender"
		if aerr.status >= 500 {
			e.Error.Type = "Receiver"
		}
		e.Error.Code, e.Error.Message, e.RequestID = aerr.code, aerr.message, reqID
		w.WriteHeader(aerr.status)
		_ = xml.NewEncoder(w).Encode(e)
		return
	}
	out.Xmlns, out.RequestID = stsNamespace, reqID
	_ = xml.NewEncoder(w).Encode(out)
}

func (s *Server) sts(r *http.Request, body []byte, call *Call) (*assumeRoleResponse, *apiError) {
	form, err := formValues(r, body)
	if r.Method != http.MethodPost || err != nil {
		return nil, errorf(400, "InvalidAction", "Could not find operation for this request")
	}
	call.Operation = form.Get("Action")
	sg, aerr := s.authenticate(r, body, time.Now())
	if aerr != nil {
		// STS names signature errors without the Exception suffix.
		aerr.code = strings.TrimSuffix(aerr.code, "Exception")
		if aerr.code == "UnrecognizedClient" {
			aerr.code = "InvalidClientTokenId"
		}
		aerr.status = 403
		return nil, aerr
	}
	call.Region, call.AccessKeyID = sg.region, sg.accessKeyID
	if sg.service != "sts" {
		return nil, errorf(403, "SignatureDoesNotMatch", "Credential should be scoped to correct service: 'sts'.")
	}
	if call.Operation != "AssumeRole" {
		return nil, errorf(400, "InvalidAction", "Could not find operation %s for version %s", call.Operation, form.Get("Version"))
	}
	role, session := form.Get("RoleArn"), form.Get("RoleSessionName")
	if role == "" || session == "" {
		return nil, errorf(400, "ValidationError", "RoleArn and RoleSessionName are required")
	}
	s.mu.Lock()
	keys, ok := s.roles[role]
	s.mu.Unlock()
	if !ok {
		return nil, errorf(403, "AccessDenied", "User: %s is not authorized to perform: sts:AssumeRole on resource: %s", sg.cred.identity, role)
	}
	s.mu.Lock()
	s.seq++
	akid := fmt.Sprintf("ASIAKMSTEST%09d", s.seq)
	roleName := role[strings.LastIndex(role, "/")+1:]
	c := &credential{
		secret:   randomHex(20),
		token:    randomHex(32),
		identity: fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", Account, roleName, session),
		keys:     keys,
		expires:  time.Now().Add(time.Hour),
	}
	s.creds[akid] = c
	s.mu.Unlock()

	out := &assumeRoleResponse{}
	out.Result.Credentials.AccessKeyID = akid
	out.Result.Credentials.SecretAccessKey = c.secret
	out.Result.Credentials.SessionToken = c.token
	out.Result.Credentials.Expiration = c.expires.UTC().Format(time.RFC3339)
	out.Result.AssumedRoleUser.Arn = c.identity
	out.Result.AssumedRoleUser.AssumedRoleID = "AROAKMSTEST:" + session
	return out, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
