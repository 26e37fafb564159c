package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/golden"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/reconciler/status"
	"meridian.dev/meridian/review/unitstatus"
)

// The revisions the status tests' passes apply.
const (
	statusRev1 = "3f1c9a7e5b2d4c6e8f0a1b3c5d7e9f1a2b4c6d8e"
	statusRev2 = "9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"
)

// examplePass is a pass over every unit of fleet-example (tenant namespaces,
// placements and addon units) that left each of them unchanged and healthy at
// rev, as reconciler.Run reports it.
func examplePass(t *testing.T, rev string) *reconciler.Report {
	t.Helper()
	m, err := fleet.LoadDir(example)
	if err != nil {
		t.Fatalf("load %s: %v", example, err)
	}
	units := map[string][]fleet.UnitID{}
	for _, tenant := range m.Tenants {
		for _, region := range tenant.Spec.Regions {
			units[region] = append(units[region], fleet.NamespaceUnit(tenant.Metadata.Name, region))
		}
	}
	for _, p := range m.Placements() {
		units[p.Region.Metadata.Name] = append(units[p.Region.Metadata.Name], p.ID())
	}
	for _, p := range m.AddonPlacements() {
		units[p.Region.Metadata.Name] = append(units[p.Region.Metadata.Name], p.ID())
	}
	r := &reconciler.Report{Revision: rev, Regions: map[string]*reconciler.RegionReport{}, Duration: 3 * time.Second}
	for _, w := range m.Fleet.Spec.Waves {
		r.Waves = append(r.Waves, reconciler.WaveReport{Name: w.Name, Regions: slices.Clone(w.Regions), Healthy: true})
	}
	for region, list := range units {
		slices.SortFunc(list, fleet.UnitID.Compare)
		rr := &reconciler.RegionReport{Changes: plan.ChangeSet{Region: region}, Units: map[fleet.UnitID]*reconciler.UnitResult{}}
		for _, u := range list {
			rr.Changes.Changes = append(rr.Changes.Changes, plan.Change{Unit: u, Action: plan.Unchanged})
			rr.Units[u] = &reconciler.UnitResult{Action: plan.Unchanged, Health: reconciler.Healthy}
		}
		r.Regions[region] = rr
	}
	return r
}

// unitResult returns a unit's result in a pass, failing the test when the pass
// does not name it.
func unitResult(t *testing.T, r *reconciler.Report, id string) *reconciler.UnitResult {
	t.Helper()
	u, err := fleet.ParseUnitID(id)
	if err != nil {
		t.Fatal(err)
	}
	res := r.Regions[u.Region].Units[u]
	if res == nil {
		t.Fatalf("fleet-example has no unit %s", id)
	}
	return res
}

// statusServer serves the real status Store's handler, as the daemon does,
// with what the passes made of fleet-example. Each call of passes[i] gets a
// fresh Report to break.
func statusServer(t *testing.T, passes ...func(*reconciler.Report)) *httptest.Server {
	t.Helper()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s := status.New(status.Options{Now: func() time.Time { return now }})
	for i, breakIt := range passes {
		rev := []string{statusRev1, statusRev2}[i%2]
		s.ObserveRevision(status.Commit{Revision: rev, Subject: "commit " + rev[:7], Author: "Ana Lima", Time: now})
		r := examplePass(t, rev)
		if breakIt != nil {
			breakIt(r)
		}
		s.ObservePass(r, r.Duration)
		now = now.Add(time.Minute)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// portalDown is a second pass in which trucking's portal in us-east-1 failed its
// health (scaled to zero, say) with a long reason, and logistics-eu's api in eu-west-2 is
// still progressing.
func portalDown(t *testing.T) func(*reconciler.Report) {
	return func(r *reconciler.Report) {
		res := unitResult(t, r, "trucking/us-east-1/portal")
		res.Health = reconciler.Unhealthy
		res.HealthErr = errors.New("Deployment/trucking/portal: Available=False: Deployment does not have minimum availability (0 of 3 replicas available); ReplicaSet portal-7d9f progressing")
		res = unitResult(t, r, "logistics-eu/eu-west-2/api")
		res.Health = reconciler.Progressing
		res.HealthErr = errors.New("Deployment/logistics-eu/api: 1 of 2 updated replicas are available")
	}
}

func runStatusTest(t *testing.T, o statusOptions) (string, int, error) {
	t.Helper()
	if o.output == "" {
		o.output = "table"
	}
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	var out bytes.Buffer
	err := runStatus(context.Background(), &out, o)
	var exit exitError
	switch {
	case errors.As(err, &exit):
		return out.String(), exit.code, nil
	case err != nil:
		return out.String(), statusError, err
	}
	return out.String(), statusAllReady, nil
}

// TestStatusAgainstTheStore reads what the real status Store's handler serves
// for fleet-example after a healthy pass and after one with trouble, and checks
// the tables (golden files), the filters and the exit codes.
func TestStatusAgainstTheStore(t *testing.T) {
	healthy := statusServer(t, nil)
	troubled := statusServer(t, nil, portalDown(t))
	tests := []struct {
		name   string
		server *httptest.Server
		o      statusOptions
		code   int
	}{
		{"healthy", healthy, statusOptions{}, statusAllReady},
		{"troubled", troubled, statusOptions{}, statusNotReady},
		{"troubled-wide", troubled, statusOptions{output: "wide"}, statusNotReady},
		{"troubled-trucking", troubled, statusOptions{tenants: []string{"trucking"}, kinds: []string{"placement"}}, statusNotReady},
		{"troubled-not-ready", troubled, statusOptions{states: []string{"Failed", "progressing"}}, statusNotReady},
		// What is Ready in a troubled fleet is Ready: a script waiting for one
		// region sees it.
		{"troubled-ap-northeast-2", troubled, statusOptions{regions: []string{"ap-northeast-2"}}, statusAllReady},
		{"troubled-none-selected", troubled, statusOptions{tenants: []string{"logistics-eu"}, regions: []string{"us-east-1"}, apps: []string{"portal"}, states: []string{"Failed"}}, statusNotReady},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.server = tt.server.URL
			out, code, err := runStatusTest(t, tt.o)
			if err != nil {
				t.Fatalf("status: %v", err)
			}
			if code != tt.code {
				t.Errorf("exit status %d, want %d; output:\n%s", code, tt.code, out)
			}
			golden.Check(t, filepath.Join("testdata", "status", tt.name+".txt"), []byte(out))
		})
	}
}

// TestStatusShowsARefusedRevision: when the latest commit's fleet files are not
// valid, the table says so and which revision still runs.
func TestStatusShowsARefusedRevision(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s := status.New(status.Options{Now: func() time.Time { return now }})
	s.ObserveRevision(status.Commit{Revision: statusRev1, Subject: "a good commit", Time: now})
	r := examplePass(t, statusRev1)
	s.ObservePass(r, r.Duration)
	s.ObserveRefused(status.Commit{Revision: statusRev2, Subject: "trucking: a typo", Time: now},
		[]error{errors.New("tenants/trucking.yaml:7: spec.regoins: unknown field")})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	out, code, err := runStatusTest(t, statusOptions{server: srv.URL, regions: []string{"eu-west-2"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "refused: revision 9b8a7c6d5e4f (trucking: a typo): 1 error(s) in its fleet files; it keeps running 3f1c9a7e5b2d\n"
	if !strings.Contains(out, want) || code != statusAllReady {
		t.Errorf("exit status %d, output:\n%s\nwant exit status 0 (its units are Ready) and %q", code, out, want)
	}
	// A script waiting for the refused commit never sees it Ready.
	for _, tt := range []struct {
		revision string
		code     int
	}{{statusRev1[:7], statusAllReady}, {strings.ToUpper(statusRev1), statusAllReady}, {statusRev2[:12], statusNotReady}} {
		_, code, err := runStatusTest(t, statusOptions{server: srv.URL, revision: tt.revision})
		if err != nil || code != tt.code {
			t.Errorf("--revision %s: exit status %d, %v; want %d", tt.revision, code, err, tt.code)
		}
	}
	for _, bad := range []string{"3f1c9a", "main", "HEAD~1"} {
		_, _, err := runStatusTest(t, statusOptions{server: srv.URL, revision: bad})
		if err == nil || !strings.Contains(err.Error(), "--revision "+strconv.Quote(bad)+": give a commit hash") {
			t.Errorf("--revision %s: %v, want an error asking for a hash", bad, err)
		}
	}
}

// TestStatusCountsWhatTheAPIServes checks what `meridian status` selects against
// the document the API serves and fleet-example: the same units, counted as
// `meridian validate` counts placements.
func TestStatusCountsWhatTheAPIServes(t *testing.T) {
	srv := statusServer(t, nil, portalDown(t))
	resp, err := http.Get(srv.URL + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st status.Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	m, err := fleet.LoadDir(example)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(m.Placements()); st.Counts.Placements != want {
		t.Fatalf("the API counts %d placements, fleet-example has %d", st.Counts.Placements, want)
	}
	out, code, err := runStatusTest(t, statusOptions{server: srv.URL, output: "json"})
	if err != nil {
		t.Fatal(err)
	}
	var units []status.Placement
	if err := json.Unmarshal([]byte(out), &units); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st.Placements, units); diff != "" {
		t.Errorf("units selected by meridian status (-API +CLI):\n%s", diff)
	}
	placements, notReady := 0, 0
	for _, p := range units {
		if p.Kind == status.KindPlacement {
			placements++
		}
		if p.State != status.Ready {
			notReady++
		}
	}
	if len(units) != st.Counts.Units || placements != st.Counts.Placements || notReady != st.Counts.Units-st.Counts.UnitStates[status.Ready] {
		t.Errorf("meridian status selects %d units, %d placements, %d not Ready; the API counts %d, %d, %d",
			len(units), placements, notReady, st.Counts.Units, st.Counts.Placements, st.Counts.Units-st.Counts.UnitStates[status.Ready])
	}
	if notReady != 2 || code != statusNotReady {
		t.Errorf("%d units not Ready, exit status %d; want the 2 the pass broke, and %d", notReady, code, statusNotReady)
	}
}

// TestStatusMachineOutputs checks that -o json and -o yaml give the selected
// units as the API serves them, and nothing else.
func TestStatusMachineOutputs(t *testing.T) {
	srv := statusServer(t, nil, portalDown(t))
	resp, err := http.Get(srv.URL + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st status.Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var want []status.Placement
	for _, p := range st.Placements {
		if p.Tenant == "trucking" && p.Region == "us-east-1" {
			want = append(want, p)
		}
	}
	if len(want) < 2 {
		t.Fatalf("fleet-example has %d units of trucking in us-east-1; the test wants several", len(want))
	}
	for _, output := range []string{"json", "yaml"} {
		t.Run(output, func(t *testing.T) {
			out, code, err := runStatusTest(t, statusOptions{server: srv.URL, output: output, tenants: []string{"trucking"}, regions: []string{"us-east-1"}})
			if err != nil {
				t.Fatal(err)
			}
			if code != statusNotReady {
				t.Errorf("exit status %d, want %d (trucking's portal in us-east-1 failed)", code, statusNotReady)
			}
			var got []status.Placement
			if output == "json" {
				err = json.Unmarshal([]byte(out), &got)
			} else {
				err = yaml.Unmarshal([]byte(out), &got)
			}
			if err != nil {
				t.Fatalf("-o %s is not %s: %v\n%s", output, output, err, out)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("-o %s (-want +got):\n%s", output, diff)
			}
		})
	}
}

// TestStatusBeforeTheFirstPass: a daemon that has not finished a pass is not
// Ready, and says so.
func TestStatusBeforeTheFirstPass(t *testing.T) {
	srv := statusServer(t)
	out, code, err := runStatusTest(t, statusOptions{server: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if code != statusNotReady || out != "no units yet: the daemon has not finished a pass\n" {
		t.Errorf("exit status %d, output %q; want %d and that no pass finished", code, out, statusNotReady)
	}
	_, _, err = runStatusTest(t, statusOptions{server: srv.URL, tenants: []string{"trucking"}})
	if err == nil || !strings.Contains(err.Error(), "--tenant trucking: the daemon knows no such tenant (it knows none yet: has it finished a pass?)") {
		t.Errorf("error = %v, want one saying the daemon knows no tenant yet", err)
	}
}

// TestStatusErrors checks that bad flags, a daemon that cannot be reached and a
// server that is not the daemon are errors (exit status 1) that say what to do.
func TestStatusErrors(t *testing.T) {
	srv := statusServer(t, nil)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	notDaemon := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>a login page</html>"))
	}))
	defer notDaemon.Close()
	otherJSON := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	defer otherJSON.Close()
	tests := []struct {
		name string
		o    statusOptions
		want string
	}{
		{"unreachable", statusOptions{server: closed.URL}, "cannot reach the daemon at " + closed.URL + ": "},
		{"not the daemon", statusOptions{server: notDaemon.URL}, "the answer is not a status document"},
		{"other JSON", statusOptions{server: otherJSON.URL}, "the answer is not a status document (no states or placements)"},
		{"not found", statusOptions{server: srv.URL + "/prefix"}, "/prefix/api/v1/status: 404 Not Found"},
		{"bad scheme", statusOptions{server: "ftp://host"}, `--server "ftp://host": give the daemon's address as http://host:port`},
		{"credentials", statusOptions{server: "http://admin:hunter2@host:8080"}, "--server: the address must not carry credentials"},
		{"empty server", statusOptions{server: ""}, "--server is empty"},
		{"bad output", statusOptions{server: srv.URL, output: "xml"}, `-o "xml": use table, wide, json or yaml`},
		{"bad state", statusOptions{server: srv.URL, states: []string{"Ready", "Green"}}, "--state Green: no such state; use Ready, Progressing"},
		{"bad kind", statusOptions{server: srv.URL, kinds: []string{"app"}}, "--kind app: no such kind of unit"},
		{"unknown tenant", statusOptions{server: srv.URL, tenants: []string{"truckin"}}, "--tenant truckin: the daemon knows no such tenant (it knows (addons), charging-stations-ca, logistics-eu, trucking)"},
		{"unknown region", statusOptions{server: srv.URL, regions: []string{"us-east-2"}}, "--region us-east-2: the daemon knows no such region (it knows ap-northeast-2, eu-west-2, us-east-1)"},
		{"unknown app", statusOptions{server: srv.URL, apps: []string{"web"}}, "--app web: the daemon knows no such app"},
		{"bad timeout", statusOptions{server: srv.URL, timeout: -time.Second}, "--timeout -1s: give a positive duration"},
		{"bad CA file", statusOptions{server: srv.URL, caFile: "status.go"}, "--ca-file status.go: no PEM certificate in it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code, err := runStatusTest(t, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
			if code != statusError || out != "" {
				t.Errorf("exit status %d, output %q; want %d and nothing printed", code, out, statusError)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the password of --server: %v", err)
			}
		})
	}
}

// TestStatusCommandLine checks the flags as a shell gives them: comma lists,
// repeated flags, -o.
func TestStatusCommandLine(t *testing.T) {
	srv := statusServer(t, nil, portalDown(t))
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"status", "--server", srv.URL, "--tenant", "trucking,logistics-eu", "--region", "us-east-1",
		"--region", "eu-west-2", "--state", "failed,Progressing", "-o", "json"})
	err := root.Execute()
	var exit exitError
	if !errors.As(err, &exit) || exit.code != statusNotReady {
		t.Fatalf("meridian status: %v, want exit status %d", err, statusNotReady)
	}
	var got []status.Placement
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	var units []string
	for _, p := range got {
		units = append(units, p.Unit.String()+" "+string(p.State))
	}
	want := []string{"logistics-eu/eu-west-2/api Progressing", "trucking/us-east-1/portal Failed"}
	if diff := cmp.Diff(want, units); diff != "" {
		t.Errorf("units (-want +got):\n%s", diff)
	}
}

// TestStatusServerFromEnvironment checks that $MERIDIAN_SERVER sets the server
// when --server is not given, and that --server wins over it.
func TestStatusServerFromEnvironment(t *testing.T) {
	srv := statusServer(t, nil)
	t.Setenv(unitstatus.ServerEnv, srv.URL)
	for _, args := range [][]string{{"status"}, {"status", "--server", "http://127.0.0.1:1"}} {
		root := newRootCommand()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		err := root.Execute()
		if len(args) == 1 && err != nil {
			t.Errorf("meridian status with $%s: %v", unitstatus.ServerEnv, err)
		}
		if len(args) == 3 && (err == nil || !strings.Contains(err.Error(), "cannot reach the daemon at http://127.0.0.1:1")) {
			t.Errorf("meridian status --server with $%s: %v; want --server used", unitstatus.ServerEnv, err)
		}
	}
}

// TestStatusOverHTTPS reads a daemon that serves HTTPS with its own
// certificate: trusted with --ca-file, refused without it.
func TestStatusOverHTTPS(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s := status.New(status.Options{Now: func() time.Time { return now }})
	r := examplePass(t, statusRev1)
	s.ObservePass(r, r.Duration)
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "daemon.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code, err := runStatusTest(t, statusOptions{server: srv.URL, caFile: ca})
	if err != nil || code != statusAllReady || !strings.HasSuffix(out, "23 units (14 placements): 23 Ready\n") {
		t.Errorf("with --ca-file: exit status %d, %v, output:\n%s", code, err, out)
	}
	_, _, err = runStatusTest(t, statusOptions{server: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the daemon at "+srv.URL+": tls: failed to verify certificate") {
		t.Errorf("without --ca-file: %v, want a certificate error", err)
	}
}
