// Package ekstest is Amazon EKS's IAM authentication for tests: an in-memory
// EKS and STS (Server) that the real aws-sdk-go-v2 eks and sts clients drive
// over HTTPS, and a webhook token authenticator (Authenticator) that a
// kube-apiserver of the testbed consults, as EKS's own authenticator does.
//
// Server speaks EKS's REST-JSON protocol for DescribeCluster
// (GET /clusters/{name}) and STS's query protocol for AssumeRole and
// GetCallerIdentity, the latter also as a presigned GET. Every request must
// carry a valid Signature Version 4 of known credentials, in the Authorization
// header or the query string, at most 15 minutes off the server's clock;
// credentials issued by AssumeRole need their session token. Errors have AWS's
// shapes, so the SDK returns its typed errors.
//
// Authenticator accepts a bearer token only as EKS does: "k8s-aws-v1." and
// the base64url of a presigned GetCallerIdentity URL of Server, signed at most
// 15 minutes ago, whose signature covers the x-k8s-aws-id header naming the
// cluster; it sends that request to Server, which checks the signature, and
// maps the identity it returns (a role's sessions to the role) to a Kubernetes
// user through access entries. Anything else is refused, and the API server
// answers 401.
//
// Nothing here is linked into the meridian binary.
package ekstest
