package kmstest

import (
	"net/http"
	"strings"
	"time"

	"meridian.dev/meridian/internal/testenv/ststest"
)

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

	reqID := s.newRequestID()
	if aerr != nil {
		ststest.WriteError(w, aerr.status, aerr.code, aerr.message, reqID)
		return
	}
	ststest.WriteResult(w, out, reqID)
}

func (s *Server) sts(r *http.Request, body []byte, call *Call) (*ststest.AssumeRoleResponse, *apiError) {
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
	role, sessionName := form.Get("RoleArn"), form.Get("RoleSessionName")
	if role == "" || sessionName == "" {
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
	session := ststest.NewSession(Account, role, sessionName, "ASIAKMSTEST", "AROAKMSTEST", s.seq, time.Now())
	s.creds[session.AccessKeyID] = &credential{
		secret:   session.SecretAccessKey,
		token:    session.SessionToken,
		identity: session.Identity,
		keys:     keys,
		expires:  session.Expires,
	}
	s.mu.Unlock()
	return session.Response(), nil
}
