package cdn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"regexp"

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
		return Config{}, fmt.Errorf("%w: cdn.yaml: %s", ErrConfig, scrub(err.Error()))
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

// backticked is how yaml.v3 quotes values in its errors.
var backticked = regexp.MustCompile("`[^`]*`")

// scrub drops the values yaml.v3 quotes in an error message, which could be
// a secret typed in the wrong place.
func scrub(msg string) string {
	msg = unknownField.ReplaceAllString(msg, "an unknown key (name hidden)")
	return backticked.ReplaceAllString(msg, "(value hidden)")
}

// unknownField is yaml's "field X not found in type T": a secret pasted on
// a line of its own reads as a key, so the name is not repeated either.
var unknownField = regexp.MustCompile(`field .* not found in type \S+`)

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
