// Package kmstest is an in-memory AWS KMS for tests: an HTTP server on
// 127.0.0.1 that speaks the AWS JSON 1.1 protocol of KMS (TrentService.Encrypt,
// Decrypt and GenerateDataKey) and the AssumeRole call of STS, so code under
// test drives the real aws-sdk-go-v2 clients against it by setting the
// config's BaseEndpoint.
//
// It checks what a real KMS checks and answers with the same error shapes:
// requests must carry a valid Signature Version 4 of known credentials (or of
// credentials it issued through AssumeRole, with their session token); a key
// exists in one region only; a credential may be limited to some keys; a
// disabled key refuses to work; ciphertext is authenticated together with its
// encryption context, and names the key that made it.
//
//	srv := kmstest.NewServer()
//	defer srv.Close()
//	srv.AddCredentials("AKIDTEST", "secret")
//	arn := srv.CreateKey("eu-west-1")
//	cfg := aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL),
//		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
package kmstest
