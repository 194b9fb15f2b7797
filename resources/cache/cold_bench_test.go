package cache_test

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/azaion/loader/resources/cdn"
	"github.com/azaion/loader/resources/testbed"
)

// BenchmarkColdSequential is P3 in-process: a resource of $COLD_MB MiB
// (default 256) read in order in 1 MiB reads through a fresh Store with an
// empty cache, against one GET of its big part to io.Discard with the same
// S3 client, alternately, three times each; it reports the medians and
// their ratio. MinIO's files stay in the page cache, unlike in make bench.
//
//	go test -run '^$' -bench ColdSequential -benchtime 1x ./resources/cache/
func BenchmarkColdSequential(b *testing.B) {
	size := 256 << 20
	if s, err := strconv.Atoi(os.Getenv("COLD_MB")); err == nil && s > 0 {
		size = s << 20
	}
	bed := testbed.New(b, testbed.Options{ProxyCDN: os.Getenv("COLD_PROXY") != ""})
	folder := bed.NewFolder(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	up := bed.LoggedIn(b, testbed.StoreOptions{Timeout: 30 * time.Second})
	src := rand.NewChaCha8([32]byte{7})
	if _, err := up.Upload(ctx, folder, "m.bin", io.LimitReader(src, int64(size))); err != nil {
		b.Fatal(err)
	}
	bigLen := bed.BigObject(b, folder, "m.bin")
	client, err := cdn.New(bed.CDN, cdn.Options{})
	if err != nil {
		b.Fatal(err)
	}
	get := func() float64 {
		start := time.Now()
		r, err := client.Stream(ctx, folder, "m.bin", "", 0, bigLen)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, r)
		r.Close()
		if err != nil || n != bigLen {
			b.Fatalf("GET: %d of %d bytes, %v", n, bigLen, err)
		}
		return float64(n) / time.Since(start).Seconds() / 1e9
	}
	load := func() float64 {
		s := bed.LoggedIn(b, testbed.StoreOptions{Timeout: 30 * time.Second})
		start := time.Now()
		res, err := s.Open(ctx, folder, "m.bin")
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 1<<20)
		var n int64
		for n < res.Size() {
			m, err := res.ReadAt(ctx, buf, n)
			n += int64(m)
			if err != nil && n < res.Size() {
				b.Fatalf("read at %d: %v", n, err)
			}
		}
		if bed.CDNProxy != nil {
			b.Logf("%d connections to the CDN so far", bed.CDNProxy.Conns())
		}
		return float64(bigLen) / time.Since(start).Seconds() / 1e9
	}
	var gets, loads []float64
	b.ResetTimer()
	for range 3 {
		gets = append(gets, get())
		loads = append(loads, load())
	}
	b.StopTimer()
	med := func(v []float64) float64 { v = slices.Clone(v); slices.Sort(v); return v[len(v)/2] }
	b.Logf("%d MiB: cold read %.3f GB/s %v, one GET %.3f GB/s %v", size>>20, med(loads), loads, med(gets), gets)
	b.ReportMetric(med(loads), "cold-GB/s")
	b.ReportMetric(med(gets), "get-GB/s")
	b.ReportMetric(med(loads)/med(gets), "ratio")
}
