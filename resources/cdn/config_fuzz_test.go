package cdn_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/azaion/loader/resources/cdn"
)

// FuzzParseConfig: cdn.yaml from the Resource API is decrypted but still
// untrusted input. ParseConfig never panics, fails only with ErrConfig and
// never quotes a secret in its error; what it accepts validates, names a
// region, and formats with its secrets redacted.
//
//	go test -run '^$' -fuzz '^FuzzParseConfig$' -fuzztime 1m ./resources/cdn/
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodYAML))
	f.Add([]byte(""))
	f.Add([]byte("host: https://cdn.example\ndownloader_access_key: d\ndownloader_access_secret: x\n"))
	f.Add([]byte("host: [1, 2]\ndownloader_access_secret: S3CRET-DOWN\n"))
	f.Add([]byte("host: http://u:p@h\nbucket: ../x\ndownloader_access_key: d\ndownloader_access_secret: S3CRET-DOWN\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("host: http://h\nunknown_key: S3CRET-DOWN\n"))
	f.Add([]byte("!00000000S3CRET00 x\n"))
	f.Add([]byte("host: !S3CRET-DOWN [1]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := cdn.ParseConfig(data)
		if err != nil {
			if !errors.Is(err, cdn.ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			// A value typed under a wrong key must not come back in the
			// error: the seeds put S3CRET-DOWN in such places.
			if strings.Contains(err.Error(), "S3CRET") {
				t.Fatalf("error quotes a secret: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted a config that does not validate: %v", err)
		}
		if c.Region == "" {
			t.Fatal("accepted a config without a region")
		}
		for _, s := range []string{c.DownloaderAccessSecret, c.UploaderAccessSecret} {
			if len(s) < 4 {
				continue // too short to tell from the other fields
			}
			for _, out := range []string{c.String(), fmt.Sprintf("%v %+v %#v", c, c, c)} {
				if strings.Contains(out, s) && !strings.Contains(c.Host+c.Region+c.Bucket+c.DownloaderAccessKey+c.UploaderAccessKey, s) {
					t.Fatalf("formatting shows a secret: %s", out)
				}
			}
		}
	})
}
