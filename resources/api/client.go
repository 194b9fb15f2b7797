package api

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

const (
	defaultTimeout = 30 * time.Second
	// DefaultMaxGet bounds the body of a Get.
	DefaultMaxGet = 64 << 20
	// maxJSON bounds JSON answers and error bodies.
	maxJSON = 1 << 20
)

// Options tune a Client; the zero value is usable.
type Options struct {
	// HTTPClient makes the calls; a client over a clone of
	// http.DefaultTransport when nil. Its own Timeout, if any, also applies.
	HTTPClient *http.Client
	// Timeout bounds each call, its body included; 30s when zero.
	Timeout time.Duration
	// MaxGet bounds the body of a Get; DefaultMaxGet when zero.
	MaxGet int64
	Logger *slog.Logger
	// Now is the clock that decides when the token is near its exp.
	Now func() time.Time
}

// Client talks to one Resource API. It is safe for concurrent use. Its
// calls use the current Session, the one of the last successful Login;
// callers that must not see another user's login half-way keep the Session
// that LoginSession returns and call through it.
type Client struct {
	base    *url.URL
	hc      *http.Client
	timeout time.Duration
	maxGet  int64
	log     *slog.Logger
	now     func() time.Time

	cur atomic.Pointer[Session] // nil until a Login succeeds
}

// New makes a client for the API at baseURL (http or https, no user info,
// query or fragment; a path prefix is kept).
func New(baseURL string, opt Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("api: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api: base URL %q: want http:// or https:// and a host", baseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("api: base URL must not carry user info, a query or a fragment")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	c := &Client{base: u, hc: opt.HTTPClient, timeout: opt.Timeout, maxGet: opt.MaxGet, log: opt.Logger, now: opt.Now}
	if c.hc == nil {
		c.hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
	}
	if c.maxGet <= 0 {
		c.maxGet = DefaultMaxGet
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// LoggedIn reports whether a Login has succeeded.
func (c *Client) LoggedIn() bool { return c.cur.Load() != nil }

// Session is the current session, or nil before a Login.
func (c *Client) Session() *Session { return c.cur.Load() }

// Claims are the current token's claims, read without verification.
func (c *Client) Claims() (Claims, bool) {
	if s := c.cur.Load(); s != nil {
		return s.Claims(), true
	}
	return Claims{}, false
}

// Email is the email of the last successful Login, as given.
func (c *Client) Email() string {
	if s := c.cur.Load(); s != nil {
		return s.email
	}
	return ""
}

// endpoint is the URL of path under the base; segment is path-escaped and
// appended (an empty segment leaves a trailing slash).
func (c *Client) endpoint(path string, segment *string) string {
	u := *c.base
	u.Path += path
	u.RawPath = u.EscapedPath()
	if segment != nil {
		u.Path += *segment
		u.RawPath += url.PathEscape(*segment)
	}
	return u.String()
}
