package live

// The objects below are as the API server returns them after Meridian applied
// them (with deploymentAsServed, in trim_test.go): one of each kind a placement
// has most of, with their managed fields.

// serviceAsServed is a Service with Meridian's apply entry and the API server's
// allocations (cluster IPs, the port's protocol).
const serviceAsServed = `apiVersion: v1
kind: Service
metadata:
  name: portal
  namespace: trucking
  uid: 8a1d2c3e-4b5f-4a6b-9c7d-0e1f2a3b4c5d
  resourceVersion: "4702"
  creationTimestamp: "2026-12-05T10:00:00Z"
  labels:
    app.kubernetes.io/managed-by: meridian
    meridian.dev/tenant: trucking
    meridian.dev/region: us-east-1
    meridian.dev/app: portal
  annotations:
    meridian.dev/placement: trucking/us-east-1/portal
    meridian.dev/revision: 0123456789abcdef0123456789abcdef01234567
  managedFields:
  - manager: meridian
    operation: Apply
    apiVersion: v1
    time: "2026-12-05T10:00:00Z"
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata:
        f:annotations: {f:meridian.dev/placement: {}, f:meridian.dev/revision: {}}
        f:labels: {f:app.kubernetes.io/managed-by: {}, f:meridian.dev/app: {}, f:meridian.dev/region: {}, f:meridian.dev/tenant: {}}
      f:spec:
        f:ports: {'k:{"port":80,"protocol":"TCP"}': {.: {}, f:name: {}, f:port: {}, f:targetPort: {}}}
        f:selector: {}
        f:type: {}
spec:
  type: ClusterIP
  clusterIP: 10.0.0.117
  clusterIPs: [10.0.0.117]
  internalTrafficPolicy: Cluster
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: 9898}
  selector: {app.kubernetes.io/name: portal}
  sessionAffinity: None
status:
  loadBalancer: {}
`

// configMapAsServed is a ConfigMap of a chart's settings.
const configMapAsServed = `apiVersion: v1
kind: ConfigMap
metadata:
  name: portal-settings
  namespace: trucking
  uid: 5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f
  resourceVersion: "4700"
  creationTimestamp: "2026-12-05T10:00:00Z"
  labels:
    app.kubernetes.io/managed-by: meridian
    meridian.dev/tenant: trucking
    meridian.dev/region: us-east-1
    meridian.dev/app: portal
  annotations:
    meridian.dev/placement: trucking/us-east-1/portal
    meridian.dev/revision: 0123456789abcdef0123456789abcdef01234567
  managedFields:
  - manager: meridian
    operation: Apply
    apiVersion: v1
    time: "2026-12-05T10:00:00Z"
    fieldsType: FieldsV1
    fieldsV1:
      f:data: {f:LOG_LEVEL: {}, f:PORTAL_REGION: {}, f:PORTAL_TENANT: {}, f:UI_COLOR: {}, f:UI_MESSAGE: {}}
      f:metadata:
        f:annotations: {f:meridian.dev/placement: {}, f:meridian.dev/revision: {}}
        f:labels: {f:app.kubernetes.io/managed-by: {}, f:meridian.dev/app: {}, f:meridian.dev/region: {}, f:meridian.dev/tenant: {}}
data:
  LOG_LEVEL: info
  PORTAL_REGION: us-east-1
  PORTAL_TENANT: trucking
  UI_COLOR: '#34577c'
  UI_MESSAGE: Trucking portal, us-east-1
`

// secretAsServed is a Secret of decrypted values.
const secretAsServed = `apiVersion: v1
kind: Secret
type: Opaque
metadata:
  name: portal-db
  namespace: trucking
  uid: 1e2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b
  resourceVersion: "4701"
  creationTimestamp: "2026-12-05T10:00:00Z"
  labels:
    app.kubernetes.io/managed-by: meridian
    meridian.dev/tenant: trucking
    meridian.dev/region: us-east-1
    meridian.dev/app: portal
  annotations:
    meridian.dev/placement: trucking/us-east-1/portal
    meridian.dev/revision: 0123456789abcdef0123456789abcdef01234567
  managedFields:
  - manager: meridian
    operation: Apply
    apiVersion: v1
    time: "2026-12-05T10:00:00Z"
    fieldsType: FieldsV1
    fieldsV1:
      f:data: {f:password: {}, f:url: {}, f:username: {}}
      f:metadata:
        f:annotations: {f:meridian.dev/placement: {}, f:meridian.dev/revision: {}}
        f:labels: {f:app.kubernetes.io/managed-by: {}, f:meridian.dev/app: {}, f:meridian.dev/region: {}, f:meridian.dev/tenant: {}}
      f:type: {}
data:
  password: c3VwZXItc2VjcmV0LXBhc3N3b3JkLTEyMzQ1Njc4OTA=
  url: cG9zdGdyZXM6Ly9kYi50cnVja2luZy5zdmM6NTQzMi9wb3J0YWw=
  username: cG9ydGFs
`

// asServed are the objects above by kind.
var asServed = []struct{ kind, doc string }{
	{"Deployment", deploymentAsServed},
	{"Service", serviceAsServed},
	{"ConfigMap", configMapAsServed},
	{"Secret", secretAsServed},
}
