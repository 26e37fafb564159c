package status

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/render/secrets"
)

// TestHistoryInAConfigMap keeps the history in a ConfigMap of a real
// kube-apiserver across a restart of the Store, with two replicas adding to it,
// redacted and bounded.
func TestHistoryInAConfigMap(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1})
	client := kubernetes.NewForConfigOrDie(tb.Regions[0].Config)
	ctx := t.Context()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meridian-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	store := HistoryConfigMap{Client: client.CoreV1(), Namespace: "meridian-system", Name: "meridian-status-history"}
	f := loadExampleFleet(t)
	clock := newClock()
	s := New(Options{Now: clock.Now, History: store, Redactor: secrets.NewRedactor([]string{secretValue})})
	s.ObserveRevision(commit1)
	s.ObservePass(f.readyReport(rev1), 42*time.Second)
	clock.Add(time.Minute)
	s.ObserveRevision(commit2)
	leaky := f.troubledReport()
	setApplyError(leaky.Regions["eu-west-2"], unit("trucking/eu-west-2/worker"), "Secret/trucking/worker: invalid data DB_PASSWORD="+secretValue)
	s.ObservePass(leaky, 5*time.Minute)
	before := s.History()
	s.Close(10 * time.Second)

	cm, err := client.CoreV1().ConfigMaps("meridian-system").Get(ctx, "meridian-status-history", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the history was not saved: %v", err)
	}
	if cm.Labels["app.kubernetes.io/managed-by"] != "meridian" {
		t.Errorf("labels = %v; want the ConfigMap marked as Meridian's", cm.Labels)
	}
	if data := cm.Data[historyKey]; strings.Contains(data, secretValue) || !strings.Contains(data, secrets.Redacted) {
		t.Errorf("the ConfigMap's history holds a secret, or was not fed one (redacted marker present: %t)", strings.Contains(data, secrets.Redacted))
	}

	// The daemon restarts: a new Store reads the ConfigMap.
	after := New(Options{Now: clock.Now, History: store})
	if diff := cmp.Diff(before, after.History()); diff != "" {
		t.Errorf("history after the restart (-before +after):\n%s", diff)
	}

	// Another replica, which started before the first saved, adds its pass; the
	// first replica's next pass keeps it.
	clock.Add(time.Minute)
	other := New(Options{Now: clock.Now, HistorySize: DefaultHistorySize})
	other.opts.History = store // as if it had loaded an empty history
	other.startHistorySaver()
	other.ObservePass(f.readyReport(rev2), 10*time.Second)
	other.Close(10 * time.Second)
	clock.Add(time.Minute)
	after.ObservePass(f.readyReport(rev2), 20*time.Second)
	after.Close(10 * time.Second)
	saved, err := store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var durations []float64
	for _, p := range saved {
		durations = append(durations, p.DurationSeconds)
	}
	if diff := cmp.Diff([]float64{42, 300, 10, 20}, durations); diff != "" {
		t.Errorf("passes in the ConfigMap, oldest first, by duration (-want +got):\n%s", diff)
	}
	// Keep bounds the passes of every replica together.
	small := HistoryConfigMap{Client: store.Client, Namespace: store.Namespace, Name: store.Name, Keep: 3}
	if err := small.Save(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if saved, err := small.Load(ctx); err != nil || len(saved) != 3 || saved[0].DurationSeconds != 300 {
		t.Errorf("with Keep 3: %d passes, first %+v (%v); want the newest 3", len(saved), saved, err)
	}

	// However long the passes' texts, the ConfigMap stays bounded.
	store.Name, store.Keep = "meridian-status-history-bounded", 5000
	var big []PassRecord
	for i := range 2000 {
		big = append(big, PassRecord{Revision: rev1, Start: time.Unix(int64(i), 0), Problems: strings.Repeat("x", maxHistoryText)})
	}
	if err := store.Save(ctx, big); err != nil {
		t.Fatal(err)
	}
	cm, err = client.CoreV1().ConfigMaps("meridian-system").Get(ctx, store.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var kept []PassRecord
	if err := json.Unmarshal([]byte(cm.Data[historyKey]), &kept); err != nil {
		t.Fatal(err)
	}
	if n := len(cm.Data[historyKey]); n > MaxHistoryBytes || len(kept) == 0 || kept[len(kept)-1].Start.Unix() != 1999 {
		t.Errorf("the ConfigMap holds %d bytes, %d passes; want at most %d bytes, the newest passes", n, len(kept), MaxHistoryBytes)
	}
	t.Logf("2,000 passes of %d-byte problems: the ConfigMap keeps the newest %d in %d bytes", maxHistoryText, len(kept), len(cm.Data[historyKey]))
}
