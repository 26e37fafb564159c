// Package memlimit gives the Go runtime a soft memory limit from the memory
// limit of the cgroup the process runs in, as a container's memory limit sets
// it: the collector then works harder as the heap nears the limit instead of
// letting the kernel kill the process.
package memlimit

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// Fraction is the part of the cgroup's limit given to the Go runtime. The rest
// is for what the limit counts outside it: the binary's pages (which the kernel
// can reclaim) and memory allocated outside Go.
const Fraction = 0.9

// unlimited is where cgroup v1 stands for "no limit": it writes the largest
// page-aligned int64, not "max".
const unlimited = 1 << 60

// Of returns Fraction of the memory limit of the cgroup /proc/self/cgroup names
// in root (the root file system, "/" in production), cgroup v2's memory.max or
// v1's memory.limit_in_bytes; 0 when the process has no memory limit or its
// cgroup cannot be found. A cgroup path the process cannot see (a container
// without a cgroup namespace sees the host's path) is looked for at the root of
// the hierarchy, where the container's own cgroup is mounted.
func Of(root fs.FS) (int64, error) {
	data, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return 0, nil // not Linux, or no /proc: no limit known
	}
	var files []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		cgroup := strings.TrimPrefix(path.Clean(parts[2]), "/")
		switch {
		case parts[0] == "0" && parts[1] == "": // v2
			files = append(files, path.Join("sys/fs/cgroup", cgroup, "memory.max"), "sys/fs/cgroup/memory.max")
		case hasController(parts[1], "memory"): // v1
			files = append(files, path.Join("sys/fs/cgroup/memory", cgroup, "memory.limit_in_bytes"), "sys/fs/cgroup/memory/memory.limit_in_bytes")
		}
	}
	for _, f := range files {
		data, err := fs.ReadFile(root, f)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(data))
		if v == "max" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q is not a memory limit: %w", "/"+f, v, err)
		}
		if n <= 0 || n >= unlimited {
			return 0, nil
		}
		return int64(float64(n) * Fraction), nil
	}
	return 0, nil
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// Set sets the Go runtime's soft memory limit to Of the real root file system,
// unless GOMEMLIMIT sets one already (the operator's choice stands) or there is
// no limit. It returns the limit it set, 0 for none.
func Set() (int64, error) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0, nil
	}
	limit, err := Of(os.DirFS("/"))
	if err != nil || limit == 0 {
		return 0, err
	}
	debug.SetMemoryLimit(limit)
	return limit, nil
}
