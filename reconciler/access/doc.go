// Package access reaches the clusters of regions that are not a context of
// Meridian's kubeconfig: a kubeconfig kept in a Secret of the management cluster
// (Secrets), or an Amazon EKS cluster reached with IAM (EKS), whose endpoint and
// CA come from the EKS API and whose bearer token Meridian makes itself from its
// AWS credentials, as the aws-iam-authenticator token format defines it.
//
// Both return a *rest.Config for the reconciler to build a region's write side
// from. Neither ever puts a credential in an error or a log line: errors name the
// Secret, key or cluster and say what to do.
package access
