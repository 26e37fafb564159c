// Package route53test is an in-process Amazon Route53 for tests and demos: an
// HTTP server on 127.0.0.1 that speaks the 2013-04-01 REST/XML protocol of
// Route53, so code under test drives the real aws-sdk-go-v2 route53 client
// against it by setting the config's BaseEndpoint, and a DNS server on
// 127.0.0.1 that answers for its hosted zones the way Route53's name servers
// do.
//
// It implements the operations a record and health-check owner needs —
// hosted zones (create, get, list by name), ListResourceRecordSets with
// pagination, ChangeResourceRecordSets with atomic batches, Route53's batch
// limits and change status PENDING→INSYNC, GetChange, and the health-check
// lifecycle (create with an idempotent CallerReference, get, update with
// HealthCheckVersion, delete, list, tags, status) — and answers refusals in
// Route53's XML error shape, so the SDK returns its typed errors
// (*types.InvalidChangeBatch, *types.NoSuchHostedZone, ...).
//
// Health checks are real: the server probes each check's target over HTTP,
// HTTPS or TCP at the check's interval (scaled by Options.ProbeScale) and
// turns it unhealthy or healthy after FailureThreshold consecutive results.
// The DNS server serves what is INSYNC: latency records are chosen for the
// client's region (Server.SetClientRegion, or an EDNS client subnet mapped
// with Server.MapSubnet), records whose health check is unhealthy are skipped
// unless all are, and aliases and CNAMEs within the served zones are
// followed.
//
// Every request is held to Route53's documented limits (Options.Limits,
// DocumentedLimits by default): per-account and per-operation token buckets
// answered with Throttling, PriorRequestNotComplete for a change to a zone
// still processing another, a health-check quota (TooManyHealthChecks) and a
// record-set quota per zone, both readable with GetAccountLimit and
// GetHostedZoneLimit. Options.RateScale runs the rates faster for tests.
//
// Tests can inject Throttling or PriorRequestNotComplete with FailNext and
// count requests per operation with Count, for example to assert that a
// cycle with nothing to change makes no ChangeResourceRecordSets call.
//
//	srv := route53test.NewServer(route53test.Options{})
//	defer srv.Close()
//	zoneID := srv.CreateZone("fleet.example.com")
//	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
//		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")}
//	client := route53.NewFromConfig(cfg)
//
// The server does not verify request signatures (it only requires one), does
// not refuse loopback or private health-check targets (real Route53 does), and
// knows no traffic policies, DNSSEC, private zones or query logging.
package route53test
