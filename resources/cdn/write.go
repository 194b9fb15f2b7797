package cdn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Put stores r, a stream of unknown length, as the big part of folder/name
// with the uploader keys. Up to one part it is a single PUT; beyond, a
// multipart upload holding at most a few parts in memory, aborted on any
// error. It returns the stored size and ETag.
func (c *Client) Put(ctx context.Context, folder, name string, r io.Reader) (Object, error) {
	bucket, key, err := c.locate(folder, name)
	if err != nil {
		return Object{}, err
	}
	return c.put(ctx, bucket, key, r, nil)
}

// put stores r as bucket/key with the user metadata meta.
func (c *Client) put(ctx context.Context, bucket, key string, r io.Reader, meta map[string]string) (Object, error) {
	if c.up == nil {
		return Object{}, fmt.Errorf("put %s/%s: %w", bucket, key, ErrNoUploader)
	}
	first := make([]byte, c.opt.PartSize)
	n, err := io.ReadFull(r, first)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return c.putSingle(ctx, bucket, key, first[:n], meta)
	case err != nil:
		return Object{}, fmt.Errorf("put %s/%s: read: %w", bucket, key, err)
	}
	return c.putMultipart(ctx, bucket, key, first, r, meta)
}

func (c *Client) putSingle(ctx context.Context, bucket, key string, data []byte, meta map[string]string) (Object, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*c.opt.CallTimeout)
	defer cancel()
	out, err := c.up.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &bucket, Key: &key, Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
		Metadata: meta,
	}, c.payloadSigning()...)
	if err != nil {
		return Object{}, mapErr("put", bucket, key, err)
	}
	c.log.Debug("cdn: put", "bucket", bucket, "key", key, "size", len(data))
	return Object{Size: int64(len(data)), ETag: aws.ToString(out.ETag), Meta: meta}, nil
}

func (c *Client) putMultipart(ctx context.Context, bucket, key string, first []byte, r io.Reader, meta map[string]string) (obj Object, err error) {
	cctx, cancel := c.callCtx(ctx)
	created, err := c.up.CreateMultipartUpload(cctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key, Metadata: meta})
	cancel()
	if err != nil {
		return Object{}, mapErr("put", bucket, key, err)
	}
	id := created.UploadId
	defer func() {
		if err == nil {
			return
		}
		// Abort on a context of its own: ctx may be what failed.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opt.CallTimeout)
		defer cancel()
		if _, aerr := c.up.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: id}); aerr != nil {
			c.log.Warn("cdn: abort multipart upload", "bucket", bucket, "key", key, "err", aerr)
		}
	}()

	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var (
		mu    sync.Mutex
		parts []types.CompletedPart
		wg    sync.WaitGroup
		slots = make(chan struct{}, partsInFlight)
		// free hands the buffer of a part that is stored to the next part
		// to read: the reader fills one while partsInFlight are sent, so an
		// upload makes partsInFlight+1 buffers in all instead of one per
		// part (8 MiB made and cleared for every 8 MiB uploaded, and the GC
		// work of it under serve's memory limit).
		free = make(chan []byte, partsInFlight+1)
		size int64
	)
	buf, num, last := first, int32(1), false
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		size += int64(len(buf))
		wg.Add(1)
		go func(num int32, data []byte) {
			defer wg.Done()
			etag, err := c.uploadPart(ctx, bucket, key, id, num, data)
			if err != nil {
				// The buffer is not handed on: a failed request's body
				// may still be read by the transport after it returns.
				<-slots
				stop(err)
				return
			}
			mu.Lock()
			parts = append(parts, types.CompletedPart{ETag: &etag, PartNumber: aws.Int32(num)})
			mu.Unlock()
			// Before the slot, so that the reader never makes a buffer
			// while one is on its way back.
			free <- data[:cap(data)]
			<-slots
		}(num, buf)
		if last {
			break
		}
		var next []byte
		select {
		case next = <-free:
		default:
			next = make([]byte, c.opt.PartSize)
		}
		n, rerr := io.ReadFull(r, next)
		if errors.Is(rerr, io.EOF) {
			break
		}
		if errors.Is(rerr, io.ErrUnexpectedEOF) {
			last = true
		} else if rerr != nil {
			stop(fmt.Errorf("put %s/%s: read: %w", bucket, key, rerr))
			break
		}
		buf, num = next[:n], num+1
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return Object{}, err
	}
	slices.SortFunc(parts, func(a, b types.CompletedPart) int { return int(*a.PartNumber - *b.PartNumber) })
	cctx, cancel = c.callCtx(ctx)
	defer cancel()
	done, err := c.up.CompleteMultipartUpload(cctx, &s3.CompleteMultipartUploadInput{
		Bucket: &bucket, Key: &key, UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return Object{}, mapErr("put", bucket, key, err)
	}
	c.log.Debug("cdn: put multipart", "bucket", bucket, "key", key, "size", size, "parts", len(parts))
	return Object{Size: size, ETag: aws.ToString(done.ETag), Meta: meta}, nil
}

// uploadPart sends one part, bounded by its own timeout.
func (c *Client) uploadPart(ctx context.Context, bucket, key string, id *string, num int32, data []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*c.opt.CallTimeout)
	defer cancel()
	out, err := c.up.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &bucket, Key: &key, UploadId: id, PartNumber: aws.Int32(num),
		Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
	}, c.payloadSigning()...)
	if err != nil {
		return "", mapErr(fmt.Sprintf("put part %d", num), bucket, key, err)
	}
	return aws.ToString(out.ETag), nil
}

// payloadSigning leaves the body of a PUT out of its SigV4 signature
// (UNSIGNED-PAYLOAD) when the CDN is on this machine: the SDK already does
// so over https, where TLS guards the body, and signs it only over plain
// http, where the SHA-256 of every byte, computed here and checked again by
// the server, is what keeps a body changed on the way from being stored.
// On loopback there is no way for it to change, and the two hashes cost a
// fifth of the CPU an upload to a MinIO on the same two cores uses
// (BENCHMARKS.md, P7). Any other plain http CDN stays signed.
func (c *Client) payloadSigning() []func(*s3.Options) {
	u, err := url.Parse(c.cfg.Host)
	if err != nil || u.Scheme != "http" || !loopback(u.Hostname()) {
		return nil
	}
	return []func(*s3.Options){func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	}}
}

// loopback reports whether host names this machine: localhost or a
// loopback address.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
