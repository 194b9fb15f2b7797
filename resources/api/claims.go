package api

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are what the client reads from its token, unverified: they tell it
// who it is logged in as and when to log in again, and nothing else.
type Claims struct {
	Subject, Email, Role string
	IssuedAt, ExpiresAt  time.Time
}

// maxToken bounds a token the client accepts from /login.
const maxToken = 16 << 10

type tokenClaims struct {
	Email string `json:"email"`
	Role  string `json:"role"`
	jwt.RegisteredClaims
}

// parseClaims reads a token's claims without verifying it. A token that is
// too long, has other than three parts, or holds bytes that cannot go in an
// HTTP header is refused before any decoding.
func parseClaims(tok string) (Claims, error) {
	if tok == "" || len(tok) > maxToken {
		return Claims{}, fmt.Errorf("token of %d bytes", len(tok))
	}
	if strings.Count(tok, ".") != 2 {
		return Claims{}, errors.New("token is not a JWT")
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] > '~' {
			return Claims{}, errors.New("token holds bytes a header cannot carry")
		}
	}
	var tc tokenClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &tc); err != nil {
		// The parser's error never quotes the token.
		return Claims{}, fmt.Errorf("token unreadable: %w", err)
	}
	c := Claims{Subject: tc.Subject, Email: tc.Email, Role: tc.Role}
	if tc.IssuedAt != nil {
		c.IssuedAt = tc.IssuedAt.Time
	}
	if tc.ExpiresAt != nil {
		c.ExpiresAt = tc.ExpiresAt.Time
	}
	return c, nil
}

// refreshMargin is how long before exp the client logs in again:
// min(30s, 10% of the lifetime).
func refreshMargin(c Claims) time.Duration {
	m := 30 * time.Second
	if !c.IssuedAt.IsZero() && c.ExpiresAt.After(c.IssuedAt) {
		m = min(m, c.ExpiresAt.Sub(c.IssuedAt)/10)
	}
	return m
}

// expiring reports whether the token should be renewed before use. A token
// without exp is used until the API refuses it.
func expiring(c Claims, now time.Time) bool {
	if c.ExpiresAt.IsZero() {
		return false
	}
	return !now.Add(refreshMargin(c)).Before(c.ExpiresAt)
}
