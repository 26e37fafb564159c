package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/client-go/rest"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux
// platform Go supports.
const clockTicks = 100

// CPUSeconds reads the user and system CPU time a process used so far.
func CPUSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(data))
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a /proc/<pid>/stat line.
// The command name, field 2, may hold spaces, so fields are counted after its ")".
func parseStatCPU(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc stat line %q", stat)
	}
	fields := strings.Fields(stat[i+1:]) // fields[0] is field 3, state
	if len(fields) < 13 {
		return 0, fmt.Errorf("unexpected /proc stat line %q", stat)
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc stat line %q", stat)
	}
	return float64(utime+stime) / clockTicks, nil
}

// PeakRSSMiB reads a process's peak resident set size (VmHWM) in MiB.
func PeakRSSMiB(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseVmHWM(f)
}

func parseVmHWM(r io.Reader) (float64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseFloat(f[0], 64)
				return kb / 1024, err
			}
		}
	}
	return 0, fmt.Errorf("no VmHWM line")
}

// requestTotalRE matches a sample of apiserver_request_total.
var requestTotalRE = regexp.MustCompile(`^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$`)
var labelRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

// parseRequestTotals sums apiserver_request_total by verb (dry runs as
// "DRYRUN-<verb>", requests for no resource — discovery, /metrics — as
// "NONRESOURCE"), leaving out leases: the API server's own heartbeat writes them
// every few seconds whoever else is there.
func parseRequestTotals(r io.Reader) (map[string]int, error) {
	out := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := requestTotalRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range labelRE.FindAllStringSubmatch(m[1], -1) {
			labels[l[1]] = l[2]
		}
		if labels["resource"] == "leases" {
			continue
		}
		if labels["resource"] == "" {
			labels["verb"] = "NONRESOURCE" // discovery, /metrics, /healthz
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, err
		}
		verb := labels["verb"]
		if labels["dry_run"] != "" {
			verb = "DRYRUN-" + verb
		}
		if verb == "POST" {
			verb = "CREATE"
		}
		if verb == "PUT" {
			verb = "UPDATE"
		}
		out[verb] += int(v)
	}
	return out, sc.Err()
}

// APIServerRequests scrapes an API server's /metrics and returns its
// apiserver_request_total by verb (see parseRequestTotals).
func APIServerRequests(ctx context.Context, cfg *rest.Config) (map[string]int, error) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/metrics: %s", cfg.Host, resp.Status)
	}
	return parseRequestTotals(resp.Body)
}
