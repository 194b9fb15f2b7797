package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// envOf is an environment made of pairs.
func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadWith parses args as serve's flags and loads the config from path, env
// and those flags.
func loadWith(t *testing.T, path string, env func(string) string, args ...string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var flags Config
	var folders string
	serveFlags(fs, &flags, &folders)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("flags %q: %v", args, err)
	}
	flags.Folders = splitList(folders)
	return loadConfig(path, env, fs, &flags)
}

// TestConfigPrecedence: YAML < environment < flags, key by key.
func TestConfigPrecedence(t *testing.T) {
	keyFile := writeFile(t, "key", "key-from-file\n")
	yaml := writeFile(t, "loader.yaml", `
api_url: http://yaml.example:1
resource_key: key-from-yaml
cache_dir: /yaml/cache
listen: 127.0.0.1:1111
mount: /yaml/mnt
folders: [yaml1, yaml2]
hardware: "CPU: yaml."
read_timeout: 5s
api_timeout: 6s
max_upload_bytes: 1000
cdn_streams: 4
read_ahead_budget: 16777216
log_level: warn
unlock:
  images: [a:1, b:2]
`)
	cfg, err := loadWith(t, yaml, envOf())
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		APIURL: "http://yaml.example:1", ResourceKey: "key-from-yaml", CacheDir: "/yaml/cache", Listen: "127.0.0.1:1111",
		Mount: "/yaml/mnt", Folders: []string{"yaml1", "yaml2"}, Hardware: "CPU: yaml.", ReadTimeout: Duration(5 * time.Second),
		APITimeout: Duration(6 * time.Second), MaxUploadBytes: 1000, CDNStreams: 4, LogLevel: "warn", ReadAheadBudget: 16 << 20,
		Unlock: UnlockConfig{ImagesPath: "/opt/azaion/images.enc", Images: []string{"a:1", "b:2"}, Docker: "docker"},
	}
	checkConfig(t, "YAML alone", cfg, want)

	env := envOf(
		"AZAION_API_URL", "http://env.example:2",
		"AZAION_CACHE_DIR", "/env/cache",
		"AZAION_LISTEN", "127.0.0.1:2222",
		"AZAION_FOLDERS", "env1, env2,,",
		"AZAION_READ_TIMEOUT", "7s",
		"AZAION_MAX_UPLOAD_BYTES", "2000",
		"AZAION_LOG_LEVEL", "error",
		"AZAION_IMAGES", "c:3",
		"AZAION_CDN_STREAMS", "12",
		"AZAION_READ_AHEAD_BUDGET", "8388608",
	)
	cfg, err = loadWith(t, yaml, env)
	if err != nil {
		t.Fatal(err)
	}
	want.APIURL, want.CacheDir, want.Listen, want.Folders = "http://env.example:2", "/env/cache", "127.0.0.1:2222", []string{"env1", "env2"}
	want.ReadTimeout, want.MaxUploadBytes, want.LogLevel, want.Unlock.Images = Duration(7*time.Second), 2000, "error", []string{"c:3"}
	want.CDNStreams, want.ReadAheadBudget = 12, 8<<20
	checkConfig(t, "YAML and environment", cfg, want)

	cfg, err = loadWith(t, yaml, env, "--api-url", "http://flag.example:3", "--listen", "127.0.0.1:3333",
		"--folders", "flag1", "--hardware", "CPU: flag.", "--resource-key-file", keyFile, "--log-level", "debug", "--cdn-streams", "16")
	if err != nil {
		t.Fatal(err)
	}
	want.APIURL, want.Listen, want.Folders, want.Hardware = "http://flag.example:3", "127.0.0.1:3333", []string{"flag1"}, "CPU: flag."
	want.ResourceKey, want.ResourceKeyFile, want.LogLevel = "key-from-file", keyFile, "debug"
	want.CDNStreams = 16
	checkConfig(t, "YAML, environment and flags", cfg, want)

	// Nothing but the environment, and the defaults.
	cfg, err = loadWith(t, "", envOf("AZAION_API_URL", "https://api.example", "AZAION_RESOURCE_KEY_FILE", keyFile))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ResourceKey != "key-from-file" || cfg.Listen != "127.0.0.1:8080" || cfg.CacheDir != "/var/cache/azaion-loader" ||
		cfg.ReadTimeout != Duration(30*time.Second) || cfg.Mount != "" || cfg.CDNStreams != 8 {
		t.Fatalf("environment only: %+v", cfg)
	}
}

func checkConfig(t *testing.T, what string, got, want Config) {
	t.Helper()
	if got.APIURL != want.APIURL || got.ResourceKey != want.ResourceKey || got.CacheDir != want.CacheDir ||
		got.Listen != want.Listen || got.Mount != want.Mount || !slices.Equal(got.Folders, want.Folders) ||
		got.Hardware != want.Hardware || got.ReadTimeout != want.ReadTimeout || got.APITimeout != want.APITimeout ||
		got.MaxUploadBytes != want.MaxUploadBytes || got.LogLevel != want.LogLevel || got.CDNStreams != want.CDNStreams ||
		got.ReadAheadBudget != want.ReadAheadBudget ||
		!slices.Equal(got.Unlock.Images, want.Unlock.Images) || got.Unlock.ImagesPath != want.Unlock.ImagesPath {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// TestConfigErrors: a missing or malformed setting stops the start with
// one line that names it.
func TestConfigErrors(t *testing.T) {
	base := []string{"AZAION_API_URL", "http://127.0.0.1:1", "AZAION_RESOURCE_KEY", "k"}
	with := func(kv ...string) func(string) string { return envOf(append(slices.Clone(base), kv...)...) }
	for _, c := range []struct {
		name, yaml string
		env        func(string) string
		names      string // what the message must name
	}{
		{"no api_url", "", envOf("AZAION_RESOURCE_KEY", "k"), "api_url"},
		{"no resource key", "", envOf("AZAION_API_URL", "http://127.0.0.1:1"), "resource_key"},
		{"api_url not a URL", "", with("AZAION_API_URL", "127.0.0.1:1"), "api_url"},
		{"api_url ftp", "api_url: ftp://x\nresource_key: k\n", envOf(), "api_url"},
		{"resource key file missing", "", envOf("AZAION_API_URL", "http://a", "AZAION_RESOURCE_KEY_FILE", "/nonexistent/key"), "resource_key_file"},
		{"read timeout env", "", with("AZAION_READ_TIMEOUT", "soon"), "AZAION_READ_TIMEOUT"},
		{"read timeout negative", "", with("AZAION_READ_TIMEOUT", "-1s"), "read_timeout"},
		{"read timeout yaml", "read_timeout: soon\n", with(), "soon"},
		{"uid env", "", with("AZAION_UID", "root"), "AZAION_UID"},
		{"max upload env", "", with("AZAION_MAX_UPLOAD_BYTES", "1GB"), "AZAION_MAX_UPLOAD_BYTES"},
		{"allow other env", "", with("AZAION_ALLOW_OTHER", "perhaps"), "AZAION_ALLOW_OTHER"},
		{"cdn streams env", "", with("AZAION_CDN_STREAMS", "many"), "AZAION_CDN_STREAMS"},
		{"cdn streams zero", "cdn_streams: 0\n", with(), "cdn_streams"},
		{"read-ahead budget negative", "", with("AZAION_READ_AHEAD_BUDGET", "-1"), "read_ahead_budget"},
		{"cdn streams too many", "", with("AZAION_CDN_STREAMS", "65"), "cdn_streams"},
		{"log level", "", with("AZAION_LOG_LEVEL", "loud"), "loud"},
		{"log format", "log_format: xml\n", with(), "log_format"},
		{"email without password", "", with("AZAION_EMAIL", "a@b"), "password"},
		{"unknown key", "api_urll: http://x\n", with(), "api_urll"},
		{"bad yaml", "api_url: [\n", with(), "loader.yaml"},
	} {
		path := ""
		if c.yaml != "" {
			path = writeFile(t, "loader.yaml", c.yaml)
		}
		_, err := loadWith(t, path, c.env)
		if err == nil {
			t.Errorf("%s: config loaded", c.name)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, c.names) || strings.Contains(msg, "\n") {
			t.Errorf("%s: %q, want one line naming %s", c.name, msg, c.names)
		}
	}
	if _, err := loadWith(t, "/nonexistent/loader.yaml", with()); err == nil || !strings.Contains(err.Error(), "/nonexistent/loader.yaml") {
		t.Errorf("missing config file: %v", err)
	}
}

// TestExampleConfig: examples/loader.yaml, which the README runs, loads.
func TestExampleConfig(t *testing.T) {
	cfg, err := loadWith(t, "../../examples/loader.yaml", envOf())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APIURL != "http://127.0.0.1:8081" || cfg.Listen != "127.0.0.1:8080" || cfg.ResourceKey == "" || cfg.Mount != "" {
		t.Fatalf("examples/loader.yaml: %+v", cfg)
	}
}

// TestConfigPrefetch: the prefetch list comes from YAML or, comma-separated,
// from AZAION_PREFETCH; an entry that is not folder/name is refused at
// start, naming the key.
func TestConfigPrefetch(t *testing.T) {
	base := "api_url: http://x.example\nresource_key: k\ncache_dir: /c\nlisten: 127.0.0.1:1\n"
	cfg, err := loadWith(t, writeFile(t, "a.yaml", base+"prefetch: [models/a.onnx, other/b.bin]\n"), envOf())
	if err != nil || !slices.Equal(cfg.Prefetch, []string{"models/a.onnx", "other/b.bin"}) {
		t.Errorf("YAML: %q, %v", cfg.Prefetch, err)
	}
	cfg, err = loadWith(t, writeFile(t, "b.yaml", base+"prefetch: [models/a.onnx]\n"), envOf("AZAION_PREFETCH", "m/x.bin, m/y.bin"))
	if err != nil || !slices.Equal(cfg.Prefetch, []string{"m/x.bin", "m/y.bin"}) {
		t.Errorf("environment: %q, %v", cfg.Prefetch, err)
	}
	for _, bad := range []string{"no-slash", "models/a/b", "models/../x", "/a.onnx"} {
		_, err := loadWith(t, writeFile(t, "c.yaml", base), envOf("AZAION_PREFETCH", bad))
		if err == nil || !strings.Contains(err.Error(), "prefetch (AZAION_PREFETCH)") {
			t.Errorf("AZAION_PREFETCH=%q: %v, want an error naming prefetch", bad, err)
		}
	}
}
