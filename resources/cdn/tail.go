package cdn

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Head reads the first bytes of folder/name's big part, up to len(p), with
// one ranged GET that pins no ETag, and returns the object they come from
// (its size and ETag) and how many bytes it read: all of p, or the whole
// object when it is shorter. A first open asks for it beside the tail, so
// that the first read of a cold resource need not wait for a GET of its
// own; the caller keeps the bytes only when the ETag is the one it pins.
func (c *Client) Head(ctx context.Context, folder, name string, p []byte) (Object, int, error) {
	bucket, key, err := c.locate(folder, name)
	if err != nil {
		return Object{}, 0, err
	}
	if len(p) == 0 {
		return Object{}, 0, fmt.Errorf("head %s/%s: no room", bucket, key)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opt.RangeTimeout)
	defer cancel()
	rng := fmt.Sprintf("bytes=0-%d", len(p)-1)
	out, err := c.down.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: &rng})
	if err != nil {
		return Object{}, 0, mapErr("read", bucket, key, err)
	}
	defer out.Body.Close()
	start, total, ok := parseContentRange(aws.ToString(out.ContentRange))
	if !ok || start != 0 {
		return Object{}, 0, fmt.Errorf("head %s/%s: asked %s, got Content-Range %q", bucket, key, rng, aws.ToString(out.ContentRange))
	}
	n, err := io.ReadFull(out.Body, p[:min(int64(len(p)), total)])
	if err != nil {
		return Object{}, n, fmt.Errorf("head %s/%s: %w", bucket, key, err)
	}
	return Object{Size: total, ETag: aws.ToString(out.ETag)}, n, nil
}
