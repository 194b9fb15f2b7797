package cdn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Upload order (PROTOCOL §4): a new big part is written under a staging key
// that no reader asks for, and published by a server-side copy only once
// the Resource API holds its small part. A failure before the copy leaves
// the published object as it was.

// StagingSuffix starts the key suffix of a staged big part:
// name + ".big.staging-" + 16 random hex digits.
const StagingSuffix = ".big.staging-"

// copyRate is the slowest server-side copy a publish allows for: its
// deadline grows by one second per copyRate bytes.
const copyRate = 20 << 20

// Staged is a big part written under a staging key, not yet published.
type Staged struct {
	c                  *Client
	bucket, key, final string
	// Object is the staged object: size, ETag and metadata.
	Object Object
}

// Stage stores r, a stream of unknown length, under a fresh staging key
// beside folder/name's big part, with the user metadata meta (MetaSmallSHA256),
// as Put does. Nothing is published: the caller must Publish or Discard it.
func (c *Client) Stage(ctx context.Context, folder, name string, r io.Reader, meta map[string]string) (*Staged, error) {
	bucket, final, err := c.locate(folder, name)
	if err != nil {
		return nil, err
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("stage %s/%s: %w", bucket, final, err)
	}
	key := strings.TrimSuffix(final, ".big") + StagingSuffix + hex.EncodeToString(rnd[:])
	obj, err := c.put(ctx, bucket, key, r, meta)
	if err != nil {
		return nil, err
	}
	return &Staged{c: c, bucket: bucket, key: key, final: final, Object: obj}, nil
}

// Key is the staging key, in the bucket of the big part.
func (s *Staged) Key() string { return s.key }

// Publish copies the staged object to the big part's key on the server,
// with its metadata, and returns the published object. Up to the client's
// CopyLimit (S3's 5 GiB by default) it is one CopyObject, above it a
// multipart upload of UploadPartCopy parts. The staged object stays: the
// caller discards it.
func (s *Staged) Publish(ctx context.Context) (Object, error) {
	c := s.c
	ctx, cancel := context.WithTimeout(ctx, 4*c.opt.CallTimeout+time.Duration(s.Object.Size/copyRate)*time.Second)
	defer cancel()
	var (
		etag string
		err  error
	)
	if s.Object.Size <= c.opt.CopyLimit {
		etag, err = s.copyWhole(ctx)
	} else {
		etag, err = s.copyParts(ctx)
	}
	if err != nil {
		return Object{}, err
	}
	c.log.Debug("cdn: published", "bucket", s.bucket, "key", s.final, "size", s.Object.Size)
	return Object{Size: s.Object.Size, ETag: etag, Meta: s.Object.Meta}, nil
}

// copySource is x-amz-copy-source for the staged object.
func (s *Staged) copySource() *string {
	return aws.String(url.PathEscape(s.bucket) + "/" + url.PathEscape(s.key))
}

func (s *Staged) copyWhole(ctx context.Context) (string, error) {
	out, err := s.c.up.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket: &s.bucket, Key: &s.final, CopySource: s.copySource(),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: s.Object.Meta,
	})
	if err != nil {
		return "", mapErr("publish", s.bucket, s.final, err)
	}
	if out.CopyObjectResult == nil {
		return "", fmt.Errorf("publish %s/%s: no copy result", s.bucket, s.final)
	}
	return aws.ToString(out.CopyObjectResult.ETag), nil
}

// copyParts is a multipart upload of UploadPartCopy parts of CopyPartSize
// (more when 10,000 parts would not do), aborted on any error.
func (s *Staged) copyParts(ctx context.Context) (etag string, err error) {
	c := s.c
	created, err := c.up.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: &s.final, Metadata: s.Object.Meta,
	})
	if err != nil {
		return "", mapErr("publish", s.bucket, s.final, err)
	}
	id := created.UploadId
	defer func() {
		if err == nil {
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opt.CallTimeout)
		defer cancel()
		if _, aerr := c.up.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &s.final, UploadId: id}); aerr != nil {
			c.log.Warn("cdn: abort multipart copy", "bucket", s.bucket, "key", s.final, "err", aerr)
		}
	}()
	size := s.Object.Size
	part := max(c.opt.CopyPartSize, (size+maxParts-1)/maxParts)
	var parts []types.CompletedPart
	for off, num := int64(0), int32(1); off < size; off, num = off+part, num+1 {
		end := min(off+part, size) - 1
		out, err := c.up.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: &s.bucket, Key: &s.final, UploadId: id, PartNumber: aws.Int32(num),
			CopySource: s.copySource(), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
			CopySourceIfMatch: aws.String(s.Object.ETag),
		})
		if err != nil {
			return "", mapErr(fmt.Sprintf("publish part %d", num), s.bucket, s.final, err)
		}
		if out.CopyPartResult == nil {
			return "", fmt.Errorf("publish %s/%s: part %d: no copy result", s.bucket, s.final, num)
		}
		parts = append(parts, types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(num)})
	}
	slices.SortFunc(parts, func(a, b types.CompletedPart) int { return int(*a.PartNumber - *b.PartNumber) })
	done, err := c.up.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: &s.final, UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return "", mapErr("publish", s.bucket, s.final, err)
	}
	return aws.ToString(done.ETag), nil
}

// Discard deletes the staged object, on a context of its own (ctx may be
// what failed), bounded by the call timeout.
func (s *Staged) Discard(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.c.opt.CallTimeout)
	defer cancel()
	if _, err := s.c.up.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &s.key}); err != nil {
		return mapErr("discard", s.bucket, s.key, err)
	}
	return nil
}
