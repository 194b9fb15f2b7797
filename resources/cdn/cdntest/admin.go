package cdntest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// downloadPolicy lets the downloader read and list, nothing more.
const downloadPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
	`"Action":["s3:GetObject","s3:ListBucket","s3:GetBucketLocation","s3:ListAllMyBuckets"],` +
	`"Resource":["arn:aws:s3:::*"]}]}`

// addUsers creates the downloader (policy above) and the uploader (MinIO's
// built-in readwrite policy) through MinIO's admin API, without mc.
func (m *MinIO) addUsers() error {
	m.Downloader = Keys{"azaion-downloader", "azaion-downloader-secret"}
	m.Uploader = Keys{"azaion-uploader", "azaion-uploader-secret"}
	steps := []struct {
		path  string
		query url.Values
		body  []byte
		seal  bool
	}{
		{"add-canned-policy", url.Values{"name": {"azaion-download"}}, []byte(downloadPolicy), false},
		{"add-user", url.Values{"accessKey": {m.Downloader.AccessKey}}, userBody(m.Downloader), true},
		{"add-user", url.Values{"accessKey": {m.Uploader.AccessKey}}, userBody(m.Uploader), true},
		{"set-user-or-group-policy", url.Values{"policyName": {"azaion-download"}, "userOrGroup": {m.Downloader.AccessKey}, "isGroup": {"false"}}, nil, false},
		{"set-user-or-group-policy", url.Values{"policyName": {"readwrite"}, "userOrGroup": {m.Uploader.AccessKey}, "isGroup": {"false"}}, nil, false},
	}
	for i := range steps {
		if steps[i].seal {
			var err error
			if steps[i].body, err = sealAdmin(m.SecretKey, steps[i].body); err != nil {
				return err
			}
		}
	}
	deadline := time.Now().Add(readyTimeout)
	retry := func(err error) error {
		if !errors.Is(err, errNotYet) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
		return nil
	}
	// IAM takes writes as soon as its store exists, but its first load
	// from disk then replaces what it holds in memory: a policy added
	// before that load ends is gone until the next refresh, minutes later.
	// list-users answers only after the first load, so wait for it.
	for {
		err := m.admin(http.MethodGet, "list-users", nil, nil)
		if err == nil {
			break
		}
		if err := retry(err); err != nil {
			return err
		}
	}
	// Every step overwrites, so a "not yet" starts the sequence again: a
	// policy the set step cannot find is added once more.
	for i := 0; i < len(steps); {
		s := steps[i]
		err := m.admin(http.MethodPut, s.path, s.query, s.body)
		if err == nil {
			i++
			continue
		}
		if err := retry(err); err != nil {
			return err
		}
		i = 0
	}
	return nil
}

// errNotYet is a 503 from a server still starting.
var errNotYet = errors.New("server not initialized yet")

func userBody(k Keys) []byte {
	b, _ := json.Marshal(map[string]string{"secretKey": k.SecretKey, "status": "enabled"})
	return b
}

// admin makes one request to MinIO's admin API, signed with the root keys.
func (m *MinIO) admin(method, path string, query url.Values, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	u := m.Endpoint + "/minio/admin/v3/" + path + "?" + query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds := aws.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, "s3", region, time.Now()); err != nil {
		return fmt.Errorf("admin %s: sign: %w", path, err)
	}
	resp, err := (&http.Client{Timeout: callTimeout}).Do(req)
	if err != nil {
		return fmt.Errorf("admin %s: %w", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	// A policy or user just added can be missing for a moment on a busy
	// machine (XMinioAdminNoSuchPolicy): that is "not yet" too.
	if resp.StatusCode == http.StatusServiceUnavailable ||
		(resp.StatusCode == http.StatusNotFound && bytes.Contains(msg, []byte("XMinioAdminNoSuch"))) {
		return fmt.Errorf("admin %s: %w: %s", path, errNotYet, msg)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin %s: %s: %s", path, resp.Status, msg)
	}
	return nil
}

// sealAdmin encrypts an admin request body as madmin.EncryptData does, in
// its PBKDF2 + AES-256-GCM form (id 0x02) and for bodies under one 16 KiB
// sio fragment: salt(32) ‖ 0x02 ‖ nonce(8) ‖ GCM(key, nonce‖LE32(1), data,
// ad = 0x80 ‖ GCM-tag(nonce‖LE32(0), empty)).
func sealAdmin(password string, data []byte) ([]byte, error) {
	if len(data) >= 1<<14 {
		return nil, fmt.Errorf("admin body of %d bytes: too large to seal", len(data))
	}
	salt := make([]byte, 32)
	nonce := make([]byte, 8)
	rand.Read(salt)
	rand.Read(nonce)
	key, err := pbkdf2.Key(sha256.New, password, salt, 8192, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	n := make([]byte, 12)
	copy(n, nonce)
	ad := append([]byte{0x00}, gcm.Seal(nil, n, nil, nil)...)
	ad[0] = 0x80 // the final fragment
	binary.LittleEndian.PutUint32(n[8:], 1)
	out := append(append(append([]byte{}, salt...), 0x02), nonce...)
	return gcm.Seal(out, n, data, ad), nil
}
