package control_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/resources/testbed"
)

// TestLoginsOfTwoUsersDoNotTearLoads: while two users log in by turns,
// 30 concurrent /loads each answer 200 with the exact bytes, or a clean
// 401; never a 502 from one user's small part decrypted with the other's
// key. Before sessions were swapped whole, 1 to 11 of 30 answered 502.
func TestLoginsOfTwoUsersDoNotTearLoads(t *testing.T) {
	bed := testbed.New(t, testbed.Options{})
	l := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	l.loginOK(t)
	folder := bed.NewFolder(t)
	const size = 64 << 10
	sums := map[string][32]byte{}
	for i, name := range []string{"a.bin", "b.bin"} {
		l.uploadOK(t, folder, name, content(uint64(40+i), size))
		sums[name] = sumOf(uint64(40+i), size)
	}
	users := [][2]string{{bed.Email, bed.Password}, {"other@azaion.test", "other-password"}}

	stop := make(chan struct{})
	var logins atomic.Int64
	var wg sync.WaitGroup
	loginErrs := make(chan string, 2)
	for i := range 2 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				u := users[(i+n)%2]
				b, _ := json.Marshal(map[string]string{"email": u[0], "password": u[1]})
				resp, err := client.Post(l.url+"/login", "application/json", bytes.NewReader(b))
				if err != nil {
					loginErrs <- err.Error()
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					loginErrs <- fmt.Sprintf("login %s: %d", u[0], resp.StatusCode)
					return
				}
				logins.Add(1)
			}
		})
	}

	var ok, unauthorized atomic.Int64
	bad := make(chan string, 30)
	var loads sync.WaitGroup
	deadline := time.Now().Add(4 * time.Second)
	for i := range 30 {
		loads.Go(func() {
			name := []string{"a.bin", "b.bin"}[i%2]
			for time.Now().Before(deadline) {
				b, _ := json.Marshal(map[string]string{"folder": folder, "filename": name})
				resp, err := client.Post(l.url+"/load/"+name, "application/json", bytes.NewReader(b))
				if err != nil {
					bad <- err.Error()
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					bad <- fmt.Sprintf("load %s: %d, body broke off: %v", name, resp.StatusCode, err)
					return
				case resp.StatusCode == http.StatusUnauthorized:
					unauthorized.Add(1)
				case resp.StatusCode != 200:
					bad <- fmt.Sprintf("load %s: %d %s", name, resp.StatusCode, body)
					return
				case sha256.Sum256(body) != sums[name]:
					bad <- fmt.Sprintf("load %s: 200 with %d bytes that are not the resource", name, len(body))
					return
				default:
					ok.Add(1)
				}
			}
		})
	}
	loads.Wait()
	close(stop)
	wg.Wait()
	close(bad)
	close(loginErrs)
	for e := range loginErrs {
		t.Error(e)
	}
	n := 0
	for e := range bad {
		if n++; n <= 5 {
			t.Error(e)
		}
	}
	if n > 0 {
		t.Errorf("%d of 30 load loops failed (%d loads fine, %d logins meanwhile)", n, ok.Load(), logins.Load())
	}
	if ok.Load() < 30 || logins.Load() < 10 {
		t.Fatalf("%d loads answered 200 and %d logins during them: too few for the test to tell", ok.Load(), logins.Load())
	}
	t.Logf("%d loads 200, %d 401, %d logins", ok.Load(), unauthorized.Load(), logins.Load())
}
