package route53test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/go-cmp/cmp"
)

func TestHostedZones(t *testing.T) {
	srv, c := newServer(t, Options{})
	ctx := context.Background()
	created, err := c.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String("Fleet.Example.com"), CallerReference: aws.String("ref-1")})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(created.HostedZone.Id)
	if !strings.HasPrefix(id, "/hostedzone/Z") || aws.ToString(created.HostedZone.Name) != "fleet.example.com." || len(created.DelegationSet.NameServers) != 4 {
		t.Errorf("CreateHostedZone = %s %s with name servers %v, want /hostedzone/Z..., fleet.example.com. and 4 name servers",
			id, aws.ToString(created.HostedZone.Name), created.DelegationSet.NameServers)
	}
	_, err = c.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String("other.example.com"), CallerReference: aws.String("ref-1")})
	var exists *types.HostedZoneAlreadyExists
	if !errors.As(err, &exists) {
		t.Errorf("CreateHostedZone with a used caller reference: %v, want HostedZoneAlreadyExists", err)
	}
	got, err := c.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.HostedZone.Name) != "fleet.example.com." || aws.ToInt64(got.HostedZone.ResourceRecordSetCount) != 2 {
		t.Errorf("GetHostedZone = %s with %d record sets, want fleet.example.com. with its SOA and NS",
			aws.ToString(got.HostedZone.Name), aws.ToInt64(got.HostedZone.ResourceRecordSetCount))
	}

	srv.CreateZone("b.example.org")
	srv.CreateZone("a.example.org")
	var names []string
	in := &route53.ListHostedZonesByNameInput{MaxItems: aws.Int32(2)}
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("ListHostedZonesByName does not end")
		}
		out, err := c.ListHostedZonesByName(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, z := range out.HostedZones {
			names = append(names, aws.ToString(z.Name))
		}
		if !out.IsTruncated {
			break
		}
		in.DNSName, in.HostedZoneId = out.NextDNSName, out.NextHostedZoneId
	}
	want := []string{"fleet.example.com.", "a.example.org.", "b.example.org."}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("ListHostedZonesByName in pages of 2 (-want +got):\n%s", diff)
	}
	byName, err := c.ListHostedZonesByName(ctx, &route53.ListHostedZonesByNameInput{DNSName: aws.String("b.example.org"), MaxItems: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(byName.HostedZones) != 1 || aws.ToString(byName.HostedZones[0].Name) != "b.example.org." {
		t.Errorf("ListHostedZonesByName from b.example.org = %v, want that zone first", byName.HostedZones)
	}

	_, err = c.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String("/hostedzone/ZNOPE")})
	var noZone *types.NoSuchHostedZone
	if !errors.As(err, &noZone) || noZone.ErrorMessage() != "No hosted zone found with ID: ZNOPE" {
		t.Errorf("GetHostedZone of an unknown zone: %v, want NoSuchHostedZone", err)
	}
}

func TestRecordsAndPagination(t *testing.T) {
	srv, c := newServer(t, Options{})
	ctx := context.Background()
	zoneID := srv.CreateZone("fleet.example.com")
	txt := types.ResourceRecordSet{Name: aws.String("_meridian.web.trucking.fleet.example.com"), Type: types.RRTypeTxt, TTL: ttl(300),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String(`"heritage=meridian,fleet=prod"`)}}}
	cname := types.ResourceRecordSet{Name: aws.String("docs.fleet.example.com"), Type: types.RRTypeCname, TTL: ttl(300),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String("web.trucking.fleet.example.com")}}}
	alias := types.ResourceRecordSet{Name: aws.String("web.trucking.fleet.example.com"), Type: types.RRTypeA, SetIdentifier: aws.String("ap-southeast-1"),
		Region:      types.ResourceRecordSetRegionApSoutheast1,
		AliasTarget: &types.AliasTarget{HostedZoneId: aws.String(zoneID), DNSName: aws.String("web.trucking.ap-southeast-1.fleet.example.com"), EvaluateTargetHealth: true}}
	out, err := changeRecords(ctx, c, zoneID,
		chg(types.ChangeActionCreate, latency("web.trucking.fleet.example.com", "eu-west-1", "", "192.0.2.1")),
		chg(types.ChangeActionCreate, latency("web.trucking.fleet.example.com", "us-east-1", "", "192.0.2.2")),
		chg(types.ChangeActionCreate, a("web.trucking.ap-southeast-1.fleet.example.com", "192.0.2.3")),
		chg(types.ChangeActionCreate, alias),
		chg(types.ChangeActionCreate, txt),
		chg(types.ChangeActionCreate, cname),
	)
	if err != nil {
		t.Fatal(err)
	}
	if out.ChangeInfo.Status != types.ChangeStatusInsync || !strings.HasPrefix(aws.ToString(out.ChangeInfo.Id), "/change/C") {
		t.Errorf("ChangeInfo = %s %s, want /change/C... INSYNC (no sync delay)", aws.ToString(out.ChangeInfo.Id), out.ChangeInfo.Status)
	}

	key := func(rs []types.ResourceRecordSet) []string {
		var out []string
		for _, r := range rs {
			out = append(out, fmt.Sprintf("%s %s %s", aws.ToString(r.Name), r.Type, aws.ToString(r.SetIdentifier)))
		}
		return out
	}
	want := []string{
		"fleet.example.com. NS ",
		"fleet.example.com. SOA ",
		"web.trucking.ap-southeast-1.fleet.example.com. A ", // names sort with their labels reversed
		"docs.fleet.example.com. CNAME ",
		"web.trucking.fleet.example.com. A ap-southeast-1",
		"web.trucking.fleet.example.com. A eu-west-1",
		"web.trucking.fleet.example.com. A us-east-1",
		"_meridian.web.trucking.fleet.example.com. TXT ",
	}
	for _, size := range []int32{300, 3, 1} {
		all, pages := listAll(t, c, zoneID, size)
		if diff := cmp.Diff(want, key(all)); diff != "" {
			t.Errorf("records in pages of %d (-want +got):\n%s", size, diff)
		}
		if wantPages := (len(want) + int(size) - 1) / int(size); pages != wantPages {
			t.Errorf("pages of %d: %d, want %d", size, pages, wantPages)
		}
	}
	all, _ := listAll(t, c, zoneID, 300)
	gotAlias := all[4]
	if at := gotAlias.AliasTarget; at == nil || aws.ToString(at.DNSName) != "web.trucking.ap-southeast-1.fleet.example.com." || aws.ToString(at.HostedZoneId) != zoneID ||
		!at.EvaluateTargetHealth || gotAlias.Region != types.ResourceRecordSetRegionApSoutheast1 || gotAlias.TTL != nil {
		t.Errorf("alias record read back = %+v %+v, want its alias target, region and no TTL", gotAlias, gotAlias.AliasTarget)
	}
	if v := aws.ToString(all[7].ResourceRecords[0].Value); v != `"heritage=meridian,fleet=prod"` {
		t.Errorf("TXT value read back = %s", v)
	}

	// Starting at a name, type and identifier.
	from, err := c.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID),
		StartRecordName: aws.String("web.trucking.fleet.example.com"), StartRecordType: types.RRTypeA, StartRecordIdentifier: aws.String("eu-west-1"), MaxItems: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"web.trucking.fleet.example.com. A eu-west-1"}, key(from.ResourceRecordSets)); diff != "" {
		t.Errorf("list from an identifier (-want +got):\n%s", diff)
	}
	if !from.IsTruncated || aws.ToString(from.NextRecordIdentifier) != "us-east-1" || aws.ToString(from.NextRecordName) != "web.trucking.fleet.example.com." || from.NextRecordType != types.RRTypeA {
		t.Errorf("next record = %v %s %s %s, want truncated at web.trucking.fleet.example.com. A us-east-1", from.IsTruncated,
			aws.ToString(from.NextRecordName), from.NextRecordType, aws.ToString(from.NextRecordIdentifier))
	}

	// UPSERT replaces in place; DELETE with the exact values removes.
	if _, err := changeRecords(ctx, c, zoneID,
		chg(types.ChangeActionUpsert, latency("web.trucking.fleet.example.com", "eu-west-1", "", "192.0.2.9")),
		chg(types.ChangeActionDelete, cname),
	); err != nil {
		t.Fatal(err)
	}
	all, _ = listAll(t, c, zoneID, 300)
	if len(all) != 7 || aws.ToString(all[4].ResourceRecords[0].Value) != "192.0.2.9" {
		t.Errorf("after UPSERT and DELETE: %v, want 7 records with eu-west-1 at 192.0.2.9", key(all))
	}
}

func TestChangeBecomesInsyncAfterDelay(t *testing.T) {
	srv, c := newServer(t, Options{SyncDelay: 300 * time.Millisecond})
	ctx := context.Background()
	zoneID := srv.CreateZone("fleet.example.com")
	out, err := changeRecords(ctx, c, zoneID, chg(types.ChangeActionCreate, a("web.fleet.example.com", "192.0.2.1")))
	if err != nil {
		t.Fatal(err)
	}
	if out.ChangeInfo.Status != types.ChangeStatusPending {
		t.Errorf("status at submission = %s, want PENDING", out.ChangeInfo.Status)
	}
	get := func() types.ChangeStatus {
		got, err := c.GetChange(ctx, &route53.GetChangeInput{Id: out.ChangeInfo.Id})
		if err != nil {
			t.Fatal(err)
		}
		return got.ChangeInfo.Status
	}
	if s := get(); s != types.ChangeStatusPending {
		t.Errorf("status at once = %s, want PENDING", s)
	}
	start := time.Now()
	w := route53.NewResourceRecordSetsChangedWaiter(c, func(o *route53.ResourceRecordSetsChangedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(ctx, &route53.GetChangeInput{Id: out.ChangeInfo.Id}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if s := get(); s != types.ChangeStatusInsync {
		t.Errorf("status after the waiter = %s, want INSYNC", s)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("INSYNC after %v, want about 300ms", d)
	}
	_, err = c.GetChange(ctx, &route53.GetChangeInput{Id: aws.String("/change/CNOPE")})
	var noChange *types.NoSuchChange
	if !errors.As(err, &noChange) {
		t.Errorf("GetChange of an unknown change: %v, want NoSuchChange", err)
	}
}

func TestChangeRefusals(t *testing.T) {
	srv, c := newServer(t, Options{})
	ctx := context.Background()
	zoneID := srv.CreateZone("fleet.example.com")
	existing := a("web.fleet.example.com", "192.0.2.1")
	lat := latency("api.fleet.example.com", "eu-west-1", "", "192.0.2.5")
	if _, err := changeRecords(ctx, c, zoneID, chg(types.ChangeActionCreate, existing), chg(types.ChangeActionCreate, lat)); err != nil {
		t.Fatal(err)
	}
	before, _ := listAll(t, c, zoneID, 300)

	many := a("many.fleet.example.com")
	for i := range 1001 {
		many.ResourceRecords = append(many.ResourceRecords, types.ResourceRecord{Value: aws.String(fmt.Sprintf("10.0.%d.%d", i/256, i%256))})
	}
	long := types.ResourceRecordSet{Name: aws.String("long.fleet.example.com"), Type: types.RRTypeTxt, TTL: ttl(60)}
	for range 130 {
		long.ResourceRecords = append(long.ResourceRecords, types.ResourceRecord{Value: aws.String(`"` + strings.Repeat("x", 253) + `"`)})
	}
	half := long
	half.ResourceRecords = long.ResourceRecords[:70] // 17,710 characters, twice for UPSERT
	missingAlias := types.ResourceRecordSet{Name: aws.String("alias.fleet.example.com"), Type: types.RRTypeA,
		AliasTarget: &types.AliasTarget{HostedZoneId: aws.String(zoneID), DNSName: aws.String("nothing.fleet.example.com"), EvaluateTargetHealth: true}}
	cname := types.ResourceRecordSet{Name: aws.String("web.fleet.example.com"), Type: types.RRTypeCname, TTL: ttl(60),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String("elsewhere.example.net")}}}

	tests := []struct {
		name     string
		zone     string
		changes  []types.Change
		wantMsgs []string // InvalidChangeBatch messages
		wantErr  error    // otherwise, the typed error
		wantMsg  string
	}{
		{
			name:     "creating an existing record",
			changes:  []types.Change{chg(types.ChangeActionCreate, existing)},
			wantMsgs: []string{"Tried to create resource record set [name='web.fleet.example.com.', type='A'] but it already exists"},
		},
		{
			name:     "deleting a record that does not exist",
			changes:  []types.Change{chg(types.ChangeActionDelete, a("nope.fleet.example.com", "192.0.2.1"))},
			wantMsgs: []string{"Tried to delete resource record set [name='nope.fleet.example.com.', type='A'] but it was not found"},
		},
		{
			name:     "deleting a record with other values",
			changes:  []types.Change{chg(types.ChangeActionDelete, a("web.fleet.example.com", "192.0.2.99"))},
			wantMsgs: []string{"Tried to delete resource record set [name='web.fleet.example.com.', type='A'] but the values provided do not match the current values"},
		},
		{
			name:     "deleting a latency record of another set identifier",
			changes:  []types.Change{chg(types.ChangeActionDelete, latency("api.fleet.example.com", "us-east-1", "", "192.0.2.5"))},
			wantMsgs: []string{"Tried to delete resource record set [name='api.fleet.example.com.', type='A', set-identifier='us-east-1'] but it was not found"},
		},
		{
			name:     "a latency record beside a simple one",
			changes:  []types.Change{chg(types.ChangeActionCreate, latency("web.fleet.example.com", "eu-west-1", "", "192.0.2.1"))},
			wantMsgs: []string{"RRSet with DNS name web.fleet.example.com., type A cannot be created because a non-latency RRSet with the same name and type already exists."},
		},
		{
			name: "a weighted record beside a latency one",
			changes: []types.Change{chg(types.ChangeActionCreate, types.ResourceRecordSet{Name: aws.String("api.fleet.example.com"), Type: types.RRTypeA, TTL: ttl(60),
				SetIdentifier: aws.String("w"), Weight: aws.Int64(1), ResourceRecords: []types.ResourceRecord{{Value: aws.String("192.0.2.7")}}})},
			wantMsgs: []string{"RRSet with DNS name api.fleet.example.com., type A, SetIdentifier w cannot be created because a non-weighted RRSet with the same name and type already exists."},
		},
		{
			name:     "a CNAME beside an A record",
			changes:  []types.Change{chg(types.ChangeActionCreate, cname)},
			wantMsgs: []string{"RRSet of type CNAME with DNS name web.fleet.example.com. is not permitted because a conflicting RRSet of type A with the same DNS name already exists in zone fleet.example.com.."},
		},
		{
			name:     "an alias to a name the zone does not have",
			changes:  []types.Change{chg(types.ChangeActionCreate, missingAlias)},
			wantMsgs: []string{"Tried to create an alias that targets nothing.fleet.example.com., type A in zone " + zoneID + ", but the alias target name does not lie within the target zone"},
		},
		{
			name:     "a name outside the zone",
			changes:  []types.Change{chg(types.ChangeActionCreate, a("web.example.net", "192.0.2.1"))},
			wantMsgs: []string{"RRSet with DNS name web.example.net. is not permitted in zone fleet.example.com."},
		},
		{
			name:     "more than 1,000 records",
			changes:  []types.Change{chg(types.ChangeActionCreate, many)},
			wantMsgs: []string{"Number of records limit of 1000 exceeded."},
		},
		{
			name:     "more than 32,000 characters",
			changes:  []types.Change{chg(types.ChangeActionCreate, long)},
			wantMsgs: []string{"Number of characters limit of 32000 exceeded."},
		},
		{
			name:     "UPSERT counts twice against the character limit",
			changes:  []types.Change{chg(types.ChangeActionUpsert, half)},
			wantMsgs: []string{"Number of characters limit of 32000 exceeded."},
		},
		{
			name: "a batch is all or nothing",
			changes: []types.Change{
				chg(types.ChangeActionCreate, a("new.fleet.example.com", "192.0.2.8")),
				chg(types.ChangeActionCreate, existing),
				chg(types.ChangeActionDelete, a("gone.fleet.example.com", "192.0.2.1")),
			},
			wantMsgs: []string{
				"Tried to create resource record set [name='web.fleet.example.com.', type='A'] but it already exists",
				"Tried to delete resource record set [name='gone.fleet.example.com.', type='A'] but it was not found",
			},
		},
		{
			name:    "an unknown zone",
			zone:    "ZNOPE",
			changes: []types.Change{chg(types.ChangeActionCreate, a("x.fleet.example.com", "192.0.2.1"))},
			wantErr: &types.NoSuchHostedZone{},
			wantMsg: "No hosted zone found with ID: ZNOPE",
		},
		{
			name:    "an unknown health check",
			changes: []types.Change{chg(types.ChangeActionCreate, latency("x.fleet.example.com", "eu-west-1", "00000000-0000-0000-0000-000000000000", "192.0.2.1"))},
			wantErr: &types.NoSuchHealthCheck{},
			wantMsg: "No health check exists with the specified ID 00000000-0000-0000-0000-000000000000",
		},
		{
			name:    "neither records nor an alias",
			changes: []types.Change{chg(types.ChangeActionCreate, types.ResourceRecordSet{Name: aws.String("x.fleet.example.com"), Type: types.RRTypeA})},
			wantErr: &types.InvalidInput{},
			wantMsg: "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found none or more than one in Change with [Action=CREATE, Name=x.fleet.example.com., Type=A, SetIdentifier=null]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			zone := zoneID
			if tt.zone != "" {
				zone = tt.zone
			}
			_, err := changeRecords(ctx, c, zone, tt.changes...)
			if tt.wantMsgs != nil {
				var icb *types.InvalidChangeBatch
				if !errors.As(err, &icb) {
					t.Fatalf("error = %v, want InvalidChangeBatch", err)
				}
				if diff := cmp.Diff(tt.wantMsgs, icb.Messages); diff != "" {
					t.Errorf("InvalidChangeBatch messages (-want +got):\n%s", diff)
				}
			} else {
				var apiErr smithy.APIError
				if !errors.As(err, &apiErr) || fmt.Sprintf("%T", apiErr) != fmt.Sprintf("%T", tt.wantErr) || apiErr.ErrorMessage() != tt.wantMsg {
					t.Errorf("error = %T %v, want %T %q", apiErr, err, tt.wantErr, tt.wantMsg)
				}
			}
			after, _ := listAll(t, c, zoneID, 300)
			if diff := cmp.Diff(len(before), len(after)); diff != "" {
				t.Errorf("a refused batch changed the zone (-want +got record count):\n%s", diff)
			}
		})
	}
}

func TestInjectedFailuresAndCounts(t *testing.T) {
	srv, c := newServer(t, Options{})
	ctx := context.Background()
	zoneID := srv.CreateZone("fleet.example.com")

	srv.FailNext("ChangeResourceRecordSets", "Throttling", 1)
	srv.FailNext("ChangeResourceRecordSets", "PriorRequestNotComplete", 1)
	for _, want := range []struct{ code, msg string }{
		{"Throttling", "Rate exceeded"},
		{"PriorRequestNotComplete", "The request was rejected because Route 53 was still processing a prior request."},
	} {
		_, err := changeRecords(ctx, c, zoneID, chg(types.ChangeActionCreate, a("web.fleet.example.com", "192.0.2.1")))
		code, msg := errorOf(t, err)
		var re *smithyhttp.ResponseError
		if code != want.code || msg != want.msg || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadRequest {
			t.Errorf("error = %v, want HTTP 400 %s %q", err, want.code, want.msg)
		}
	}
	if _, err := changeRecords(ctx, c, zoneID, chg(types.ChangeActionCreate, a("web.fleet.example.com", "192.0.2.1"))); err != nil {
		t.Fatalf("after the injected failures: %v", err)
	}

	// The SDK's own retryer rides out a short storm.
	srv.FailNext("*", "Throttling", 2)
	retrying := client(srv, 5)
	if _, err := retrying.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID)}); err != nil {
		t.Fatalf("with retries: %v", err)
	}

	want := []Call{
		{Operation: "ChangeResourceRecordSets", Error: "Throttling"},
		{Operation: "ChangeResourceRecordSets", Error: "PriorRequestNotComplete"},
		{Operation: "ChangeResourceRecordSets"},
		{Operation: "ListResourceRecordSets", Error: "Throttling"},
		{Operation: "ListResourceRecordSets", Error: "Throttling"},
		{Operation: "ListResourceRecordSets"},
	}
	if diff := cmp.Diff(want, srv.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if n := srv.Count("ChangeResourceRecordSets"); n != 3 {
		t.Errorf("Count(ChangeResourceRecordSets) = %d, want 3", n)
	}
	if n := srv.Count("GetChange"); n != 0 {
		t.Errorf("Count(GetChange) = %d, want 0", n)
	}
}
