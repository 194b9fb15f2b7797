package cdn_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/azaion/loader/resources/cdn"
)

const goodYAML = `host: http://127.0.0.1:9000
bucket: azaion
downloader_access_key: down
downloader_access_secret: S3CRET-DOWN
uploader_access_key: up
uploader_access_secret: S3CRET-UP
`

func TestParseConfigGood(t *testing.T) {
	c, err := cdn.ParseConfig([]byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	want := cdn.Config{Host: "http://127.0.0.1:9000", Region: "us-east-1", Bucket: "azaion",
		DownloaderAccessKey: "down", DownloaderAccessSecret: "S3CRET-DOWN",
		UploaderAccessKey: "up", UploaderAccessSecret: "S3CRET-UP"}
	if c != want {
		t.Fatalf("got %+v", c) // %+v goes through String: redacted
	}
	c, err = cdn.ParseConfig([]byte("host: https://cdn.example\nregion: eu-central-1\ndownloader_access_key: d\ndownloader_access_secret: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "eu-central-1" || c.Bucket != "" || c.UploaderAccessKey != "" {
		t.Fatalf("got %v", c)
	}
}

func TestParseConfigBad(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"", "cdn: bad config: cdn.yaml is empty"},
		{"region: x\ndownloader_access_key: d\ndownloader_access_secret: S3CRET\n", "cdn: bad config: host is required"},
		{"host: ftp://h\ndownloader_access_key: d\ndownloader_access_secret: S3CRET\n", "cdn: bad config: host must be an http:// or https:// URL"},
		{"host: 127.0.0.1:9000\ndownloader_access_key: d\ndownloader_access_secret: S3CRET\n", "cdn: bad config: host must be an http:// or https:// URL"},
		{"host: http://u:S3CRET@h\ndownloader_access_key: d\ndownloader_access_secret: x\n", "cdn: bad config: host must not hold credentials"},
		{"host: http://h/path\ndownloader_access_key: d\ndownloader_access_secret: S3CRET\n", "cdn: bad config: host must be a bare endpoint URL, without path or query"},
		{"host: http://h\nbucket: Bad_Bucket\ndownloader_access_key: d\ndownloader_access_secret: S3CRET\n", `cdn: bad config: bucket "Bad_Bucket" is not a valid S3 bucket name`},
		{"host: http://h\ndownloader_access_key: d\n", "cdn: bad config: downloader_access_key and downloader_access_secret are required"},
		{"host: http://h\ndownloader_access_key: d\ndownloader_access_secret: S3CRET\nuploader_access_key: u\n", "cdn: bad config: uploader_access_key and uploader_access_secret go together"},
		{"host: http://h\ndownloader_access_key: d\ndownloader_access_secret: S3CRET\nsecret_key: S3CRET\n", "cdn: bad config: cdn.yaml: an unknown key at line 4"},
		{"host: http://h\ndownloader_access_secret: [S3CRET, x]\n", "cdn: bad config: cdn.yaml: a value of the wrong type at line 2"},
		{"host: http://h\ndownloader_access_secret: !!int S3CRET\n", "cdn: bad config: cdn.yaml: not valid YAML"},
		{"S3CRET\n", "cdn: bad config: cdn.yaml: a value of the wrong type at line 1"},
		{"host: http://h\ndownloader_access_secret: S3CRET: x\n", "cdn: bad config: cdn.yaml: not valid YAML at line 2"},
		{"!S3CRET-DOWN x\n", "cdn: bad config: cdn.yaml: a value of the wrong type at line 1"},
		{"host: !S3CRET-DOWN [x]\nfoo: !S3CRET-DOWN 1\nS3CRET: 1\nS3CRET-DOWN: 2\nx: 3\n", "cdn: bad config: cdn.yaml: a value of the wrong type at line 1; an unknown key at line 2; an unknown key at line 3; and 2 more"},
	} {
		_, err := cdn.ParseConfig([]byte(tc.yaml))
		if err == nil || err.Error() != tc.want {
			t.Errorf("ParseConfig(%q):\n got %v\nwant %s", tc.yaml, err, tc.want)
			continue
		}
		if !errors.Is(err, cdn.ErrConfig) {
			t.Errorf("%v: not ErrConfig", err)
		}
		if strings.Contains(err.Error(), "S3CRET") {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}

func TestConfigRedacts(t *testing.T) {
	c, err := cdn.ParseConfig([]byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cdn", "config", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), logged.String()} {
		if strings.Contains(s, "S3CRET") {
			t.Errorf("secret shows: %s", s)
		}
		if !strings.Contains(s, "down") {
			t.Errorf("access key should show: %s", s)
		}
	}
}

// TestConfigYAMLRoundTrip: what YAML writes, ParseConfig reads back whole,
// with or without a bucket and uploader keys, and with values YAML would
// otherwise take for other types.
func TestConfigYAMLRoundTrip(t *testing.T) {
	for _, c := range []cdn.Config{
		{Host: "http://127.0.0.1:9000", Region: "us-east-1", DownloaderAccessKey: "d", DownloaderAccessSecret: "s: #x"},
		{Host: "https://cdn.example", Region: "eu-west-1", Bucket: "azaion", DownloaderAccessKey: "true",
			DownloaderAccessSecret: "0123", UploaderAccessKey: "u", UploaderAccessSecret: "'\"\n"},
	} {
		got, err := cdn.ParseConfig(c.YAML())
		if err != nil || got != c {
			t.Errorf("ParseConfig(YAML()) = %v, %v; want %v", got, err, c)
		}
	}
}
