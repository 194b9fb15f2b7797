package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/resources/cache"
)

// Config is the loader's configuration: a YAML file (--config or
// AZAION_CONFIG), then environment variables, then flags, each overriding
// the one before. The README lists every key.
type Config struct {
	APIURL          string   `yaml:"api_url"`           // AZAION_API_URL: Resource API base URL (required)
	ResourceKey     string   `yaml:"resource_key"`      // AZAION_RESOURCE_KEY: the shared resource key
	ResourceKeyFile string   `yaml:"resource_key_file"` // AZAION_RESOURCE_KEY_FILE: or a file holding it
	CacheDir        string   `yaml:"cache_dir"`         // AZAION_CACHE_DIR: local cache of big parts
	Listen          string   `yaml:"listen"`            // AZAION_LISTEN: control API address
	Mount           string   `yaml:"mount"`             // AZAION_MOUNT: mount point; empty: no mount
	Folders         []string `yaml:"folders"`           // AZAION_FOLDERS (comma-separated): folders always listed
	Prefetch        []string `yaml:"prefetch"`          // AZAION_PREFETCH (comma-separated): folder/name fetched into the cache after each login
	Hardware        string   `yaml:"hardware"`          // AZAION_HARDWARE: replaces the computed hardware line
	Email           string   `yaml:"email"`             // AZAION_EMAIL: log in at start
	EmailFile       string   `yaml:"email_file"`        // AZAION_EMAIL_FILE
	Password        string   `yaml:"password"`          // AZAION_PASSWORD
	PasswordFile    string   `yaml:"password_file"`     // AZAION_PASSWORD_FILE

	AllowOther     bool     `yaml:"allow_other"`      // AZAION_ALLOW_OTHER: let other users read the mount
	UID            *uint32  `yaml:"uid"`              // AZAION_UID: owner of the mount's files (default: the loader's)
	GID            *uint32  `yaml:"gid"`              // AZAION_GID
	ReadTimeout    Duration `yaml:"read_timeout"`     // AZAION_READ_TIMEOUT: bound on one mount read or CDN range
	APITimeout     Duration `yaml:"api_timeout"`      // AZAION_API_TIMEOUT: bound on one Resource API call
	MaxUploadBytes int64    `yaml:"max_upload_bytes"` // AZAION_MAX_UPLOAD_BYTES
	CacheMaxBytes  int64    `yaml:"cache_max_bytes"`  // AZAION_CACHE_MAX_BYTES: bound on the cache's chunks on disk; 0: none
	CDNStreams     int      `yaml:"cdn_streams"`      // AZAION_CDN_STREAMS: ranged GETs one sequential reader has in flight at most
	ControlToken   string   `yaml:"control_token"`    // AZAION_CONTROL_TOKEN: bearer token the control API wants; empty: none
	LogLevel       string   `yaml:"log_level"`        // AZAION_LOG_LEVEL: debug, info, warn, error
	LogFormat      string   `yaml:"log_format"`       // AZAION_LOG_FORMAT: text or json

	// AZAION_READ_AHEAD_BUDGET: bytes of decrypted read-ahead all readers
	// hold between them at most; 0: resources.DefaultReadAheadBudget.
	ReadAheadBudget int64 `yaml:"read_ahead_budget"`

	Unlock UnlockConfig `yaml:"unlock"`

	source string // the config file's absolute path, the mount's source; not a YAML key
}

// UnlockConfig configures the Docker image unlock.
type UnlockConfig struct {
	ImagesPath string   `yaml:"images_path"` // AZAION_IMAGES_PATH: the encrypted archive
	Images     []string `yaml:"images"`      // AZAION_IMAGES (comma-separated): images that must be loaded
	Docker     string   `yaml:"docker"`      // AZAION_DOCKER: the docker CLI
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses "30s", "2m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 30s", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

func defaults() Config {
	return Config{
		CacheDir:    "/var/cache/azaion-loader",
		Listen:      "127.0.0.1:8080",
		ReadTimeout: Duration(30 * time.Second),
		APITimeout:  Duration(30 * time.Second),
		CDNStreams:  cache.DefaultStreams,
		LogLevel:    "info",
		Unlock:      UnlockConfig{ImagesPath: "/opt/azaion/images.enc", Docker: "docker"},
	}
}

// loadConfig reads the YAML file at path (none when empty), then the
// environment, then the flags that fs has seen set.
func loadConfig(path string, env func(string) string, fs *flag.FlagSet, flags *Config) (Config, error) {
	cfg := defaults()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				// One line, not yaml's list: "line 3: field x not found …".
				err = errors.New(strings.Join(te.Errors, "; "))
			}
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, env); err != nil {
		return cfg, err
	}
	if fs != nil {
		fs.Visit(func(f *flag.Flag) { applyFlag(&cfg, flags, f.Name) })
	}
	return cfg, cfg.resolve()
}

func applyEnv(cfg *Config, env func(string) string) error {
	str := func(name string, dst *string) {
		if v := env(name); v != "" {
			*dst = v
		}
	}
	list := func(name string, dst *[]string) {
		if v := env(name); v != "" {
			*dst = splitList(v)
		}
	}
	str("AZAION_API_URL", &cfg.APIURL)
	str("AZAION_RESOURCE_KEY", &cfg.ResourceKey)
	str("AZAION_RESOURCE_KEY_FILE", &cfg.ResourceKeyFile)
	str("AZAION_CACHE_DIR", &cfg.CacheDir)
	str("AZAION_LISTEN", &cfg.Listen)
	str("AZAION_MOUNT", &cfg.Mount)
	list("AZAION_FOLDERS", &cfg.Folders)
	list("AZAION_PREFETCH", &cfg.Prefetch)
	str("AZAION_HARDWARE", &cfg.Hardware)
	str("AZAION_EMAIL", &cfg.Email)
	str("AZAION_EMAIL_FILE", &cfg.EmailFile)
	str("AZAION_PASSWORD", &cfg.Password)
	str("AZAION_PASSWORD_FILE", &cfg.PasswordFile)
	str("AZAION_LOG_LEVEL", &cfg.LogLevel)
	str("AZAION_LOG_FORMAT", &cfg.LogFormat)
	str("AZAION_IMAGES_PATH", &cfg.Unlock.ImagesPath)
	list("AZAION_IMAGES", &cfg.Unlock.Images)
	str("AZAION_DOCKER", &cfg.Unlock.Docker)
	str("AZAION_CONTROL_TOKEN", &cfg.ControlToken)
	for _, e := range []struct {
		name string
		set  func(string) error
	}{
		{"AZAION_ALLOW_OTHER", func(v string) (err error) { cfg.AllowOther, err = strconv.ParseBool(v); return }},
		{"AZAION_UID", func(v string) error { return parseID(v, &cfg.UID) }},
		{"AZAION_GID", func(v string) error { return parseID(v, &cfg.GID) }},
		{"AZAION_READ_TIMEOUT", func(v string) error { return parseDuration(v, &cfg.ReadTimeout) }},
		{"AZAION_API_TIMEOUT", func(v string) error { return parseDuration(v, &cfg.APITimeout) }},
		{"AZAION_MAX_UPLOAD_BYTES", func(v string) (err error) { cfg.MaxUploadBytes, err = strconv.ParseInt(v, 10, 64); return }},
		{"AZAION_CACHE_MAX_BYTES", func(v string) (err error) { cfg.CacheMaxBytes, err = strconv.ParseInt(v, 10, 64); return }},
		{"AZAION_CDN_STREAMS", func(v string) (err error) { cfg.CDNStreams, err = strconv.Atoi(v); return }},
		{"AZAION_READ_AHEAD_BUDGET", func(v string) (err error) { cfg.ReadAheadBudget, err = strconv.ParseInt(v, 10, 64); return }},
	} {
		if v := env(e.name); v != "" {
			if err := e.set(v); err != nil {
				return fmt.Errorf("config: %s=%q is malformed", e.name, v)
			}
		}
	}
	return nil
}

func parseID(v string, dst **uint32) error {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return err
	}
	id := uint32(n)
	*dst = &id
	return nil
}

func parseDuration(v string, dst *Duration) error {
	d, err := time.ParseDuration(v)
	*dst = Duration(d)
	return err
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// serveFlags declares the flags of serve; they land in flags and are
// applied over the file and the environment by applyFlag.
func serveFlags(fs *flag.FlagSet, flags *Config, folders *string) {
	fs.StringVar(&flags.APIURL, "api-url", "", "Resource API base `URL` (api_url, AZAION_API_URL)")
	fs.StringVar(&flags.CacheDir, "cache-dir", "", "`DIR` of the local cache of big parts (cache_dir, AZAION_CACHE_DIR)")
	fs.StringVar(&flags.Listen, "listen", "", "`ADDR` the control API listens on (listen, AZAION_LISTEN)")
	fs.StringVar(&flags.Mount, "mount", "", "mount point `DIR` of the decrypted resources (mount, AZAION_MOUNT)")
	fs.StringVar(folders, "folders", "", "comma-separated `FOLDERS` always listed (folders, AZAION_FOLDERS)")
	fs.StringVar(&flags.Hardware, "hardware", "", "hardware `LINE` that replaces the computed one (hardware, AZAION_HARDWARE)")
	fs.StringVar(&flags.ResourceKeyFile, "resource-key-file", "", "`FILE` holding the resource key (resource_key_file, AZAION_RESOURCE_KEY_FILE)")
	fs.StringVar(&flags.LogLevel, "log-level", "", "log `LEVEL`: debug, info, warn or error (log_level, AZAION_LOG_LEVEL)")
	fs.BoolVar(&flags.AllowOther, "allow-other", false, "let other users read the mount (allow_other, AZAION_ALLOW_OTHER)")
	fs.IntVar(&flags.CDNStreams, "cdn-streams", 0, "ranged `GETS` one sequential reader has in flight at most (cdn_streams, AZAION_CDN_STREAMS)")
}

func applyFlag(cfg, flags *Config, name string) {
	switch name {
	case "api-url":
		cfg.APIURL = flags.APIURL
	case "cache-dir":
		cfg.CacheDir = flags.CacheDir
	case "listen":
		cfg.Listen = flags.Listen
	case "mount":
		cfg.Mount = flags.Mount
	case "folders":
		cfg.Folders = flags.Folders
	case "hardware":
		cfg.Hardware = flags.Hardware
	case "resource-key-file":
		cfg.ResourceKeyFile = flags.ResourceKeyFile
		cfg.ResourceKey = ""
	case "log-level":
		cfg.LogLevel = flags.LogLevel
	case "allow-other":
		cfg.AllowOther = flags.AllowOther
	case "cdn-streams":
		cfg.CDNStreams = flags.CDNStreams
	}
}

// resolve reads the *_file settings and checks every setting, naming the
// first one that is missing or malformed.
func (c *Config) resolve() error {
	var err error
	if c.ResourceKey == "" && c.ResourceKeyFile != "" {
		if c.ResourceKey, err = readSecretFile("resource_key_file", c.ResourceKeyFile); err != nil {
			return err
		}
	}
	if c.Email == "" && c.EmailFile != "" {
		if c.Email, err = readSecretFile("email_file", c.EmailFile); err != nil {
			return err
		}
	}
	if c.Password == "" && c.PasswordFile != "" {
		if c.Password, err = readSecretFile("password_file", c.PasswordFile); err != nil {
			return err
		}
	}
	switch {
	case c.APIURL == "":
		return errors.New("config: api_url (AZAION_API_URL) is required")
	case !validURL(c.APIURL):
		return fmt.Errorf("config: api_url %q is not an http(s) URL", c.APIURL)
	case c.ResourceKey == "":
		return errors.New("config: resource_key or resource_key_file (AZAION_RESOURCE_KEY, AZAION_RESOURCE_KEY_FILE) is required")
	case c.CacheDir == "":
		return errors.New("config: cache_dir (AZAION_CACHE_DIR) is required")
	case c.Listen == "":
		return errors.New("config: listen (AZAION_LISTEN) is required")
	case (c.Email == "") != (c.Password == ""):
		return errors.New("config: email and password go together: set both or neither")
	case c.ReadTimeout <= 0:
		return errors.New("config: read_timeout (AZAION_READ_TIMEOUT) must be positive")
	case c.APITimeout <= 0:
		return errors.New("config: api_timeout (AZAION_API_TIMEOUT) must be positive")
	case c.MaxUploadBytes < 0:
		return errors.New("config: max_upload_bytes (AZAION_MAX_UPLOAD_BYTES) must not be negative")
	case c.CacheMaxBytes < 0:
		return errors.New("config: cache_max_bytes (AZAION_CACHE_MAX_BYTES) must not be negative")
	case c.ReadAheadBudget < 0:
		return errors.New("config: read_ahead_budget (AZAION_READ_AHEAD_BUDGET) must not be negative")
	case c.CDNStreams < 1 || c.CDNStreams > maxCDNStreams:
		return fmt.Errorf("config: cdn_streams (AZAION_CDN_STREAMS) must be 1 to %d", maxCDNStreams)
	case c.LogFormat != "" && c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("config: log_format %q: use text or json", c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if _, err := control.ParsePrefetch(c.Prefetch); err != nil {
		return fmt.Errorf("config: prefetch (AZAION_PREFETCH): %w", err)
	}
	return nil
}

// maxCDNStreams bounds cdn_streams: each stream holds a few chunk buffers.
const maxCDNStreams = 64

func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// readSecretFile reads a secret from a file, trimmed of the line end. A
// relative path is looked up in systemd's $CREDENTIALS_DIRECTORY first
// (LoadCredential=), so no secret needs to sit in a unit file.
func readSecretFile(key, path string) (string, error) {
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" && !filepath.IsAbs(path) {
		if b, err := os.ReadFile(filepath.Join(dir, path)); err == nil {
			return strings.TrimRight(string(b), "\r\n"), nil
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("config: %s: %w", key, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("config: %s: %s is empty", key, path)
	}
	return s, nil
}
