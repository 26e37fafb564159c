// Package live keeps a region's objects that Meridian applied in memory, as watches
// of the region's API server see them, so that health is read without a request
// and followed between passes.
//
// One Cache per region holds one informer per kind, started the first time a unit
// of that kind is asked about, and restricted by label selector to the objects
// Meridian applied (app.kubernetes.io/managed-by=meridian, which render puts on
// every object of every unit). Each object is trimmed before it is stored (see
// Trim): what kstatus reads (metadata, the scalar fields of spec it checks,
// status) is kept; what no reader of the cache needs and what makes objects large
// (managed fields, the last-applied annotation, pod templates, CRD schemas, the
// data of ConfigMaps and Secrets) is dropped. Secrets' values are never held. Of
// the managed fields, only a fingerprint of Meridian's own apply entry is kept
// (AppliedFields, WatchedFields): drift checks compare it with the one Meridian's
// last apply of the object left.
//
// What is left is held as JSON, an *Object, beside the few fields read without
// decoding it (name, namespace, resourceVersion, the fingerprint): a decoded
// object, a tree of maps, takes three to four times as much heap, and a region
// holds thousands. Get decodes a fresh copy on each call, for health; Lookup
// decodes nothing, for drift, which reads only the resourceVersion and the
// fingerprint of every object on every pass.
//
// The cache never answers for a kind it cannot watch: a kind whose watch has not
// synced or keeps failing gives an *UnavailableError, and the caller reads the API
// server instead. An object absent from a synced cache does not exist (or no
// longer carries Meridian's label).
package live
