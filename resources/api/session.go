package api

import (
	"context"
)

// session is the token to call with, renewed first when near its exp.
func (c *Client) session(ctx context.Context, op string) (string, error) {
	c.mu.Lock()
	loggedIn, token, cl := c.loggedIn, c.token, c.claims
	c.mu.Unlock()
	if !loggedIn {
		return "", ErrNotLoggedIn
	}
	if expiring(cl, c.now()) {
		c.log.Info("api: token near its exp, logging in again", "op", op)
		return c.refresh(ctx, op, token)
	}
	return token, nil
}

// refresh logs in again with the kept credentials and returns the new
// token. stale is the token the caller had: when another caller has already
// replaced it, that token is used. Concurrent callers share one login, which
// runs under the client's timeout and not under any one caller's context.
func (c *Client) refresh(ctx context.Context, op, stale string) (string, error) {
	ch := c.relogin.DoChan("login", func() (any, error) {
		c.mu.Lock()
		email, password, current := c.email, c.password, c.token
		c.mu.Unlock()
		if current != stale {
			return current, nil
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		tok, cl, err := c.postLogin(lctx, email, password)
		if err != nil {
			return "", err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.email == email && c.password == password {
			c.token, c.claims = tok, cl
		}
		return tok, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(string), nil
	case <-ctx.Done():
		return "", noAnswer(op, ctx.Err())
	}
}
