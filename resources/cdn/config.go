package cdn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is cdn.yaml (PROTOCOL §4). It holds secrets: it formats and logs
// with the secrets redacted.
type Config struct {
	// Host is the S3 endpoint URL, http or https; addressing is path-style.
	Host string `yaml:"host"`
	// Region defaults to us-east-1.
	Region string `yaml:"region"`
	// Bucket, when set, holds every folder as a key prefix; when empty each
	// folder is a bucket of its own name.
	Bucket                 string `yaml:"bucket"`
	DownloaderAccessKey    string `yaml:"downloader_access_key"`
	DownloaderAccessSecret string `yaml:"downloader_access_secret"`
	UploaderAccessKey      string `yaml:"uploader_access_key"`
	UploaderAccessSecret   string `yaml:"uploader_access_secret"`
}

// DefaultRegion is the region when cdn.yaml names none.
const DefaultRegion = "us-east-1"

// ParseConfig decodes cdn.yaml strictly (unknown keys are errors), applies
// the default region and checks it. Its errors wrap ErrConfig and never
// repeat a value from the file.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("%w: cdn.yaml is empty", ErrConfig)
		}
		return Config{}, fmt.Errorf("%w: cdn.yaml: %s", ErrConfig, describe(err))
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks a Config built by hand or parsed. Its errors wrap
// ErrConfig and never repeat a secret.
func (c Config) Validate() error {
	if c.Host == "" {
		return fmt.Errorf("%w: host is required", ErrConfig)
	}
	u, err := url.Parse(c.Host)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: host must be an http:// or https:// URL", ErrConfig)
	}
	if u.User != nil {
		return fmt.Errorf("%w: host must not hold credentials", ErrConfig)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w: host must be a bare endpoint URL, without path or query", ErrConfig)
	}
	if c.Bucket != "" && !validBucket(c.Bucket) {
		return fmt.Errorf("%w: bucket %q is not a valid S3 bucket name", ErrConfig, clip(c.Bucket))
	}
	if c.DownloaderAccessKey == "" || c.DownloaderAccessSecret == "" {
		return fmt.Errorf("%w: downloader_access_key and downloader_access_secret are required", ErrConfig)
	}
	if (c.UploaderAccessKey == "") != (c.UploaderAccessSecret == "") {
		return fmt.Errorf("%w: uploader_access_key and uploader_access_secret go together", ErrConfig)
	}
	return nil
}

// describe says where cdn.yaml went wrong by line number and kind only.
// yaml.v3's messages quote the text they stumbled on (a value, a key, a
// tag), and any of it could be a secret typed in the wrong place, so none
// of their words are repeated.
func describe(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return "not valid YAML" + at(lineOf(err.Error()))
	}
	parts := make([]string, 0, len(te.Errors))
	for i, e := range te.Errors {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(te.Errors)-i))
			break
		}
		kind := "a value of the wrong type"
		if strings.Contains(e, " not found in type ") {
			kind = "an unknown key"
		}
		parts = append(parts, kind+at(lineOf(e)))
	}
	return strings.Join(parts, "; ")
}

// lineRe finds yaml.v3's "line N" (its numbers are 1-based).
var lineRe = regexp.MustCompile(`\bline ([0-9]{1,9})\b`)

func lineOf(msg string) string {
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return ""
}

func at(line string) string {
	if line == "" {
		return ""
	}
	return " at line " + line
}

const redacted = "[redacted]"

// String shows the config with its secrets redacted.
func (c Config) String() string {
	return fmt.Sprintf("cdn.Config{Host:%s Region:%s Bucket:%s DownloaderAccessKey:%s UploaderAccessKey:%s secrets:%s}",
		c.Host, c.Region, c.Bucket, c.DownloaderAccessKey, c.UploaderAccessKey, redacted)
}

// GoString redacts under %#v.
func (c Config) GoString() string { return c.String() }

// LogValue redacts under log/slog.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host),
		slog.String("region", c.Region),
		slog.String("bucket", c.Bucket),
		slog.String("downloader_access_key", c.DownloaderAccessKey),
		slog.String("uploader_access_key", c.UploaderAccessKey),
	)
}

// YAML is c as cdn.yaml, secrets included: what a Resource API serves in
// the empty folder (PROTOCOL §4). ParseConfig reads it back to c.
func (c Config) YAML() []byte {
	out, err := yaml.Marshal(struct {
		Host                   string `yaml:"host"`
		Region                 string `yaml:"region,omitempty"`
		Bucket                 string `yaml:"bucket,omitempty"`
		DownloaderAccessKey    string `yaml:"downloader_access_key"`
		DownloaderAccessSecret string `yaml:"downloader_access_secret"`
		UploaderAccessKey      string `yaml:"uploader_access_key,omitempty"`
		UploaderAccessSecret   string `yaml:"uploader_access_secret,omitempty"`
	}(c))
	if err != nil {
		panic(err) // a struct of strings always marshals
	}
	return out
}
