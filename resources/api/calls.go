package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"time"
)

// request builds a call's request; it runs once per attempt, so that a
// retry sends a fresh body.
type request func(ctx context.Context, token string) (*http.Request, error)

// Login logs in with POST /login and keeps the email, password and token
// for later calls. A failed Login leaves the previous session as it was.
func (c *Client) Login(ctx context.Context, email, password string) error {
	tok, cl, err := c.postLogin(ctx, email, password)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.loggedIn, c.email, c.password, c.token, c.claims = true, email, password, tok, cl
	c.mu.Unlock()
	c.log.Info("api: logged in", "user", cl.Subject, "expires", cl.ExpiresAt)
	return nil
}

func (c *Client) postLogin(ctx context.Context, email, password string) (string, Claims, error) {
	const op = "login"
	body, err := json.Marshal(map[string]string{"email": email, "password": password})
	if err != nil {
		return "", Claims{}, noAnswer(op, err)
	}
	out, err := c.send(ctx, op, "", maxJSON, func(ctx context.Context, _ string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint("/login", nil), bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	})
	if err != nil {
		return "", Claims{}, err
	}
	var ans struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(out, &ans); err != nil {
		return "", Claims{}, noAnswer(op, errors.New("answer is not {\"token\": ...}"))
	}
	cl, err := parseClaims(ans.Token)
	if err != nil {
		return "", Claims{}, noAnswer(op, err)
	}
	return ans.Token, cl, nil
}

// Get fetches fileName in folder (empty for cdn.yaml) with POST
// /resources/get/{folder}. The answer is the raw body, still encrypted with
// api_key(email, password, hardware).
func (c *Client) Get(ctx context.Context, folder, fileName, hardware string) ([]byte, error) {
	op := "get " + folder + "/" + fileName
	c.mu.Lock()
	password := c.password
	c.mu.Unlock()
	body, err := json.Marshal(map[string]string{"fileName": fileName, "password": password, "hardware": hardware})
	if err != nil {
		return nil, noAnswer(op, err)
	}
	return c.call(ctx, op, c.maxGet, func(ctx context.Context, token string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint("/resources/get/", &folder), bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return req, err
	})
}

// Upload stores data as fileName in folder with POST /resources/{folder},
// a multipart body with one file part "data".
func (c *Client) Upload(ctx context.Context, folder, fileName string, data []byte) error {
	op := "upload " + folder + "/" + fileName
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("data", fileName)
	if err == nil {
		_, err = fw.Write(data)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return noAnswer(op, fmt.Errorf("build body: %w", err))
	}
	body := buf.Bytes()
	_, err = c.call(ctx, op, maxJSON, func(ctx context.Context, token string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint("/resources/", &folder), bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return req, err
	})
	return err
}

// KeyFragment fetches GET /binary-split/key-fragment.
func (c *Client) KeyFragment(ctx context.Context) ([]byte, error) {
	return c.call(ctx, "key fragment", maxJSON, func(ctx context.Context, token string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint("/binary-split/key-fragment", nil), nil)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return req, err
	})
}

// call makes an authorised call: with a fresh token, and once more after a
// new login when the API answers 401 or 403.
func (c *Client) call(ctx context.Context, op string, limit int64, build request) ([]byte, error) {
	token, err := c.session(ctx, op)
	if err != nil {
		return nil, err
	}
	out, err := c.send(ctx, op, token, limit, build)
	var se *StatusError
	if !errors.As(err, &se) || (se.Code != http.StatusUnauthorized && se.Code != http.StatusForbidden) {
		return out, err
	}
	c.log.Info("api: refused, logging in again", "op", op, "status", se.Code)
	if token, err = c.refresh(ctx, op, token); err != nil {
		return nil, err
	}
	return c.send(ctx, op, token, limit, build)
}

// send makes one attempt within the call timeout and reads at most limit
// bytes of a 2xx body.
func (c *Client) send(ctx context.Context, op, token string, limit int64, build request) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	req, err := build(ctx, token)
	if err != nil {
		return nil, noAnswer(op, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, noAnswer(op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxJSON))
		c.log.Debug("api: call", "op", op, "status", resp.StatusCode, "took", time.Since(start))
		return nil, statusError(op, resp.StatusCode, b)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, noAnswer(op, fmt.Errorf("read answer: %w", err))
	}
	if int64(len(b)) > limit {
		return nil, noAnswer(op, fmt.Errorf("answer larger than %d bytes", limit))
	}
	c.log.Debug("api: call", "op", op, "status", resp.StatusCode, "bytes", len(b), "took", time.Since(start))
	return b, nil
}
