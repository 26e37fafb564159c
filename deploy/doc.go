// Package deploy holds how Meridian runs in a management cluster: the Helm chart
// in meridian/ and the Grafana dashboard in grafana/. Its tests lint the chart and
// install it into a testbed region with the Helm SDK.
package deploy
