package cdn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Object is what the CDN says about a big part.
type Object struct {
	Size int64
	// ETag is as S3 sends it, quotes included; ReadAt pins reads to it.
	ETag string
	// Meta is the object's S3 user metadata, keys in lower case without
	// the x-amz-meta- prefix (MetaSmallSHA256, say); nil when it has none.
	Meta map[string]string
}

// MetaSmallSHA256 is the user metadata of PROTOCOL §4 that binds a big part
// to its small part: the lower-case hex SHA-256 of the small part.
const MetaSmallSHA256 = "azaion-small-sha256"

// SmallSHA256 is the object's MetaSmallSHA256, "" when it has none.
func (o Object) SmallSHA256() string { return o.Meta[MetaSmallSHA256] }

// userMeta is S3 user metadata with its keys in lower case, as the
// protocol names them (HTTP header names are case-insensitive).
func userMeta(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// Stat is a HEAD of the big part of folder/name.
func (c *Client) Stat(ctx context.Context, folder, name string) (Object, error) {
	bucket, key, err := c.locate(folder, name)
	if err != nil {
		return Object{}, err
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	out, err := c.down.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return Object{}, mapErr("stat", bucket, key, err)
	}
	return Object{Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag), Meta: userMeta(out.Metadata)}, nil
}

// errResume marks a ranged read that stopped early and may go on from where
// it stopped.
var errResume = errors.New("body cut short")

// ReadAt fills p with the big part's bytes at off, by ranged GETs that
// require the ETag etag when it is not empty (a replaced object gives
// ErrChanged). A body cut short or reset resumes from where it stopped, a
// bounded number of times. It returns len(p) and nil, or fewer bytes and an
// error: io.EOF when the object ends before p is full.
func (c *Client) ReadAt(ctx context.Context, folder, name, etag string, p []byte, off int64) (int, error) {
	bucket, key, err := c.locate(folder, name)
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("read %s/%s at %d: negative offset", bucket, key, off)
	}
	got, resumes := 0, 0
	for got < len(p) {
		n, total, tag, err := c.getRange(ctx, bucket, key, etag, p[got:], off+int64(got))
		got += n
		if etag == "" {
			etag = tag // resumes must read the same object
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF):
			return got, io.EOF
		case total >= 0 && off+int64(got) >= total:
			return got, io.EOF
		case ctx.Err() != nil:
			return got, fmt.Errorf("read %s/%s: %w", bucket, key, context.Cause(ctx))
		case !errors.Is(err, errResume):
			return got, err
		}
		resumes++
		if resumes > maxResumes {
			return got, fmt.Errorf("read %s/%s at %d: gave up after %d resumes: %w", bucket, key, off+int64(got), maxResumes, err)
		}
		c.log.Debug("cdn: resuming ranged read", "bucket", bucket, "key", key, "at", off+int64(got), "err", err)
	}
	return got, nil
}

// getRange makes one ranged GET for p at off. It returns the bytes read, the
// object's total size (-1 when unknown) and its ETag. An error wrapping
// errResume means the body stopped early.
func (c *Client) getRange(ctx context.Context, bucket, key, etag string, p []byte, off int64) (int, int64, string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opt.RangeTimeout)
	defer cancel()
	rng := fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1)
	in := &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: &rng}
	if etag != "" {
		in.IfMatch = &etag
	}
	out, err := c.down.GetObject(ctx, in)
	if err != nil {
		if rangeNotSatisfiable(err) {
			return 0, -1, "", io.EOF
		}
		return 0, -1, "", mapErr("read", bucket, key, err)
	}
	defer out.Body.Close()
	start, total, ok := parseContentRange(aws.ToString(out.ContentRange))
	if !ok || start != off {
		return 0, -1, "", fmt.Errorf("read %s/%s: asked %s, got Content-Range %q", bucket, key, rng, aws.ToString(out.ContentRange))
	}
	want := min(int64(len(p)), total-off)
	n, err := io.ReadFull(out.Body, p[:want])
	tag := aws.ToString(out.ETag)
	if err != nil {
		return n, total, tag, fmt.Errorf("%w: %w", errResume, err)
	}
	if want < int64(len(p)) {
		return n, total, tag, io.EOF
	}
	return n, total, tag, nil
}

// parseContentRange reads "bytes START-END/TOTAL".
func parseContentRange(s string) (start, total int64, ok bool) {
	s, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, size, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(first, 10, 64)
	total, err2 := strconv.ParseInt(size, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || total < 0 {
		return 0, 0, false
	}
	return start, total, true
}

// Pinned is one version of a big part on the CDN: reads of folder/name
// pinned to an ETag. It is a cache.Origin and a resources.BigPart.
type Pinned struct {
	c                  *Client
	folder, name, etag string
}

// Pin returns the reader of folder/name's big part at etag.
func (c *Client) Pin(folder, name, etag string) Pinned {
	return Pinned{c: c, folder: folder, name: name, etag: etag}
}

// ReadAt is Client.ReadAt for the pinned object.
func (p Pinned) ReadAt(ctx context.Context, b []byte, off int64) (int, error) {
	return p.c.ReadAt(ctx, p.folder, p.name, p.etag, b, off)
}
