package cdn

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Tail reads the last bytes of folder/name's big part, up to len(p), with
// one suffix-ranged GET, and returns the object they come from (its size,
// ETag and metadata, as a Stat would) and how many bytes it read. It takes
// the place of a Stat and a ranged read of the end when a resource is first
// opened: one request instead of two in a row.
func (c *Client) Tail(ctx context.Context, folder, name string, p []byte) (Object, int, error) {
	return c.end(ctx, folder, name, p, true)
}

// Head reads the first bytes of folder/name's big part, up to len(p), with
// one ranged GET that pins no ETag, and returns the object they come from
// (its size and ETag) and how many bytes it read: all of p, or the whole
// object when it is shorter. A first open asks for it beside the tail, so
// that the first read of a cold resource need not wait for a GET of its
// own; the caller keeps the bytes only when the ETag is the one it pins.
func (c *Client) Head(ctx context.Context, folder, name string, p []byte) (Object, int, error) {
	return c.end(ctx, folder, name, p, false)
}

// end is Tail (last) or Head: one unpinned ranged GET of an end of the
// object into p, with the object's size and ETag from its headers.
func (c *Client) end(ctx context.Context, folder, name string, p []byte, last bool) (Object, int, error) {
	op, rng := "head", fmt.Sprintf("bytes=0-%d", len(p)-1)
	if last {
		op, rng = "tail", fmt.Sprintf("bytes=-%d", len(p))
	}
	bucket, key, err := c.locate(folder, name)
	if err != nil {
		return Object{}, 0, err
	}
	if len(p) == 0 {
		return Object{}, 0, fmt.Errorf("%s %s/%s: no room", op, bucket, key)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opt.RangeTimeout)
	defer cancel()
	out, err := c.down.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: &rng})
	if err != nil {
		return Object{}, 0, mapErr("read", bucket, key, err)
	}
	defer out.Body.Close()
	start, total, ok := parseContentRange(aws.ToString(out.ContentRange))
	want := min(int64(len(p)), total) // the head
	if last {
		ok = ok && start <= total && total-start <= int64(len(p))
		want = total - start
	} else {
		ok = ok && start == 0
	}
	if !ok {
		return Object{}, 0, fmt.Errorf("%s %s/%s: asked %s, got Content-Range %q", op, bucket, key, rng, aws.ToString(out.ContentRange))
	}
	n, err := io.ReadFull(out.Body, p[:want])
	if err != nil {
		return Object{}, n, fmt.Errorf("%s %s/%s: %w", op, bucket, key, err)
	}
	return Object{Size: total, ETag: aws.ToString(out.ETag), Meta: userMeta(out.Metadata)}, n, nil
}

// HeadStream is Head for the first n bytes as they arrive: one ranged GET
// that pins no ETag, answered with the object it reads (size and ETag,
// from the headers) and its body, to be read and closed by the caller
// (who reads it only when the ETag is the one it pins). The RangeTimeout
// bounds the whole GET, body included.
func (c *Client) HeadStream(ctx context.Context, folder, name string, n int64) (Object, io.ReadCloser, error) {
	bucket, key, err := c.locate(folder, name)
	if err != nil {
		return Object{}, nil, err
	}
	if n <= 0 {
		return Object{}, nil, fmt.Errorf("head %s/%s: no room", bucket, key)
	}
	rng := fmt.Sprintf("bytes=0-%d", n-1)
	ctx, cancel := context.WithTimeout(ctx, c.opt.RangeTimeout)
	out, err := c.down.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: &rng})
	if err != nil {
		cancel()
		return Object{}, nil, mapErr("read", bucket, key, err)
	}
	start, total, ok := parseContentRange(aws.ToString(out.ContentRange))
	if !ok || start != 0 {
		out.Body.Close()
		cancel()
		return Object{}, nil, fmt.Errorf("head %s/%s: asked %s, got Content-Range %q", bucket, key, rng, aws.ToString(out.ContentRange))
	}
	obj := Object{Size: total, ETag: aws.ToString(out.ETag), Meta: userMeta(out.Metadata)}
	return obj, &headBody{ReadCloser: out.Body, cancel: cancel}, nil
}

// headBody is a HeadStream's body, whose Close ends its GET's context.
type headBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *headBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
