package cdn

import (
	"errors"
	"fmt"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Sentinel errors, tested with errors.Is.
var (
	// ErrNotFound: no such object or bucket (404, NoSuchKey, NoSuchBucket).
	ErrNotFound = errors.New("cdn: not found")
	// ErrChanged: the object was replaced since the ETag a read is pinned to (412).
	ErrChanged = errors.New("cdn: object changed")
	// ErrBadFolder: in the bucket-per-folder layout, a folder that is not a
	// valid S3 bucket name. Refused before any network call.
	ErrBadFolder = errors.New("cdn: folder is not a valid bucket name")
	// ErrBadName: a folder or name that PROTOCOL §2 does not allow.
	ErrBadName = errors.New("cdn: bad name")
	// ErrConfig: a cdn.yaml that is malformed or incomplete.
	ErrConfig = errors.New("cdn: bad config")
	// ErrNoUploader: the config has no uploader keys, so nothing can be written.
	ErrNoUploader = errors.New("cdn: no uploader keys configured")
)

// mapErr turns an SDK error into one of the sentinels where one applies and
// wraps it with the operation, bucket and key. SDK errors carry request ids
// and codes, never the credentials.
func mapErr(op, bucket, key string, err error) error {
	code, status := "", 0
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	where := bucket
	if key != "" {
		where += "/" + key
	}
	switch {
	case status == http.StatusNotFound || code == "NoSuchKey" || code == "NoSuchBucket" || code == "NotFound":
		return fmt.Errorf("%s %s: %w", op, where, ErrNotFound)
	case status == http.StatusPreconditionFailed || code == "PreconditionFailed":
		return fmt.Errorf("%s %s: %w", op, where, ErrChanged)
	}
	return fmt.Errorf("%s %s: %w", op, where, err)
}

// rangeNotSatisfiable reports a 416: a ranged GET that starts past the end.
func rangeNotSatisfiable(err error) bool {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "InvalidRange"
}
