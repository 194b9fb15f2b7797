package api

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/singleflight"
)

// Session is one user's login: the email and password it was made with and
// the token they got. Its user never changes; only its token is renewed,
// by logging in again with the same credentials, and swapped whole. A call
// made through a Session uses that user's password and token from start to
// end, whatever other logins happen meanwhile. It is safe for concurrent
// use.
type Session struct {
	c        *Client
	email    string
	password string // never logged, never in an error
	tok      atomic.Pointer[token]
	relogin  singleflight.Group
}

// token is a bearer token and its claims, read without verification.
type token struct {
	raw    string // never logged, never in an error
	claims Claims
}

// Email is the email the session logged in with, as given.
func (s *Session) Email() string { return s.email }

// Claims are the session's current token's claims.
func (s *Session) Claims() Claims { return s.tok.Load().claims }

// token is the token to call with, renewed first when near its exp.
func (s *Session) token(ctx context.Context, op string) (*token, error) {
	t := s.tok.Load()
	if expiring(t.claims, s.c.now()) {
		s.c.log.Info("api: token near its exp, logging in again", "op", op)
		return s.refresh(ctx, op, t)
	}
	return t, nil
}

// refresh logs in again with the session's credentials and returns the new
// token. stale is the token the caller had: when another caller has already
// replaced it, the replacement is used. Concurrent callers share one login,
// which runs under the client's timeout and not under any one caller's
// context.
func (s *Session) refresh(ctx context.Context, op string, stale *token) (*token, error) {
	ch := s.relogin.DoChan("login", func() (any, error) {
		if cur := s.tok.Load(); cur != stale {
			return cur, nil
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.c.timeout)
		defer cancel()
		t, err := s.c.postLogin(lctx, s.email, s.password)
		if err != nil {
			return nil, err
		}
		s.tok.CompareAndSwap(stale, t)
		return t, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*token), nil
	case <-ctx.Done():
		return nil, noAnswer(op, ctx.Err())
	}
}
