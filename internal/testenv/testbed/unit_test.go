package testbed

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRegionNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    Options
		want    []string
		wantErr string
	}{
		{name: "default is one region", opts: Options{}, want: []string{"us-east-1"}},
		{name: "three defaults", opts: Options{Regions: 3}, want: []string{"us-east-1", "eu-west-2", "ap-northeast-2"}},
		{name: "past the defaults", opts: Options{Regions: 5}, want: []string{"us-east-1", "eu-west-2", "ap-northeast-2", "region-4", "region-5"}},
		{name: "names alone", opts: Options{Names: []string{"a", "b"}}, want: []string{"a", "b"}},
		{name: "names then defaults", opts: Options{Regions: 2, Names: []string{"x"}}, want: []string{"x", "eu-west-2"}},
		{name: "more names than regions", opts: Options{Regions: 1, Names: []string{"a", "b"}}, wantErr: "1 regions but 2 names"},
		{name: "duplicate", opts: Options{Names: []string{"a", "a"}}, wantErr: `"a" given twice`},
		{name: "not a label", opts: Options{Names: []string{"US_East"}}, wantErr: `region name "US_East"`},
		{name: "negative", opts: Options{Regions: -1}, wantErr: "-1 regions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RegionNames(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("RegionNames = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb", 5, "a\nb\n"},
		{"", 3, "\n"},
		{strings.Repeat("x", 700), 1, strings.Repeat("x", 600) + "...\n"},
	}
	for _, tt := range tests {
		if got := tail([]byte(tt.in), tt.n); got != tt.want {
			t.Errorf("tail(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestWriteKwokStagesJoinsListedResources(t *testing.T) {
	t.Parallel()
	kwok := t.TempDir()
	files := map[string]string{
		"kustomize/stage/node/fast/kustomization.yaml":       "resources:\n- node-initialize.yaml\n",
		"kustomize/stage/node/fast/node-initialize.yaml":     "kind: Stage\nmetadata:\n  name: node-initialize\n",
		"kustomize/stage/node/fast/README.md":                "not a stage",
		"kustomize/stage/node/heartbeat/kustomization.yaml":  "resources:\n- node-heartbeat.yaml\n",
		"kustomize/stage/node/heartbeat/node-heartbeat.yaml": "kind: Stage\nmetadata:\n  name: node-heartbeat\n",
		"kustomize/stage/pod/fast/kustomization.yaml":        "resources:\n- pod-ready.yaml\n- pod-delete.yaml\n",
		"kustomize/stage/pod/fast/pod-ready.yaml":            "kind: Stage\nmetadata:\n  name: pod-ready\n",
		"kustomize/stage/pod/fast/pod-delete.yaml":           "kind: Stage\nmetadata:\n  name: pod-delete\n",
		"kustomize/stage/pod/fast/pod-unlisted.yaml":         "kind: Stage\nmetadata:\n  name: unlisted\n",
	}
	for name, data := range files {
		path := filepath.Join(kwok, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "stages.yaml")
	if err := writeKwokStages(kwok, dst); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	want := "---\nkind: Stage\nmetadata:\n  name: node-initialize\n" +
		"---\nkind: Stage\nmetadata:\n  name: node-heartbeat\n" +
		"---\nkind: Stage\nmetadata:\n  name: pod-ready\n" +
		"---\nkind: Stage\nmetadata:\n  name: pod-delete\n"
	if string(got) != want {
		t.Errorf("stages =\n%s\nwant\n%s", got, want)
	}

	if err := os.Remove(filepath.Join(kwok, "kustomize/stage/pod/fast/pod-delete.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := writeKwokStages(kwok, dst); err == nil || !strings.Contains(err.Error(), "pod-delete.yaml") {
		t.Errorf("with a listed file missing: err = %v, want it named", err)
	}
}

func TestFindComponentsModule(t *testing.T) {
	mod, err := findComponentsModule()
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if want := filepath.Join(wd, "components"); mod.dir != want {
		t.Errorf("components module = %s, want %s", mod.dir, want)
	}

	// A directory that is not the module is refused, with advice.
	t.Setenv(EnvComponentsDir, t.TempDir())
	if _, err := findComponentsModule(); err == nil || !strings.Contains(err.Error(), EnvComponentsDir) {
		t.Errorf("with %s pointing elsewhere: err = %v, want an error naming it", EnvComponentsDir, err)
	}
}

func TestCacheKeyFollowsModuleFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module "+componentsModulePath+"\n\ngo 1.27.0\n")
	write("go.sum", "")
	write("cmd/etcd/main.go", "package main\n\nfunc main() {}\n")
	mod := newComponentsModule(dir)
	key1, err := mod.cacheKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	again, err := mod.cacheKey(t.Context())
	if err != nil || again != key1 {
		t.Fatalf("same files: key %s then %s (%v); want equal", key1, again, err)
	}
	write("go.sum", "example.com/m v1.0.0 h1:x=\n")
	key2, _ := mod.cacheKey(t.Context())
	write("cmd/etcd/main.go", "package main\n\nfunc main() { println() }\n")
	key3, _ := mod.cacheKey(t.Context())
	if key2 == key1 || key3 == key2 || len(key1) != 16 {
		t.Errorf("keys %s, %s, %s: want 16 hex digits that change with go.sum and sources", key1, key2, key3)
	}
}

func TestDownWithoutState(t *testing.T) {
	t.Parallel()
	if err := Down(t.TempDir()); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Down on an empty dir = %v, want ErrNotRunning", err)
	}
}

// TestChildDiesWithParent checks the guarantee tests rely on: a component
// started by the spawner dies when the process that started it is killed with
// SIGKILL, even though no Stop ever runs.
func TestChildDiesWithParent(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux only")
	}
	if os.Getenv("TESTBED_SPAWN_HELPER") == "1" {
		spawnHelper()
		return
	}
	t.Parallel()
	helper := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithParent$")
	helper.Env = append(os.Environ(), "TESTBED_SPAWN_HELPER=1")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "child ")))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	defer killGroup(pid)
	if !alive(pid) {
		t.Fatalf("child %d not running before its parent is killed", pid)
	}
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		t.Fatalf("child %d still alive 10s after its parent was killed", pid)
	}
}

// spawnHelper starts a long sleep through a spawner, churns goroutines that
// lock and leave OS threads (which makes the runtime retire threads), reports
// the child's pid and waits to be killed.
func spawnHelper() {
	s := newSpawner()
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = childAttr(false)
	if err := s.start(cmd); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for range 50 {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread() // exits locked: the runtime ends this thread
			close(done)
		}()
		<-done
	}
	if !alive(cmd.Process.Pid) {
		fmt.Println("error child died when other threads exited")
		os.Exit(1)
	}
	fmt.Printf("child %d\n", cmd.Process.Pid)
	time.Sleep(time.Hour)
}
