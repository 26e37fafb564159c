package readme

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/internal/gotool"
	"meridian.dev/meridian/internal/testenv/testbed"
)

// README.md's shell blocks (```sh, ```bash, ```shell) are run in order, one
// command a line (a line ending in \ continues on the next; blank lines and
// comment lines are left out). Fenced blocks of any other language or none
// (diagrams, the layout) are not commands. An HTML comment on the line before a
// block's fence changes how it runs:
//
//	<!-- readme-test: skip REASON -->
//	    the block is not run; the test logs and counts it with its reason. For
//	    what no test can do: `make test` (which runs this test), AWS.
//	<!-- readme-test: background until "TEXT" -->
//	    the block's one command starts in the background; the test goes on once
//	    its output shows TEXT, and fails if it ends first. It is stopped as
//	    Ctrl-C stops it (SIGINT to its process group) before the next block,
//	    unless that block is marked beside-background; it must then end within
//	    stopTimeout.
//	<!-- readme-test: beside-background -->
//	    the block runs while the background command before it still runs (a
//	    second terminal, as README says).
//
// A command fails when it exits with a status other than 0, or 2 for the
// commands that document 2 as an answer rather than an error (meridian diff
// and plan: changes; meridian status: some unit not Ready).
const directivePrefix = "<!-- readme-test:"

// stopTimeout bounds how long a background command may take to stop after SIGINT.
const stopTimeout = 2 * time.Minute

// answersWithTwo matches the commands whose documented exit status 2 is an answer.
var answersWithTwo = regexp.MustCompile(`\bmeridian (diff|plan|status)\b`)

// block is one shell block of the README.
type block struct {
	// Line is the line of the opening fence (1-based).
	Line int
	// Commands are the block's commands, in order.
	Commands []command
	// Skip is why the block is not run; empty when it is.
	Skip string
	// Until is the text a background block's output shows when it is ready;
	// empty for a block that runs in the foreground.
	Until string
	// Beside reports that the block runs while the background block before it runs.
	Beside bool
}

// command is one command of a block.
type command struct {
	// Line is the command's first line (1-based).
	Line int
	Text string
}

var (
	fenceLang  = regexp.MustCompile("^```\\s*([A-Za-z0-9_+-]*)")
	shellLangs = []string{"sh", "bash", "shell"}
	untilRe    = regexp.MustCompile(`^background until "([^"]+)"$`)
)

// parseBlocks returns the shell blocks of a Markdown document with their
// directives. A directive that is not understood, or that no shell block
// follows, is an error naming its line.
func parseBlocks(name string, text []byte) ([]block, error) {
	var blocks []block
	var pending *block // the directive waiting for its fence
	pendingLine := 0
	var cur *block
	var cont strings.Builder
	contLine := 0
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur != nil {
			if strings.HasPrefix(trimmed, "```") {
				if cont.Len() > 0 {
					return nil, fmt.Errorf("%s:%d: the block ends inside a command continued with \\", name, n)
				}
				blocks = append(blocks, *cur)
				cur = nil
				continue
			}
			if cont.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
				continue
			}
			if cont.Len() == 0 {
				contLine = n
			}
			if strings.HasSuffix(line, "\\") {
				cont.WriteString(strings.TrimSuffix(line, "\\"))
				continue
			}
			cont.WriteString(line)
			cur.Commands = append(cur.Commands, command{Line: contLine, Text: strings.TrimSpace(cont.String())})
			cont.Reset()
			continue
		}
		if m := fenceLang.FindStringSubmatch(trimmed); m != nil {
			if !slices.Contains(shellLangs, m[1]) {
				if pending != nil {
					return nil, fmt.Errorf("%s:%d: a readme-test directive before a block that is not a shell block (```sh)", name, pendingLine)
				}
				// Skip to the end of a block that is not shell.
				for n++; sc.Scan(); n++ {
					if strings.HasPrefix(strings.TrimSpace(sc.Text()), "```") {
						break
					}
				}
				continue
			}
			cur = &block{Line: n}
			if pending != nil {
				cur.Skip, cur.Until, cur.Beside = pending.Skip, pending.Until, pending.Beside
				pending = nil
			}
			continue
		}
		if strings.HasPrefix(trimmed, directivePrefix) {
			if pending != nil {
				return nil, fmt.Errorf("%s:%d: a second readme-test directive; one block takes one", name, n)
			}
			d, err := parseDirective(trimmed)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, n, err)
			}
			pending, pendingLine = &d, n
			continue
		}
		if pending != nil && trimmed != "" {
			return nil, fmt.Errorf("%s:%d: a readme-test directive must be directly before a block's fence", name, pendingLine)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: the block is not closed", name, cur.Line)
	}
	if pending != nil {
		return nil, fmt.Errorf("%s:%d: a readme-test directive that no block follows", name, pendingLine)
	}
	for i, b := range blocks {
		switch {
		case b.Until != "" && len(b.Commands) != 1:
			return nil, fmt.Errorf("%s:%d: a background block has exactly one command, this one has %d", name, b.Line, len(b.Commands))
		case b.Beside && (i == 0 || blocks[i-1].Until == "" && !blocks[i-1].Beside):
			return nil, fmt.Errorf("%s:%d: beside-background, but no background block comes before it", name, b.Line)
		case b.Skip == "" && len(b.Commands) == 0:
			return nil, fmt.Errorf("%s:%d: a shell block without a command", name, b.Line)
		}
	}
	return blocks, nil
}

// parseDirective reads one "<!-- readme-test: ... -->" line.
func parseDirective(line string) (block, error) {
	body, ok := strings.CutSuffix(strings.TrimPrefix(line, directivePrefix), "-->")
	if !ok {
		return block{}, errors.New("a readme-test directive ends with --> on its line")
	}
	body = strings.TrimSpace(body)
	switch {
	case strings.HasPrefix(body, "skip"):
		reason := strings.TrimSpace(strings.TrimPrefix(body, "skip"))
		if reason == "" {
			return block{}, errors.New("readme-test: skip needs a reason: <!-- readme-test: skip why -->")
		}
		return block{Skip: reason}, nil
	case body == "beside-background":
		return block{Beside: true}, nil
	}
	if m := untilRe.FindStringSubmatch(body); m != nil {
		return block{Until: m[1]}, nil
	}
	return block{}, fmt.Errorf(`readme-test: %q is not a directive; use skip REASON, background until "TEXT" or beside-background`, body)
}

func TestParseBlocks(t *testing.T) {
	doc := "# Title\n" + // 1
		"```\n" + // 2
		"a diagram, not commands\n" + // 3
		"```\n" + // 4
		"\n" + // 5
		"<!-- readme-test: background until \"is running\" -->\n" + // 6
		"```sh\n" + // 7
		"make demo   # or: something else\n" + // 8
		"```\n" + // 9
		"<!-- readme-test: beside-background -->\n" + // 10
		"```bash\n" + // 11
		"# a comment line\n" + // 12
		"\n" + // 13
		"go run ./cmd/meridian status \\\n" + // 14
		"  --tenant trucking\n" + // 15
		"echo two\n" + // 16
		"```\n" + // 17
		"<!-- readme-test: skip it would run itself -->\n" + // 18
		"```sh\n" + // 19
		"make test\n" + // 20
		"```\n" + // 21
		"```yaml\n" + // 22
		"kind: Tenant\n" + // 23
		"```\n" // 24
	got, err := parseBlocks("README.md", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []block{
		{Line: 7, Until: "is running", Commands: []command{{8, "make demo   # or: something else"}}},
		{Line: 11, Beside: true, Commands: []command{{14, "go run ./cmd/meridian status   --tenant trucking"}, {16, "echo two"}}},
		{Line: 19, Skip: "it would run itself", Commands: []command{{20, "make test"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("blocks (-want +got):\n%s", diff)
	}

	bad := []struct{ name, doc, want string }{
		{"unknown", "<!-- readme-test: sometimes -->\n```sh\nls\n```\n", `README.md:1: readme-test: "sometimes" is not a directive`},
		{"skip without reason", "<!-- readme-test: skip -->\n```sh\nls\n```\n", "README.md:1: readme-test: skip needs a reason"},
		{"dangling", "<!-- readme-test: skip no -->\n\ntext\n```sh\nls\n```\n", "README.md:1: a readme-test directive must be directly before"},
		{"before yaml", "<!-- readme-test: skip no -->\n```yaml\na: b\n```\n", "README.md:1: a readme-test directive before a block that is not a shell block"},
		{"two commands in background", "<!-- readme-test: background until \"x\" -->\n```sh\na\nb\n```\n", "README.md:2: a background block has exactly one command, this one has 2"},
		{"beside nothing", "```sh\na\n```\n<!-- readme-test: beside-background -->\n```sh\nb\n```\n", "README.md:5: beside-background, but no background block comes before it"},
		{"unclosed", "```sh\na\n", "README.md:1: the block is not closed"},
		{"at the end", "```sh\na\n```\n<!-- readme-test: skip x -->\n", "README.md:4: a readme-test directive that no block follows"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseBlocks("README.md", []byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestREADMECommands clones this checkout (with its uncommitted changes to
// tracked files) into a temporary directory and runs README.md's shell blocks
// there in order, as a newcomer would on a fresh clone. The commands get a
// cache directory of their own, so the demo and `meridian-dev up` touch no one
// else's regions, with the testbed's and tools' built binaries and Go's build
// cache shared with the user's (built once, as `make test` does first); and no
// SOPS key, Meridian server or AWS settings from the environment.
func TestREADMECommands(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// README's directives are checked even where its commands do not run.
	blocks, err := parseBlocks("README.md", readme)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(testbed.EnvSkip) == "1" {
		t.Skipf("README's demo and regions need the testbed: %s=1", testbed.EnvSkip)
	}
	if testing.Short() {
		t.Skip("-short: README's commands build and start regions")
	}
	ctx := t.Context()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-30*time.Second))
		defer cancel()
	}

	clone := filepath.Join(t.TempDir(), "meridian")
	freshClone(t, root, clone)
	env := commandEnv(t, filepath.Join(t.TempDir(), "cache"))
	t.Cleanup(func() { stopLeftRegions(t, env) })

	start := time.Now()
	var bg *background
	ran, skipped := 0, 0
	for _, b := range blocks {
		if bg != nil && !b.Beside {
			bg.stop(t)
			bg = nil
		}
		if b.Skip != "" {
			skipped++
			t.Logf("README.md:%d: block skipped: %s", b.Line, b.Skip)
			continue
		}
		if b.Until != "" {
			c := b.Commands[0]
			t.Logf("README.md:%d: %s (in the background, until it prints %q)", c.Line, c.Text, b.Until)
			bg = startBackground(ctx, t, clone, env, b, c)
			ran++
			continue
		}
		for _, c := range b.Commands {
			t.Logf("README.md:%d: %s", c.Line, c.Text)
			began := time.Now()
			out, code, err := runCommand(ctx, clone, env, c.Text)
			if err != nil || !(code == 0 || code == 2 && answersWithTwo.MatchString(c.Text)) {
				if bg != nil {
					bg.stop(t)
				}
				t.Fatalf("README.md:%d (the block at line %d): %s: exit status %d, %v after %s; its output ends:\n%s",
					c.Line, b.Line, c.Text, code, err, time.Since(began).Round(time.Second), tail(out, 3000))
			}
			t.Logf("  exit status %d after %s; its output ends:\n%s", code, time.Since(began).Round(time.Second), lastLines(out, 3))
			ran++
		}
	}
	if bg != nil {
		bg.stop(t)
	}
	if left := leftRunning(env); len(left) > 0 {
		t.Errorf("README's commands left region processes running (Ctrl-C of a background command, or meridian-dev down, should stop them): %s", strings.Join(left, ", "))
	}
	t.Logf("README.md: ran %d commands of %d blocks, skipped %d blocks, in %s", ran, len(blocks)-skipped, skipped, time.Since(start).Round(time.Second))
	if ran == 0 {
		t.Fatal("README.md has no shell command that runs")
	}
}

// freshClone clones root's HEAD into dir and copies over the tracked files the
// working tree changed, so the README of an uncommitted change is what runs.
func freshClone(t *testing.T, root, dir string) {
	t.Helper()
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), "git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return string(out)
	}
	git(root, "clone", "--quiet", "--no-hardlinks", root, dir)
	changed := strings.Fields(git(root, "diff", "--name-only", "HEAD"))
	for _, name := range changed {
		src, dst := filepath.Join(root, name), filepath.Join(dir, name)
		data, err := os.ReadFile(src)
		if errors.Is(err, os.ErrNotExist) {
			if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	if len(changed) > 0 {
		t.Logf("cloned HEAD with the working tree's changes to %d tracked files", len(changed))
	}
	if untracked := strings.Fields(git(root, "ls-files", "--others", "--exclude-standard")); len(untracked) > 0 {
		t.Logf("%d untracked files are not in the clone (git add them to test them): %s", len(untracked), strings.Join(untracked, " "))
	}
}

// commandEnv is the environment README's commands run in: this one without
// what a newcomer's shell would not have, with cacheDir as the user cache
// directory, and the built testbed components, tools and Go build cache of the
// user's.
func commandEnv(t *testing.T, cacheDir string) []string {
	t.Helper()
	tb := os.Getenv(testbed.EnvCacheDir)
	if tb == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		tb = filepath.Join(dir, "meridian", "testbed")
	}
	tools, err := gotool.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), "go", "env", "GOCACHE", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	goenv := strings.Fields(string(out))
	if len(goenv) != 2 {
		t.Fatalf("go env GOCACHE GOMODCACHE: %q", out)
	}
	// MAKEFLAGS and MAKELEVEL are make test's, which a newcomer's make does not inherit.
	dropped := []string{"XDG_CACHE_HOME", "GOCACHE", "GOMODCACHE", "GOTOOLCHAIN", "GOFLAGS", "MERIDIAN_SERVER",
		"SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD", "SOPS_PGP_FP", "GNUPGHOME", "KUBECONFIG",
		"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if slices.Contains(dropped, k) || strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "MERIDIAN_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"XDG_CACHE_HOME="+cacheDir,
		testbed.EnvCacheDir+"="+tb,
		gotool.EnvCacheDir+"="+tools,
		"GOCACHE="+goenv[0],
		"GOMODCACHE="+goenv[1],
		// A newcomer's Go downloads the toolchain go.mod pins, as README says;
		// some machines set GOTOOLCHAIN=local in their go env.
		"GOTOOLCHAIN=auto",
	)
}

// regionDirs are where README's commands keep regions under the test's cache
// directory: meridian-dev up's and the demo's.
func regionDirs(env []string) []string {
	var cache string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "XDG_CACHE_HOME="); ok {
			cache = v
		}
	}
	return []string{filepath.Join(cache, "meridian", "dev"), filepath.Join(cache, "meridian", "demo", "regions")}
}

// leftRunning lists the region processes still running that README's commands
// started: after `meridian-dev down`, or the demo stopped by Ctrl-C, none.
func leftRunning(env []string) []string {
	var left []string
	for _, dir := range regionDirs(env) {
		st, err := testbed.ReadState(dir)
		if err != nil {
			continue
		}
		for _, r := range st.Regions {
			for _, p := range r.Processes {
				if syscall.Kill(p.PID, 0) == nil {
					left = append(left, fmt.Sprintf("%s %s (pid %d)", r.Name, p.Component, p.PID))
				}
			}
		}
	}
	return left
}

// stopLeftRegions stops regions a failed run left behind in the test's cache
// directory.
func stopLeftRegions(t *testing.T, env []string) {
	for _, dir := range regionDirs(env) {
		if err := testbed.Down(dir); err != nil && !errors.Is(err, testbed.ErrNotRunning) && !errors.Is(err, os.ErrNotExist) {
			t.Logf("stopping regions left in %s: %v", dir, err)
		}
	}
}

// newShell returns bash running text in dir, in a process group of its own so
// that SIGINT reaches every process it starts, as Ctrl-C does.
func newShell(ctx context.Context, dir string, env []string, text string, out io.Writer) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", text)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// runCommand runs one command to its end and returns its output and exit status.
func runCommand(ctx context.Context, dir string, env []string, text string) (string, int, error) {
	var out syncBuffer
	cmd := newShell(ctx, dir, env, text, &out)
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		return out.String(), ee.ExitCode(), nil
	}
	if err != nil {
		return out.String(), -1, err
	}
	return out.String(), 0, nil
}

// background is a command of a background block, running.
type background struct {
	line int
	text string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

// startBackground starts c and waits until its output shows b.Until, failing
// the test if it ends or the test's time runs out first.
func startBackground(ctx context.Context, t *testing.T, dir string, env []string, b block, c command) *background {
	t.Helper()
	bg := &background{line: c.Line, text: c.Text, out: &syncBuffer{}, done: make(chan error, 1)}
	// Its output goes to the test's log as it comes (a first build of the
	// regions shows its progress there), and is kept to find Until in.
	bg.cmd = newShell(ctx, dir, env, c.Text, io.MultiWriter(bg.out, &lineLog{t: t, start: time.Now()}))
	began := time.Now()
	if err := bg.cmd.Start(); err != nil {
		t.Fatalf("README.md:%d: %s: %v", c.Line, c.Text, err)
	}
	go func() { bg.done <- bg.cmd.Wait() }()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(bg.out.String(), b.Until) {
		select {
		case err := <-bg.done:
			t.Fatalf("README.md:%d (the block at line %d): %s ended (%v) before it printed %q; its output ends:\n%s",
				c.Line, b.Line, c.Text, err, b.Until, tail(bg.out.String(), 3000))
		case <-ctx.Done():
			_ = syscall.Kill(-bg.cmd.Process.Pid, syscall.SIGKILL)
			<-bg.done
			t.Fatalf("README.md:%d (the block at line %d): %s did not print %q before the test's deadline; its output ends:\n%s",
				c.Line, b.Line, c.Text, b.Until, tail(bg.out.String(), 3000))
		case <-tick.C:
		}
	}
	t.Logf("  ready after %s", time.Since(began).Round(time.Second))
	return bg
}

// stop interrupts the background command as Ctrl-C would and waits for it to
// end; one that does not end within stopTimeout is killed and fails the test.
func (bg *background) stop(t *testing.T) {
	t.Helper()
	began := time.Now()
	_ = syscall.Kill(-bg.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-bg.done:
		t.Logf("README.md:%d: %s stopped by SIGINT after %s", bg.line, bg.text, time.Since(began).Round(time.Second))
		// What it started in its process group must have ended with it.
		deadline := time.Now().Add(stopTimeout)
		for syscall.Kill(-bg.cmd.Process.Pid, 0) == nil {
			if time.Now().After(deadline) {
				_ = syscall.Kill(-bg.cmd.Process.Pid, syscall.SIGKILL)
				t.Errorf("README.md:%d: %s ended, but processes it started still ran %s after SIGINT (Ctrl-C)", bg.line, bg.text, stopTimeout)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-bg.cmd.Process.Pid, syscall.SIGKILL)
		<-bg.done
		t.Errorf("README.md:%d: %s did not stop within %s of SIGINT (Ctrl-C); its output ends:\n%s", bg.line, bg.text, stopTimeout, tail(bg.out.String(), 3000))
	}
}

// lastLines is the last n lines of s, indented.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    | " + strings.Join(lines, "\n    | ")
}

// lineLog writes each whole line written to it to the test's log.
type lineLog struct {
	t       *testing.T
	start   time.Time
	mu      sync.Mutex
	partial []byte
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.t.Logf("  %6s | %s", time.Since(l.start).Round(time.Second), l.partial[:i])
		l.partial = l.partial[i+1:]
	}
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// syncBuffer is a bytes.Buffer that a command writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
