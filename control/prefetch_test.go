package control_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/resources/testbed"
)

// prefetchStatus is GET /status's prefetch list, by folder/name.
func (l *loader) prefetchStatus(t *testing.T) map[string]control.PrefetchItem {
	t.Helper()
	r := l.get(t, "/status")
	var v struct {
		Prefetch struct{ Resources []control.PrefetchItem }
	}
	if r.code != 200 || json.Unmarshal(r.body, &v) != nil {
		t.Fatalf("GET /status: %v", r)
	}
	out := map[string]control.PrefetchItem{}
	for _, it := range v.Prefetch.Resources {
		out[it.Folder+"/"+it.Name] = it
	}
	return out
}

// waitPrefetched waits until every one of keys is done or failed, and
// returns the last status.
func (l *loader) waitPrefetched(t *testing.T, keys ...string) map[string]control.PrefetchItem {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st := l.prefetchStatus(t)
		finished := 0
		for _, k := range keys {
			if s := st[k].State; s == control.PrefetchDone || s == control.PrefetchError {
				finished++
			}
		}
		if finished == len(keys) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("prefetch not finished after 3 minutes: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPrefetchFillsTheCache: POST /prefetch of two resources another loader
// uploaded (so not in this loader's cache) and one that does not exist
// answers 202 at once; /status then shows the two done with every byte
// read and the missing one in error; and with the CDN gone, /load of both
// returns their exact bytes: the cache holds them whole.
func TestPrefetchFillsTheCache(t *testing.T) {
	bed := testbed.New(t, testbed.Options{ProxyCDN: true})
	folder := bed.NewFolder(t)
	other := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	other.loginOK(t)
	sizes := map[string]int64{"a.bin": 5<<20 + 123, "b.bin": 3<<20 + 7}
	seeds := map[string]uint64{"a.bin": 31, "b.bin": 32}
	for name, size := range sizes {
		other.uploadOK(t, folder, name, content(seeds[name], size))
	}

	l := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	l.loginOK(t)
	body := fmt.Sprintf(`{"folder":%q,"names":["a.bin","b.bin"],"resources":[%q]}`, folder, folder+"/missing.bin")
	r := l.postJSON(t, "/prefetch", body)
	var queued struct{ Resources []control.PrefetchItem }
	if r.code != 202 || json.Unmarshal(r.body, &queued) != nil || len(queued.Resources) != 3 {
		t.Fatalf("POST /prefetch: %v, want 202 with the 3 resources", r)
	}
	st := l.waitPrefetched(t, folder+"/a.bin", folder+"/b.bin", folder+"/missing.bin")
	if len(st) != 3 {
		t.Errorf("status lists %d resources, want 3: %+v", len(st), st)
	}
	for name, size := range sizes {
		it := st[folder+"/"+name]
		if it.State != control.PrefetchDone || it.Bytes != size || it.Total != size || it.Error != "" {
			t.Errorf("%s: %+v, want done with %d of %d bytes", name, it, size, size)
		}
	}
	if it := st[folder+"/missing.bin"]; it.State != control.PrefetchError || !strings.Contains(it.Error, "no such resource") {
		t.Errorf("missing.bin: %+v, want state error, no such resource", it)
	}
	m := l.get(t, "/metrics")
	want := fmt.Sprintf("azaion_prefetch_bytes_total %g\n", float64(sizes["a.bin"]+sizes["b.bin"]))
	for _, w := range []string{want, `azaion_prefetch_resources{state="done"} 2`, `azaion_prefetch_resources{state="error"} 1`} {
		if !strings.Contains(string(m.body), w) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(w))
		}
	}

	bed.CDNProxy.Close()
	for name, size := range sizes {
		l.loadOK(t, folder, name, size, sumOf(seeds[name], size))
	}
}

// TestPrefetchRefusals: bad names are 400 and queue nothing, a request
// before login is 401, and an empty one 422.
func TestPrefetchRefusals(t *testing.T) {
	bed := testbed.New(t, testbed.Options{})
	folder := bed.NewFolder(t)
	l := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	good := fmt.Sprintf(`{"folder":%q,"names":["m.bin"]}`, folder)
	if r := l.postJSON(t, "/prefetch", good); r.code != 401 || r.detail() == "" {
		t.Errorf("before login: %v, want 401", r)
	}
	l.loginOK(t)
	for _, k := range []struct {
		body string
		code int
	}{
		{fmt.Sprintf(`{"folder":%q,"names":["m.bin","../x"]}`, folder), 400},
		{`{"resources":["no-slash"]}`, 400},
		{fmt.Sprintf(`{"resources":[%q]}`, folder+"/a/b"), 400},
		{`{}`, 422},
		{`{"names":["m.bin"]}`, 422},
		{`{"folder":"x","names":[]}`, 422},
	} {
		if r := l.postJSON(t, "/prefetch", k.body); r.code != k.code || r.detail() == "" {
			t.Errorf("%s: %v, want %d", k.body, r, k.code)
		}
	}
	if st := l.prefetchStatus(t); len(st) != 0 {
		t.Errorf("refused requests queued %+v", st)
	}
}
