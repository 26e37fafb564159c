package gitserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// AuthorName is the author and committer name of every commit a Workdir makes.
const AuthorName = "Meridian Test"

// AuthorEmail is the author and committer email of every commit a Workdir makes.
const AuthorEmail = "test@meridian.invalid"

// commitEpoch is the date of the first commit of a history; the commit that
// has n commits behind it is dated n minutes later.
var commitEpoch = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// fixedConfig is passed as -c options to every git command this package runs,
// so behaviour does not depend on git's compiled-in defaults or on hints.
var fixedConfig = []string{
	"-c", "init.defaultBranch=main",
	"-c", "commit.gpgSign=false",
	"-c", "tag.gpgSign=false",
	"-c", "core.autocrlf=false",
	"-c", "advice.detachedHead=false",
}

// IsolatedEnv returns an environment for running the git command-line tool
// that shares nothing with the user running the tests: HOME and
// XDG_CONFIG_HOME point at home, the system and global configuration files are
// ignored, terminal prompts are disabled, and no GIT_* variable of the calling
// process leaks in. Only PATH is taken from the calling process. The result
// carries no credentials and no trusted certificate authority; Server.GitEnv
// adds those for a particular server.
func IsolatedEnv(home string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	return []string{
		"PATH=" + path,
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_ATTR_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"LANG=C",
		"LC_ALL=C",
		"TZ=UTC",
	}
}

// identityEnv returns the variables that fix the author and committer of a
// commit or tag made at the given date.
func identityEnv(date time.Time) []string {
	d := fmt.Sprintf("%d +0000", date.Unix())
	return []string{
		"GIT_AUTHOR_NAME=" + AuthorName,
		"GIT_AUTHOR_EMAIL=" + AuthorEmail,
		"GIT_AUTHOR_DATE=" + d,
		"GIT_COMMITTER_NAME=" + AuthorName,
		"GIT_COMMITTER_EMAIL=" + AuthorEmail,
		"GIT_COMMITTER_DATE=" + d,
	}
}

// runGit runs git with args in dir and returns its standard output with
// surrounding white space removed. A failure is reported as an error naming the
// repository, the git command and what git wrote to standard error.
func runGit(ctx context.Context, gitPath, repo, dir string, env []string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, gitPath, append(append([]string(nil), fixedConfig...), args...)...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%w)", err, ctxErr)
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", fmt.Errorf("gitserver: repo %q: git %s: %w: %s", repo, strings.Join(args, " "), err, msg)
		}
		return "", fmt.Errorf("gitserver: repo %q: git %s: %w", repo, strings.Join(args, " "), err)
	}
	return strings.TrimSpace(stdout.String()), nil
}
