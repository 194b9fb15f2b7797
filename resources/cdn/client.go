// Package cdn owns the S3 side of PROTOCOL §4: cdn.yaml, the layout of big
// parts in buckets, and the reads (ranged GETs pinned to an ETag), writes
// (streamed multipart uploads) and listings the loader makes. It deals only
// in ciphertext bytes.
package cdn

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Options tune a Client. Zero values take the defaults.
type Options struct {
	// HTTPClient carries every request. The default dials with a timeout,
	// bounds the wait for response headers and ignores proxy variables.
	HTTPClient *http.Client
	// RangeTimeout bounds each ranged GET attempt; default 30s.
	RangeTimeout time.Duration
	// CallTimeout bounds Stat, List and Folders, and each part of an upload;
	// default 30s for the first three and 4 × that for a part.
	CallTimeout time.Duration
	// PartSize is the multipart upload part size; default and minimum 8 MiB
	// (S3 takes 5 MiB at least).
	PartSize int64
	// CopyLimit is the largest big part an upload publishes with one
	// CopyObject; above it, UploadPartCopy parts of CopyPartSize. Defaults:
	// S3's 5 GiB limit, and 512 MiB parts (5 MiB at least).
	CopyLimit, CopyPartSize int64
	// Logger receives debug lines; default discards.
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultRangeTimeout = 30 * time.Second
	DefaultCallTimeout  = 30 * time.Second
	DefaultPartSize     = 8 << 20
	minPartSize         = 5 << 20
	DefaultCopyLimit    = 5 << 30
	DefaultCopyPartSize = 512 << 20
	// maxParts is S3's limit on the parts of a multipart upload.
	maxParts = 10000
	// maxAttempts bounds the SDK's own retries of one request.
	maxAttempts = 3
	// maxResumes bounds how often a ranged read resumes after a cut body.
	maxResumes = 4
	// partsInFlight bounds an upload's memory to (partsInFlight+1) parts.
	partsInFlight = 2
)

// Client reads and writes big parts. Reads use the downloader keys and
// writes the uploader keys. It is safe for concurrent use.
type Client struct {
	cfg  Config
	opt  Options
	down *s3.Client
	up   *s3.Client // nil without uploader keys
	log  *slog.Logger
}

// New builds a Client from cfg alone: static credentials, the endpoint in
// cfg.Host, path-style addressing. Nothing is read from the environment,
// ~/.aws or an instance metadata service.
func New(cfg Config, opt Options) (*Client, error) {
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opt.RangeTimeout <= 0 {
		opt.RangeTimeout = DefaultRangeTimeout
	}
	if opt.CallTimeout <= 0 {
		opt.CallTimeout = DefaultCallTimeout
	}
	if opt.PartSize <= 0 {
		opt.PartSize = DefaultPartSize
	}
	opt.PartSize = max(opt.PartSize, minPartSize)
	if opt.CopyLimit <= 0 || opt.CopyLimit > DefaultCopyLimit {
		opt.CopyLimit = DefaultCopyLimit
	}
	if opt.CopyPartSize <= 0 {
		opt.CopyPartSize = DefaultCopyPartSize
	}
	opt.CopyPartSize = min(max(opt.CopyPartSize, minPartSize), DefaultCopyLimit)
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.HTTPClient == nil {
		opt.HTTPClient = defaultHTTPClient()
	}
	c := &Client{cfg: cfg, opt: opt, log: opt.Logger}
	c.down = newS3(cfg, opt, cfg.DownloaderAccessKey, cfg.DownloaderAccessSecret)
	if cfg.UploaderAccessKey != "" {
		c.up = newS3(cfg, opt, cfg.UploaderAccessKey, cfg.UploaderAccessSecret)
	}
	return c, nil
}

func newS3(cfg Config, opt Options, key, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String(strings.TrimSuffix(cfg.Host, "/")),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		HTTPClient:   opt.HTTPClient,
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.MaxBackoff = time.Second
			o.RateLimiter = ratelimit.None
		}),
		// Checksums only where S3 demands them: S3-compatible servers vary,
		// and ranged GETs cannot be checked whole anyway.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

func defaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: DefaultCallTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
	}}
}

// Key is the layout of PROTOCOL §4: object name+".big" in bucket folder, or
// folder+"/"+name+".big" in the configured bucket. It does not check names.
func (c *Client) Key(folder, name string) (bucket, key string) {
	if c.cfg.Bucket == "" {
		return folder, name + ".big"
	}
	return c.cfg.Bucket, folder + "/" + name + ".big"
}

// Config returns the configuration the client was built from.
func (c *Client) Config() Config { return c.cfg }

// callCtx bounds a metadata call.
func (c *Client) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opt.CallTimeout)
}
