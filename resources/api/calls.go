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

// Login logs in with POST /login and makes the new session, with its
// email, password and token, the one later calls use. A failed Login leaves
// the previous session as it was.
func (c *Client) Login(ctx context.Context, email, password string) error {
	_, err := c.LoginSession(ctx, email, password)
	return err
}

// LoginSession is Login that also returns the new session: calls made
// through it stay this user's after other logins.
func (c *Client) LoginSession(ctx context.Context, email, password string) (*Session, error) {
	t, err := c.postLogin(ctx, email, password)
	if err != nil {
		return nil, err
	}
	s := &Session{c: c, email: email, password: password}
	s.tok.Store(t)
	c.cur.Store(s)
	c.log.Info("api: logged in", "user", t.claims.Subject, "expires", t.claims.ExpiresAt)
	return s, nil
}

// current is the current session, or ErrNotLoggedIn.
func (c *Client) current() (*Session, error) {
	if s := c.cur.Load(); s != nil {
		return s, nil
	}
	return nil, ErrNotLoggedIn
}

func (c *Client) postLogin(ctx context.Context, email, password string) (*token, error) {
	const op = "login"
	body, err := json.Marshal(map[string]string{"email": email, "password": password})
	if err != nil {
		return nil, noAnswer(op, err)
	}
	out, err := c.send(ctx, op, "", maxJSON, func(ctx context.Context, _ string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint("/login", nil), bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	})
	if err != nil {
		return nil, err
	}
	var ans struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(out, &ans); err != nil {
		return nil, noAnswer(op, errors.New("answer is not {\"token\": ...}"))
	}
	cl, err := parseClaims(ans.Token)
	if err != nil {
		return nil, noAnswer(op, err)
	}
	return &token{raw: ans.Token, claims: cl}, nil
}

// Get is Session.Get through the current session.
func (c *Client) Get(ctx context.Context, folder, fileName, hardware string) ([]byte, error) {
	s, err := c.current()
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, folder, fileName, hardware)
}

// Upload is Session.Upload through the current session.
func (c *Client) Upload(ctx context.Context, folder, fileName string, data []byte) error {
	s, err := c.current()
	if err != nil {
		return err
	}
	return s.Upload(ctx, folder, fileName, data)
}

// KeyFragment is Session.KeyFragment through the current session.
func (c *Client) KeyFragment(ctx context.Context) ([]byte, error) {
	s, err := c.current()
	if err != nil {
		return nil, err
	}
	return s.KeyFragment(ctx)
}

// Get fetches fileName in folder (empty for cdn.yaml) with POST
// /resources/get/{folder}. The answer is the raw body, still encrypted with
// api_key(email, password, hardware) of this session's user.
func (s *Session) Get(ctx context.Context, folder, fileName, hardware string) ([]byte, error) {
	c := s.c
	op := "get " + folder + "/" + fileName
	body, err := json.Marshal(map[string]string{"fileName": fileName, "password": s.password, "hardware": hardware})
	if err != nil {
		return nil, noAnswer(op, err)
	}
	return s.call(ctx, op, c.maxGet, func(ctx context.Context, token string) (*http.Request, error) {
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
func (s *Session) Upload(ctx context.Context, folder, fileName string, data []byte) error {
	c := s.c
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
	_, err = s.call(ctx, op, maxJSON, func(ctx context.Context, token string) (*http.Request, error) {
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
func (s *Session) KeyFragment(ctx context.Context) ([]byte, error) {
	c := s.c
	return s.call(ctx, "key fragment", maxJSON, func(ctx context.Context, token string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint("/binary-split/key-fragment", nil), nil)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return req, err
	})
}

// call makes an authorised call: with a fresh token, and once more after a
// new login of the session's user when the API answers 401 or 403.
func (s *Session) call(ctx context.Context, op string, limit int64, build request) ([]byte, error) {
	t, err := s.token(ctx, op)
	if err != nil {
		return nil, err
	}
	out, err := s.c.send(ctx, op, t.raw, limit, build)
	var se *StatusError
	if !errors.As(err, &se) || (se.Code != http.StatusUnauthorized && se.Code != http.StatusForbidden) {
		return out, err
	}
	s.c.log.Info("api: refused, logging in again", "op", op, "status", se.Code)
	if t, err = s.refresh(ctx, op, t); err != nil {
		return nil, err
	}
	return s.c.send(ctx, op, t.raw, limit, build)
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
