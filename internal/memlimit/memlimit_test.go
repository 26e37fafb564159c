package memlimit

import (
	"testing"
	"testing/fstest"
)

// TestOf reads the memory limits of cgroups as containers see them.
func TestOf(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tc := range []struct {
		name    string
		fs      fstest.MapFS
		want    int64
		wantErr bool
	}{
		{"v2 in a cgroup namespace", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("1073741824\n"),
		}, 966367641, false},
		{"v2, the host's path seen, the container's cgroup mounted at the root", fstest.MapFS{
			"proc/self/cgroup":         file("0::/kubepods/burstable/pod1/abc\n"),
			"sys/fs/cgroup/memory.max": file("536870912\n"),
		}, 483183820, false},
		{"v2 at its own path", fstest.MapFS{
			"proc/self/cgroup":                        file("0::/meridian.slice\n"),
			"sys/fs/cgroup/meridian.slice/memory.max": file("104857600\n"),
			"sys/fs/cgroup/memory.max":                file("max\n"),
		}, 94371840, false},
		{"v2 without a limit", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("max\n"),
		}, 0, false},
		{"v1", fstest.MapFS{
			"proc/self/cgroup":                           file("12:cpu,cpuacct:/\n11:memory:/\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("268435456\n"),
		}, 241591910, false},
		{"v1 without a limit", fstest.MapFS{
			"proc/self/cgroup":                           file("11:memory:/\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("9223372036854771712\n"),
		}, 0, false},
		{"no cgroup file", fstest.MapFS{}, 0, false},
		{"no memory controller", fstest.MapFS{"proc/self/cgroup": file("12:cpu:/\n")}, 0, false},
		{"a limit that is not a number", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("lots\n"),
		}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Of(tc.fs)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("Of = %d, %v; want %d (error: %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
