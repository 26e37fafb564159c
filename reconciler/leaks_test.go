package reconciler_test

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"meridian.dev/meridian/internal/testenv/sopstest"
)

// TestNoSecretLeaks runs the meridian binary on three regions through a secret
// rotation and a manual edit of a live Secret, then collects everything the run
// left where people or tools can read it: the daemon's log, /metrics, the status
// API (a unit's detail and its events included, one of which holds a decrypted
// value in the region), the dashboard and its assets, every region's Kubernetes events, `meridian
// diff` in each format, `meridian plan`, and every file under the daemon's cache
// (its state, the history of passes, included) and temporary directories. None may hold a value the run decrypted, as it is or
// in base64. The live Secrets, which must hold them, are searched too, to show
// the search finds what is there.
func TestNoSecretLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the meridian binary")
	}
	f := newFixture(t)
	bin := buildMeridian(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	cache, tmp := filepath.Join(dir, "cache"), filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg, keyFile := f.writeDaemonConfig(t, dir, addr, "driftInterval: 2s\nprofiling: true\n")
	daemonLog := &logBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	daemon := exec.CommandContext(ctx, bin, "run", "--config", cfg)
	daemon.Env = append(os.Environ(), "TMPDIR="+tmp)
	daemon.Stdout, daemon.Stderr = daemonLog, daemonLog
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = daemon.Wait()
		if t.Failed() {
			t.Logf("daemon log:\n%s", daemonLog.String())
		}
	})
	base, err := f.work.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	waitConverged(t, addr, base)

	// Rotate trucking's database password.
	secretsFile := "tenants/trucking.secrets.sops.yaml"
	rotated := sopstest.Encrypt(t, keyFile, "portal:\n  database:\n    password: rotated-in-the-leak-test-4f1e07\n")
	head := f.push(t, "trucking: rotate the database password", map[string]string{secretsFile: string(rotated)})
	waitConverged(t, addr, head)

	// Secrets beyond tenants: the fleet's (logistics-eu's portal takes its database
	// password from it), eu-west-2's (over the fleet's there) and trucking's in
	// us-east-1 (over trucking's own there).
	head = f.push(t, "secrets for the fleet, a region and a tenant in one region", map[string]string{
		"fleet.secrets.sops.yaml":                      string(sopstest.Encrypt(t, keyFile, "database:\n  password: fleet-wide-secret-in-the-leak-test-91c2\n")),
		"regions/eu-west-2.secrets.sops.yaml":          string(sopstest.Encrypt(t, keyFile, "database:\n  password: region-secret-in-the-leak-test-5b7d\n")),
		"tenants/trucking.us-east-1.secrets.sops.yaml": string(sopstest.Encrypt(t, keyFile, "portal:\n  database:\n    password: tenant-region-secret-in-the-leak-test-e83a\n")),
	})
	waitConverged(t, addr, head)
	for _, c := range []struct{ region, namespace, want string }{
		{"us-east-1", "logistics-eu", "fleet-wide-secret-in-the-leak-test-91c2"},
		{"eu-west-2", "logistics-eu", "region-secret-in-the-leak-test-5b7d"},
		{"us-east-1", "trucking", "tenant-region-secret-in-the-leak-test-e83a"},
		{"eu-west-2", "trucking", "rotated-in-the-leak-test-4f1e07"},
	} {
		s, err := kubernetes.NewForConfigOrDie(f.tb.Region(c.region).Config).CoreV1().Secrets(c.namespace).Get(t.Context(), "portal-database", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: Secret/%s/portal-database: %v", c.region, c.namespace, err)
		}
		if string(s.Data["password"]) != c.want {
			// Not the value: the test's own output must not hold one either.
			t.Errorf("%s: Secret/%s/portal-database holds another layer's password than the one its precedence gives", c.region, c.namespace)
		}
	}

	// Someone edits the live Secret; the drift check puts it back.
	cs := kubernetes.NewForConfigOrDie(f.tb.Region("eu-west-2").Config)
	secret, err := cs.CoreV1().Secrets("trucking").Get(t.Context(), "portal-database", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := string(secret.Data["password"])
	secret.Data["password"] = []byte("edited-by-hand")
	if _, err := cs.CoreV1().Secrets("trucking").Update(t.Context(), secret, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		s, err := cs.CoreV1().Secrets("trucking").Get(t.Context(), "portal-database", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(s.Data["password"]) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the edited Secret was not corrected within 2m")
		}
	}

	// What the run decrypted: every secrets file at both revisions.
	files := map[string][]byte{}
	for _, rev := range []string{base, head} {
		for _, name := range strings.Fields(gitOut(t, f, "ls-tree", "-r", "--name-only", rev)) {
			if strings.HasSuffix(name, ".secrets.sops.yaml") {
				files[rev[:12]+":"+name] = []byte(gitOut(t, f, "show", rev+":"+name))
			}
		}
	}
	values := sopstest.Values(t, keyFile, files)
	if len(values) < 6 {
		t.Fatalf("only %d decrypted values to look for", len(values))
	}

	// A Kubernetes event whose message holds a decrypted value, as a container
	// that prints its environment makes: the daemon reads it from the region for
	// the unit page, and must redact it there (and keep it out of its history).
	leakyEvent := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "trucking", Name: "portal.leak-test"},
		InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: "trucking", Name: "portal", APIVersion: "apps/v1"},
		Reason:         "BackOff", Type: corev1.EventTypeWarning, Count: 1,
		Message:       "container exited: DATABASE_PASSWORD=" + want,
		LastTimestamp: metav1.Now(),
		Source:        corev1.EventSource{Component: "leak-test"},
	}
	if _, err := cs.CoreV1().Events("trucking").Create(t.Context(), leakyEvent, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	places := map[string][]byte{}
	for _, path := range []string{"/metrics", "/api/v1/status", "/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=2",
		"/api/v1/summary", "/api/v1/apps", "/api/v1/history", "/api/v1/units/trucking/eu-west-2/portal", "/api/v1/events/trucking/eu-west-2/portal"} {
		places["GET "+path] = get(t, "http://"+addr+path)
	}
	for _, m := range regexp.MustCompile(`(?:src|href)="(/[^"]*)"`).FindAllStringSubmatch(string(places["GET /"]), -1) {
		places["GET "+m[1]] = get(t, "http://"+addr+m[1])
	}
	for _, format := range []string{"text", "markdown", "json"} {
		places["meridian diff --format "+format] = runMeridian(t, []string{"SOPS_AGE_KEY_FILE=" + keyFile}, bin, "diff", "--repo", f.work.Dir(), "--base", base, "--head", head, "--format", format)
	}
	places["meridian plan"] = runMeridian(t, nil, bin, "plan", "--config", cfg)
	events, liveSecrets := 0, 0
	for _, r := range f.tb.Regions {
		cs := kubernetes.NewForConfigOrDie(r.Config)
		list, err := cs.CoreV1().Events("").List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		events += len(list.Items)
		// The event the test made holds a value on purpose: it is a control.
		list.Items = slices.DeleteFunc(list.Items, func(ev corev1.Event) bool {
			if ev.Namespace == leakyEvent.Namespace && ev.Name == leakyEvent.Name {
				places[r.Name+" Event/trucking/"+ev.Name+" (control)"] = mustJSON(t, ev)
				return true
			}
			return false
		})
		places[r.Name+" events"] = mustJSON(t, list)
		for _, ns := range []string{"trucking", "logistics-eu"} {
			secrets, err := cs.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			liveSecrets += len(secrets.Items)
			places[r.Name+" Secrets in "+ns+" (control)"] = mustJSON(t, secrets)
		}
	}
	cached := 0
	for _, root := range []string{cache, tmp} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			places[rel] = data
			cached++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The new places are searched, not only listed: the unit's events came from its
	// region, and the history of passes is on disk.
	var unitEvents struct {
		Events []struct{ Object, Reason, Message string } `json:"events"`
	}
	if err := json.Unmarshal(places["GET /api/v1/events/trucking/eu-west-2/portal"], &unitEvents); err != nil || len(unitEvents.Events) == 0 {
		t.Errorf("/api/v1/events/trucking/eu-west-2/portal: %d events (%v); want the portal's, read from eu-west-2", len(unitEvents.Events), err)
	}
	if !slices.ContainsFunc(unitEvents.Events, func(e struct{ Object, Reason, Message string }) bool {
		return e.Object == "Deployment/trucking/portal" && strings.HasPrefix(e.Message, "container exited: DATABASE_PASSWORD=")
	}) {
		t.Error("/api/v1/events/trucking/eu-west-2/portal does not show the event holding a decrypted value: the search below cannot find it leak")
	}
	if _, ok := places[filepath.Join("cache", "state", "status", "history.json")]; !ok {
		t.Error("the history of passes is not in the daemon's state directory")
	}
	// The log last: it should hold everything the run did up to now.
	cancel()
	_ = daemon.Wait()
	places["daemon log"] = []byte(daemonLog.String())

	var control, leaks []string
	for _, hit := range sopstest.Find(values, places) {
		if strings.Contains(hit, "(control)") {
			control = append(control, hit)
			continue
		}
		leaks = append(leaks, hit)
	}
	for _, hit := range leaks {
		t.Errorf("a decrypted value leaked: %s", hit)
	}
	if len(control) == 0 {
		t.Error("the search found no decrypted value in the live Secrets, which hold them: it finds nothing")
	}
	var size int
	for _, b := range places {
		size += len(b)
	}
	t.Logf("%d decrypted values searched in %d places (%d bytes: log, metrics, status, dashboard, %d events, 3 diffs, plan, %d cache and temp files); %d leaks; control: %d hits in %d live Secrets",
		len(values), len(places), size, events, cached, len(leaks), len(control), liveSecrets)
}

// freeAddr returns a loopback address with a port free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitConverged waits until the daemon at addr reports a converged pass on revision.
func waitConverged(t *testing.T, addr, revision string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var st struct {
			LastPass *struct {
				Revision  string `json:"revision"`
				Converged bool   `json:"converged"`
			} `json:"lastPass"`
		}
		resp, err := http.Get("http://" + addr + "/api/v1/status")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if err == nil && st.LastPass != nil && st.LastPass.Revision == revision && st.LastPass.Converged {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no converged pass on %s within 5m (last error: %v)", revision, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// get fetches url and wants 200.
func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return body
}

// runMeridian runs the binary with env added to its environment and returns its standard output and error; exit
// codes other than 0 and 2 ("changes") fail the test.
func runMeridian(t *testing.T, env []string, bin string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); ok && exit.ExitCode() == 2 {
		err = nil
	}
	if err != nil {
		t.Fatalf("meridian %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// gitOut runs git in the fixture's working copy.
func gitOut(t *testing.T, f *fixture, args ...string) string {
	t.Helper()
	out, err := f.work.Git(t.Context(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
