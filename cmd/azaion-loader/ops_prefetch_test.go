package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/azaion/loader/control"
)

// getOK is the body of GET http://listen+path, failing t unless it is 200.
func getOK(t *testing.T, listen, path string) string {
	t.Helper()
	code, body := httpGet(t, "http://"+listen+path)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return body
}

// waitPrefetchBytes waits (bounded) until the loader at listen has counted
// want prefetched bytes, and returns /status's item for folder/name.
func waitPrefetchBytes(t *testing.T, listen, folder, name string, want float64) control.PrefetchItem {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := metricValue(t, getOK(t, listen, "/metrics"), "azaion_prefetch_bytes_total")
		if got == want {
			break
		}
		if got > want || time.Now().After(deadline) {
			t.Fatalf("azaion_prefetch_bytes_total %v, want %v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var st struct {
		Prefetch struct{ Resources []control.PrefetchItem }
	}
	if err := json.Unmarshal([]byte(getOK(t, listen, "/status")), &st); err != nil {
		t.Fatal(err)
	}
	for _, it := range st.Prefetch.Resources {
		if it.Folder == folder && it.Name == name {
			return it
		}
	}
	t.Fatalf("/status lists no prefetch of %s/%s: %+v", folder, name, st.Prefetch.Resources)
	return control.PrefetchItem{}
}
