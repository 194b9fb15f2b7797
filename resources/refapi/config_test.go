package refapi_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/azaion/loader/resources/refapi"
)

func write(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "key", "file-key")
	write(t, dir, "frag.bin", "\x01\x02")
	write(t, dir, "cdn.yaml", "host: http://127.0.0.1:9000\n")
	write(t, dir, "m.small", "small")
	p := write(t, dir, "api.yaml", `
users:
  - {id: "1", email: a@example.com, password: pw, role: operator}
data_dir: data
signing_key_file: key
token_ttl: 90s
key_fragment_file: frag.bin
cdn_yaml_file: cdn.yaml
max_upload: 1000
upload_roles: [operator]
files:
  - {folder: models, name: m.small, path: m.small}
`)
	cfg, err := refapi.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	want := refapi.Config{
		Users:       []refapi.User{{ID: "1", Email: "a@example.com", Password: "pw", Role: "operator"}},
		DataDir:     filepath.Join(dir, "data"),
		SigningKey:  []byte("file-key"),
		TokenTTL:    90 * time.Second,
		KeyFragment: []byte{1, 2},
		MaxUpload:   1000,
		UploadRoles: []string{"operator"},
		Files: []refapi.File{
			{Folder: "", Name: "cdn.yaml", Data: []byte("host: http://127.0.0.1:9000\n")},
			{Folder: "models", Name: "m.small", Data: []byte("small")},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("LoadConfig =\n%+v\nwant\n%+v", cfg, want)
	}
	if _, err := refapi.New(cfg); err != nil {
		t.Fatalf("New from the loaded config: %v", err)
	}
	if got := readFile(t, filepath.Join(dir, "data", ".root", "cdn.yaml")); string(got) != "host: http://127.0.0.1:9000\n" {
		t.Fatalf("seeded cdn.yaml = %q", got)
	}

	for name, body := range map[string]string{
		"unknown key":   "data_dir: d\nsigning_keys: x\n",
		"no data dir":   "users: []\n",
		"both keys":     "data_dir: d\nsigning_key: a\nsigning_key_file: key\n",
		"missing file":  "data_dir: d\nkey_fragment_file: nope.bin\n",
		"bad duration":  "data_dir: d\ntoken_ttl: soon\n",
		"unknown field": "data_dir: d\nusers: [{id: '1', email: a, password: b, admin: true}]\n",
	} {
		if _, err := refapi.LoadConfig(write(t, dir, "bad.yaml", body)); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
}

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := refapi.LoadConfig("../../examples/resource-api.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Users) != 2 || cfg.TokenTTL != time.Hour || string(cfg.SigningKey) == "" {
		t.Fatalf("example config: %+v", cfg)
	}
}
