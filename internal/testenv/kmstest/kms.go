package kmstest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

const jsonContentType = "application/x-amz-json-1.1"

type encryptInput struct {
	KeyId             string
	Plaintext         []byte // base64 in JSON, as AWS blobs are
	EncryptionContext map[string]string
}

type decryptInput struct {
	KeyId             string
	CiphertextBlob    []byte
	EncryptionContext map[string]string
}

type generateDataKeyInput struct {
	KeyId             string
	KeySpec           string
	NumberOfBytes     *int
	EncryptionContext map[string]string
}

func (s *Server) serveKMS(w http.ResponseWriter, r *http.Request, target string, body []byte) {
	call := Call{Service: "kms", Operation: strings.TrimPrefix(target, "TrentService.")}
	out, err := s.kms(r, target, body, &call)
	s.mu.Lock()
	if err != nil {
		call.Error = err.code
	}
	s.calls = append(s.calls, call)
	s.mu.Unlock()

	w.Header().Set("Content-Type", jsonContentType)
	w.Header().Set("X-Amzn-Requestid", s.newRequestID())
	if err != nil {
		w.Header().Set("X-Amzn-Errortype", err.code)
		w.WriteHeader(err.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": err.code, "message": err.message})
		return
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) kms(r *http.Request, target string, body []byte, call *Call) (any, *apiError) {
	if r.Method != http.MethodPost {
		return nil, errorf(400, "UnknownOperationException", "")
	}
	sg, aerr := s.authenticate(r, body, time.Now())
	if aerr != nil {
		return nil, aerr
	}
	call.Region, call.AccessKeyID = sg.region, sg.accessKeyID
	if sg.service != "kms" {
		return nil, errorf(400, "InvalidSignatureException", "Credential should be scoped to correct service: 'kms'.")
	}
	if ct := r.Header.Get("Content-Type"); ct != jsonContentType {
		return nil, errorf(400, "SerializationException", "Content-Type %q is not %s", ct, jsonContentType)
	}
	switch target {
	case "TrentService.Encrypt":
		var in encryptInput
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, errorf(400, "SerializationException", "%v", err)
		}
		if len(in.Plaintext) == 0 || len(in.Plaintext) > 4096 {
			return nil, errorf(400, "ValidationException", "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length between 1 and 4096")
		}
		k, aerr := s.usableKey(sg, in.KeyId, "kms:Encrypt", call)
		if aerr != nil {
			return nil, aerr
		}
		blob, err := seal(k, in.Plaintext, in.EncryptionContext)
		if err != nil {
			return nil, errorf(500, "KMSInternalException", "%v", err)
		}
		return map[string]any{"CiphertextBlob": blob, "KeyId": k.arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, nil

	case "TrentService.GenerateDataKey":
		var in generateDataKeyInput
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, errorf(400, "SerializationException", "%v", err)
		}
		n := 0
		switch {
		case in.KeySpec != "" && in.NumberOfBytes != nil:
			return nil, errorf(400, "ValidationException", "Please specify either number of bytes or key spec.")
		case in.KeySpec == "AES_256":
			n = 32
		case in.KeySpec == "AES_128":
			n = 16
		case in.KeySpec != "":
			return nil, errorf(400, "ValidationException", "1 validation error detected: Value '%s' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]", in.KeySpec)
		case in.NumberOfBytes != nil && *in.NumberOfBytes >= 1 && *in.NumberOfBytes <= 1024:
			n = *in.NumberOfBytes
		default:
			return nil, errorf(400, "ValidationException", "Please specify either number of bytes (1 to 1024) or key spec.")
		}
		k, aerr := s.usableKey(sg, in.KeyId, "kms:GenerateDataKey", call)
		if aerr != nil {
			return nil, aerr
		}
		plain := make([]byte, n)
		if _, err := rand.Read(plain); err != nil {
			return nil, errorf(500, "KMSInternalException", "%v", err)
		}
		blob, err := seal(k, plain, in.EncryptionContext)
		if err != nil {
			return nil, errorf(500, "KMSInternalException", "%v", err)
		}
		return map[string]any{"CiphertextBlob": blob, "Plaintext": plain, "KeyId": k.arn}, nil

	case "TrentService.Decrypt":
		var in decryptInput
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, errorf(400, "SerializationException", "%v", err)
		}
		arn, sealed, ok := blobKey(in.CiphertextBlob)
		if !ok {
			return nil, errorf(400, "InvalidCiphertextException", "")
		}
		if in.KeyId != "" {
			want, aerr := s.resolve(sg.region, in.KeyId)
			if aerr != nil {
				return nil, aerr
			}
			if want != arn {
				return nil, errorf(400, "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.")
			}
		}
		s.mu.Lock()
		k, exists := s.keys[arn]
		s.mu.Unlock()
		if !exists || k.region != sg.region {
			return nil, errorf(400, "InvalidCiphertextException", "")
		}
		k, aerr := s.usableKey(sg, arn, "kms:Decrypt", call)
		if aerr != nil {
			return nil, aerr
		}
		plain, ok := open(k, sealed, in.EncryptionContext)
		if !ok {
			return nil, errorf(400, "InvalidCiphertextException", "")
		}
		return map[string]any{"Plaintext": plain, "KeyId": k.arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, nil
	}
	return nil, errorf(400, "UnknownOperationException", "")
}

// resolve turns a key id or key ARN into the ARN of a key in region.
func (s *Server) resolve(region, keyID string) (string, *apiError) {
	if keyID == "" {
		return "", errorf(400, "ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	arn := keyID
	if !strings.HasPrefix(keyID, "arn:") {
		if strings.HasPrefix(keyID, "alias/") {
			return "", errorf(400, "NotFoundException", "Alias arn:aws:kms:%s:%s:%s is not found.", region, Account, keyID)
		}
		arn = fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", region, Account, keyID)
	} else if !strings.HasPrefix(keyID, "arn:aws:kms:") || !strings.Contains(keyID, ":key/") {
		return "", errorf(400, "NotFoundException", "Invalid arn %s", keyID)
	}
	s.mu.Lock()
	k, ok := s.keys[arn]
	s.mu.Unlock()
	if !ok || k.region != region {
		return "", errorf(400, "NotFoundException", "Key '%s' does not exist", arn)
	}
	return arn, nil
}

// usableKey resolves keyID and checks that the signer may use it for action
// and that it is enabled.
func (s *Server) usableKey(sg *signer, keyID, action string, call *Call) (*key, *apiError) {
	arn, aerr := s.resolve(sg.region, keyID)
	if aerr != nil {
		return nil, aerr
	}
	call.Key = arn
	if sg.cred.keys != nil && !slices.Contains(sg.cred.keys, arn) {
		return nil, errorf(400, "AccessDeniedException", "User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action",
			sg.cred.identity, action, arn, action)
	}
	s.mu.Lock()
	k := s.keys[arn]
	disabled := k.disabled
	s.mu.Unlock()
	if disabled {
		return nil, errorf(400, "DisabledException", "%s is disabled.", arn)
	}
	return k, nil
}
