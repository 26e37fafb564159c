package render

import (
	"hash/maphash"
	"math"
	"reflect"
	"slices"
	"unsafe"
)

// interner makes equal subtrees of rendered objects one value in memory
// (hash-consing): a tenant's app renders nearly the same objects in each of its
// regions, and tenants that share a chart render the same container specs, probes
// and selectors, so the render cache holds each of them once.
//
// Values are interned bottom-up: a map or slice is replaced by an interned one
// when their elements are identical, its own elements having been interned first,
// so comparing two candidates costs one level of their trees, not all of it. A
// hash collision only forgoes sharing. Interned values are shared, and so never
// written: the cache's entries are read-only already.
//
// An interner is not safe for concurrent use.
type interner struct {
	seed  maphash.Seed
	table map[uint64]any // by hash: an interned map[string]any or []any
}

func newInterner() *interner {
	return &interner{seed: maphash.MakeSeed(), table: map[uint64]any{}}
}

// Tags keep values of different kinds apart in hashes.
const (
	tagNil uint64 = iota + 1
	tagString
	tagBool
	tagInt64
	tagFloat64
	tagMap
	tagSlice
	tagOther
)

// intern returns v with its maps and slices replaced by interned equal ones. It
// writes the interned elements into v's own maps and slices, so v must not be
// shared yet.
func (in *interner) intern(v any) any {
	v, _ = in.walk(v, true)
	return v
}

// register records v's maps and slices, which are interned already, for later
// values to share, without writing into them: they may be read concurrently.
func (in *interner) register(v any) {
	in.walk(v, false)
}

// walk returns v's interned value and its hash, replacing v's elements by their
// interned values when write is set.
func (in *interner) walk(v any, write bool) (any, uint64) {
	switch v := v.(type) {
	case map[string]any:
		if v == nil { // encodes as null, not {}
			return v, tagNil
		}
		var sum uint64 // of the entries' hashes: independent of the maps' order
		for k, e := range v {
			e, h := in.walk(e, write)
			if write {
				v[k] = e
			}
			sum += mix(maphash.String(in.seed, k), h)
		}
		h := mix(tagMap, sum)
		return in.lookup(v, h), h
	case []any:
		if v == nil { // encodes as null, not []
			return v, tagNil
		}
		h := tagSlice
		for i, e := range v {
			e, eh := in.walk(e, write)
			if write {
				v[i] = e
			}
			h = mix(h, eh)
		}
		return in.lookup(slices.Clip(v), h), h // clipped: an append to it must copy
	default:
		return v, in.scalar(v)
	}
}

// lookup returns the interned value equal to v, v itself after recording it when
// there is none, or v alone when another value has its hash.
func (in *interner) lookup(v any, h uint64) any {
	got, ok := in.table[h]
	if !ok {
		in.table[h] = v
		return v
	}
	if sameElements(got, v) {
		return got
	}
	return v
}

// scalar hashes a JSON scalar; int64 and float64 differ, as do 1 and "1".
func (in *interner) scalar(v any) uint64 {
	switch v := v.(type) {
	case nil:
		return tagNil
	case string:
		return mix(tagString, maphash.String(in.seed, v))
	case bool:
		if v {
			return mix(tagBool, 1)
		}
		return mix(tagBool, 0)
	case int64:
		return mix(tagInt64, uint64(v))
	case float64:
		return mix(tagFloat64, math.Float64bits(v))
	}
	return tagOther // not a JSON value: identical never holds for it, nothing is shared
}

// sameElements reports whether a and b, maps or slices of interned elements, have
// identical elements.
func sameElements(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, e := range a {
			f, ok := b[k]
			if !ok || !identical(e, f) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !identical(a[i], b[i]) {
				return false
			}
		}
		return true
	}
	return false
}

// identical reports whether two interned values are the same: the same map or
// slice, or equal JSON scalars of the same type.
func identical(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		return ok && (a == nil) == (b == nil) && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
	case []any:
		b, ok := b.([]any)
		return ok && (a == nil) == (b == nil) && len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
	case nil, string, bool, int64, float64:
		return a == b // an interface comparison: of the types, then the values
	}
	return false
}

// mix combines two hashes into one (a multiply and the finalizer of MurmurHash3).
func mix(a, b uint64) uint64 {
	h := a ^ (b * 0x9e3779b97f4a7c15)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
