package cdn

import (
	"context"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// List returns the names of the resources in folder: its objects ending in
// ".big", suffix stripped, sorted. Keys that are not valid names are left out.
func (c *Client) List(ctx context.Context, folder string) ([]string, error) {
	if err := c.checkFolder(folder); err != nil {
		return nil, err
	}
	bucket, prefix := folder, ""
	if c.cfg.Bucket != "" {
		bucket, prefix = c.cfg.Bucket, folder+"/"
	}
	var names []string
	err := c.listObjects(ctx, bucket, prefix, func(out *s3.ListObjectsV2Output) {
		for _, o := range out.Contents {
			name, ok := strings.CutSuffix(strings.TrimPrefix(aws.ToString(o.Key), prefix), ".big")
			if ok && validName(name) {
				names = append(names, name)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// Folders returns the folders on the CDN, sorted: the buckets in the
// bucket-per-folder layout, the top-level prefixes of the bucket otherwise.
func (c *Client) Folders(ctx context.Context) ([]string, error) {
	var folders []string
	if c.cfg.Bucket == "" {
		cctx, cancel := c.callCtx(ctx)
		defer cancel()
		p := s3.NewListBucketsPaginator(c.down, &s3.ListBucketsInput{})
		for p.HasMorePages() {
			out, err := p.NextPage(cctx)
			if err != nil {
				return nil, mapErr("list buckets", "", "", err)
			}
			for _, b := range out.Buckets {
				if name := aws.ToString(b.Name); validBucket(name) {
					folders = append(folders, name)
				}
			}
		}
	} else {
		err := c.listObjects(ctx, c.cfg.Bucket, "", func(out *s3.ListObjectsV2Output) {
			for _, p := range out.CommonPrefixes {
				if f := strings.TrimSuffix(aws.ToString(p.Prefix), "/"); validName(f) {
					folders = append(folders, f)
				}
			}
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(folders)
	return folders, nil
}

// listObjects pages through the objects under prefix, one level deep.
func (c *Client) listObjects(ctx context.Context, bucket, prefix string, page func(*s3.ListObjectsV2Output)) error {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	in := &s3.ListObjectsV2Input{Bucket: &bucket, Delimiter: aws.String("/")}
	if prefix != "" {
		in.Prefix = &prefix
	}
	p := s3.NewListObjectsV2Paginator(c.down, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return mapErr("list", bucket, prefix, err)
		}
		page(out)
	}
	return nil
}
