package registry

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// benchRegistry opens a registry on disk holding n records.
func benchRegistry(b *testing.B, n int) *Registry {
	b.Helper()
	r := openT(b, b.TempDir(), Options{FlushInterval: 1 << 40})
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = rec(fmt.Sprintf("user-%06d", i), 18790+i)
		recs[i].ContainerID = fmt.Sprintf("%064x", i) // as long as a real one
		recs[i].ConfigHash = fmt.Sprintf("%064x", i*7)
	}
	if err := r.Put(recs...); err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkPersist is the time of one durable change (a Put that changes
// one record's state) at 100, 1,000 and 10,000 records: encode, write,
// fsync, rename, directory fsync.
func BenchmarkPersist(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			r := benchRegistry(b, n)
			x, _ := r.Get("user-000042")
			fi, err := os.Stat(filepath.Join(r.dir, FileName))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				x.State = [2]string{"running", "stopped"}[i%2]
				if err := r.Put(x); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(fi.Size()), "file-bytes")
		})
	}
}

// BenchmarkTouch is the hot path: a touch of one record among 10,000,
// from one goroutine (serial) and from every CPU at once on different
// records (parallel).
func BenchmarkTouch(b *testing.B) {
	r := benchRegistry(b, 10000)
	var at atomic.Int64
	at.Store(1_800_000_000_000)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.Touch("user-004242", at.Add(1))
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var w atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			id := fmt.Sprintf("user-%06d", w.Add(1)*97)
			for pb.Next() {
				r.Touch(id, at.Add(1))
			}
		})
	})
}

// BenchmarkGet reads one record among 10,000.
func BenchmarkGet(b *testing.B) {
	r := benchRegistry(b, 10000)
	b.ReportAllocs()
	for b.Loop() {
		r.Get("user-004242")
	}
}

// BenchmarkOpen loads a registry of 10,000 records.
func BenchmarkOpen(b *testing.B) {
	r := benchRegistry(b, 10000)
	dir := r.dir
	r.Close()
	b.ReportAllocs()
	for b.Loop() {
		r, err := Open(dir, Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}
