package live

import (
	"runtime"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// BenchmarkWatchedObject measures what a watch holds of each object it stores,
// by kind, as the informer makes it: the object as served is decoded (as the
// watch decodes it) and transformed, b.N times, and every result is kept.
//
//   - unstructured: trim's output, what the watches held before Object (the
//     decoded tree of maps);
//   - object: Trim's, the *Object they hold now;
//   - get: Object.Unstructured, the decode of each Cache.Get.
//
// heap-B/object is the live heap the kept results hold, each (HeapAlloc after a
// collection, after the loop less before it); ns/op of the first two is a decode
// and a transform. Run with a fixed count, as many objects as a fleet of 3,000
// placements holds:
//
//	go test -run '^$' -bench BenchmarkWatchedObject -benchtime 20000x ./reconciler/live/
func BenchmarkWatchedObject(b *testing.B) {
	transforms := []struct {
		name      string
		transform func(*unstructured.Unstructured) (any, error)
	}{
		{"unstructured", func(u *unstructured.Unstructured) (any, error) { return trim(u), nil }},
		{"object", func(u *unstructured.Unstructured) (any, error) { return Trim(u) }},
	}
	for _, fx := range asServed {
		served, err := yaml.YAMLToJSON([]byte(fx.doc))
		if err != nil {
			b.Fatal(err)
		}
		decode := func(b *testing.B) *unstructured.Unstructured {
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(served); err != nil {
				b.Fatal(err)
			}
			return u
		}
		for _, tr := range transforms {
			b.Run(fx.kind+"/"+tr.name, func(b *testing.B) {
				kept := make([]any, b.N)
				before := liveHeap()
				b.ResetTimer()
				for i := range kept {
					out, err := tr.transform(decode(b))
					if err != nil {
						b.Fatal(err)
					}
					kept[i] = out
				}
				b.StopTimer()
				b.ReportMetric(float64(liveHeap()-before)/float64(b.N), "heap-B/object")
				runtime.KeepAlive(kept)
			})
		}
		b.Run(fx.kind+"/get", func(b *testing.B) {
			out, err := Trim(decode(b))
			if err != nil {
				b.Fatal(err)
			}
			o := out.(*Object)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := o.Unstructured(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// liveHeap is the heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
