package cdn_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/azaion/loader/resources/cdn"
)

// TestPayloadSigning: a PUT to a CDN on loopback over http goes with
// UNSIGNED-PAYLOAD; to any other host over http, with the SHA-256 of its
// body in its signature. The hosts all dial one local server that records
// the header.
func TestPayloadSigning(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("X-Amz-Content-Sha256")
		w.Header().Set("ETag", `"e"`)
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	dialServer := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Listener.Addr().String())
		},
	}}
	body := "some ciphertext"
	sum := sha256.Sum256([]byte(body))
	signed := hex.EncodeToString(sum[:])
	for host, want := range map[string]string{
		"127.0.0.1":       "UNSIGNED-PAYLOAD",
		"localhost":       "UNSIGNED-PAYLOAD",
		"[::1]":           "UNSIGNED-PAYLOAD",
		"cdn.example.com": signed,
		"10.0.0.7":        signed,
	} {
		c, err := cdn.New(cdn.Config{
			Host: "http://" + host + ":" + strconv.Itoa(port), Bucket: "models",
			DownloaderAccessKey: "d", DownloaderAccessSecret: "ds", UploaderAccessKey: "u", UploaderAccessSecret: "us",
		}, cdn.Options{HTTPClient: dialServer})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := c.Put(ctx, "f", "m", strings.NewReader(body)); err != nil {
			t.Fatalf("%s: put: %v", host, err)
		}
		cancel()
		if h := <-got; h != want {
			t.Errorf("%s: X-Amz-Content-Sha256 %q, want %q", host, h, want)
		}
	}
}
