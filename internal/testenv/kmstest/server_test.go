package kmstest

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

// config is an explicit SDK configuration for srv: nothing comes from the
// environment (AWS_CA_BUNDLE and friends stay out of it).
func config(srv *Server, region, akid, secret string) aws.Config {
	return aws.Config{
		Region:           region,
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider(akid, secret, ""),
		RetryMaxAttempts: 1,
	}
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	srv.AddCredentials("AKIDOK", "s3cr3t")
	arn := srv.CreateKey("eu-west-1")
	c := kms.NewFromConfig(config(srv, "eu-west-1", "AKIDOK", "s3cr3t"))
	ctx := context.Background()
	ec := map[string]string{"tenant": "trucking"}

	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("data key"), EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(enc.KeyId); got != arn {
		t.Errorf("Encrypt KeyId = %q, want %q", got, arn)
	}
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	if string(dec.Plaintext) != "data key" || aws.ToString(dec.KeyId) != arn {
		t.Errorf("Decrypt = %q by %q, want the plaintext back by %q", dec.Plaintext, aws.ToString(dec.KeyId), arn)
	}

	gen, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: "AES_256"})
	if err != nil {
		t.Fatal(err)
	}
	if len(gen.Plaintext) != 32 {
		t.Errorf("GenerateDataKey plaintext has %d bytes, want 32", len(gen.Plaintext))
	}
	dec, err = c.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(arn), CiphertextBlob: gen.CiphertextBlob})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(gen.Plaintext, dec.Plaintext); diff != "" {
		t.Errorf("GenerateDataKey ciphertext decrypts to another key (-want +got):\n%s", diff)
	}

	want := []Call{
		{Service: "kms", Operation: "Encrypt", Region: "eu-west-1", AccessKeyID: "AKIDOK", Key: arn},
		{Service: "kms", Operation: "Decrypt", Region: "eu-west-1", AccessKeyID: "AKIDOK", Key: arn},
		{Service: "kms", Operation: "GenerateDataKey", Region: "eu-west-1", AccessKeyID: "AKIDOK", Key: arn},
		{Service: "kms", Operation: "Decrypt", Region: "eu-west-1", AccessKeyID: "AKIDOK", Key: arn},
	}
	if diff := cmp.Diff(want, srv.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestRefusals(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	arn := srv.CreateKey("eu-west-1")
	other := srv.CreateKey("eu-west-1")
	disabled := srv.CreateKey("eu-west-1")
	usEast := srv.CreateKey("us-east-1")
	srv.DisableKey(disabled)
	srv.AddCredentials("AKIDOK", "s3cr3t")
	srv.AddCredentials("AKIDLIMITED", "s3cr3t", other)
	ctx := context.Background()

	ok := kms.NewFromConfig(config(srv, "eu-west-1", "AKIDOK", "s3cr3t"))
	enc, err := ok.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x"), EncryptionContext: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		client   *kms.Client
		call     func(*kms.Client) error
		wantCode string
		wantMsg  string
	}{
		{
			name:   "unknown access key",
			client: kms.NewFromConfig(config(srv, "eu-west-1", "AKIDWHO", "s3cr3t")),
			call: func(c *kms.Client) error {
				_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")})
				return err
			},
			wantCode: "UnrecognizedClientException",
			wantMsg:  "The security token included in the request is invalid.",
		},
		{
			name:   "wrong secret",
			client: kms.NewFromConfig(config(srv, "eu-west-1", "AKIDOK", "wrong")),
			call: func(c *kms.Client) error {
				_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")})
				return err
			},
			wantCode: "InvalidSignatureException",
			wantMsg:  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
		},
		{
			name:   "key of another region",
			client: ok,
			call: func(c *kms.Client) error {
				_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(usEast), Plaintext: []byte("x")})
				return err
			},
			wantCode: "NotFoundException",
			wantMsg:  "Key '" + usEast + "' does not exist",
		},
		{
			name:   "key the credentials may not use",
			client: kms.NewFromConfig(config(srv, "eu-west-1", "AKIDLIMITED", "s3cr3t")),
			call: func(c *kms.Client) error {
				_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "b"}})
				return err
			},
			wantCode: "AccessDeniedException",
			wantMsg:  "User: arn:aws:iam::111122223333:user/AKIDLIMITED is not authorized to perform: kms:Decrypt on resource: " + arn + " because no identity-based policy allows the kms:Decrypt action",
		},
		{
			name:   "disabled key",
			client: ok,
			call: func(c *kms.Client) error {
				_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(disabled), Plaintext: []byte("x")})
				return err
			},
			wantCode: "DisabledException",
			wantMsg:  disabled + " is disabled.",
		},
		{
			name:   "wrong encryption context",
			client: ok,
			call: func(c *kms.Client) error {
				_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "c"}})
				return err
			},
			wantCode: "InvalidCiphertextException",
		},
		{
			name:   "ciphertext of another key",
			client: ok,
			call: func(c *kms.Client) error {
				_, err := c.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(other), CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "b"}})
				return err
			},
			wantCode: "IncorrectKeyException",
			wantMsg:  "The key ID in the request does not identify a CMK that can perform this operation.",
		},
		{
			name:   "garbage ciphertext",
			client: ok,
			call: func(c *kms.Client) error {
				_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte("not a blob")})
				return err
			},
			wantCode: "InvalidCiphertextException",
		},
		{
			name:   "data key spec and size both given",
			client: ok,
			call: func(c *kms.Client) error {
				_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: "AES_256", NumberOfBytes: aws.Int32(32)})
				return err
			},
			wantCode: "ValidationException",
			wantMsg:  "Please specify either number of bytes or key spec.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(tt.client)
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error = %v, want an AWS API error %s", err, tt.wantCode)
			}
			if apiErr.ErrorCode() != tt.wantCode || apiErr.ErrorMessage() != tt.wantMsg {
				t.Errorf("error = %s %q, want %s %q", apiErr.ErrorCode(), apiErr.ErrorMessage(), tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestAssumeRole(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	allowed := srv.CreateKey("eu-west-1")
	denied := srv.CreateKey("eu-west-1")
	srv.AddCredentials("AKIDBASE", "base", denied) // the base identity may not use allowed
	role := "arn:aws:iam::111122223333:role/sops"
	srv.AddRole(role, allowed)
	ctx := context.Background()
	base := config(srv, "eu-west-1", "AKIDBASE", "base")

	assumed := base.Copy()
	assumed.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(base), role))
	c := kms.NewFromConfig(assumed)
	if _, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(allowed), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("encrypting with the role's key: %v", err)
	}
	_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(denied), Plaintext: []byte("x")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDeniedException" {
		t.Errorf("encrypting with a key the role may not use: %v, want AccessDeniedException", err)
	}

	unknown := base.Copy()
	unknown.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(base), "arn:aws:iam::111122223333:role/nope"))
	_, err = kms.NewFromConfig(unknown).Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(allowed), Plaintext: []byte("x")})
	wantMsg := "User: arn:aws:iam::111122223333:user/AKIDBASE is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/nope"
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDenied" || apiErr.ErrorMessage() != wantMsg {
		t.Errorf("assuming an unknown role: %v, want AccessDenied %q", err, wantMsg)
	}

	var ops []string
	for _, c := range srv.Calls() {
		ops = append(ops, c.Service+":"+c.Operation+":"+c.Error)
	}
	want := []string{"sts:AssumeRole:", "kms:Encrypt:", "kms:Encrypt:AccessDeniedException", "sts:AssumeRole:AccessDenied"}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}
