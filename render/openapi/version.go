package openapi

import (
	"fmt"
	"regexp"
)

var versionPattern = regexp.MustCompile(`^v?([0-9]+)\.([0-9]+)(\.[0-9]+)?$`)

// minorOf returns the major.minor of a Kubernetes version such as 1.37.2 or v1.37.
func minorOf(version string) (string, error) {
	m := versionPattern.FindStringSubmatch(version)
	if m == nil {
		return "", fmt.Errorf("%q is not a Kubernetes version such as 1.37.2", version)
	}
	return m[1] + "." + m[2], nil
}
