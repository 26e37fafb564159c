package ststest

import (
	"encoding/xml"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSessionResponse(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	s := NewSession("123456789012", "arn:aws:iam::123456789012:role/platform/meridian", "pass-1", "ASIATEST", "AROATEST", 7, now)
	if s.AccessKeyID != "ASIATEST000000007" || s.Identity != "arn:aws:sts::123456789012:assumed-role/meridian/pass-1" ||
		s.RoleID != "AROATESTMERIDIAN:pass-1" || !s.Expires.Equal(now.Add(time.Hour)) || len(s.SecretAccessKey) != 40 || len(s.SessionToken) != 64 {
		t.Fatalf("session %+v", s)
	}
	w := httptest.NewRecorder()
	WriteResult(w, s.Response(), "req-1")
	var got AssumeRoleResponse
	if err := xml.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	c := got.Result.Credentials
	if c.AccessKeyID != s.AccessKeyID || c.Expiration != "2026-12-05T11:00:00Z" || got.RequestID != "req-1" || got.Xmlns != Namespace ||
		got.Result.AssumedRoleUser.Arn != s.Identity || w.Header().Get("X-Amzn-Requestid") != "req-1" {
		t.Errorf("answer %s", w.Body.String())
	}
}

func TestWriteError(t *testing.T) {
	for status, typ := range map[int]string{403: "Sender", 503: "Receiver"} {
		w := httptest.NewRecorder()
		WriteError(w, status, "AccessDenied", "not allowed", "req-2")
		var got ErrorResponse
		if err := xml.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if w.Code != status || got.Error.Type != typ || got.Error.Code != "AccessDenied" || got.RequestID != "req-2" || !strings.Contains(w.Header().Get("Content-Type"), "xml") {
			t.Errorf("status %d: %d %s", status, w.Code, w.Body.String())
		}
	}
}
