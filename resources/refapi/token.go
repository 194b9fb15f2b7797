package refapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// maxToken bounds the Authorization header's token; longer ones are 401
// before any parsing.
const maxToken = 4096

// claims are the token's claims of PROTOCOL §3: sub, email, role, iat, exp.
type claims struct {
	Email string `json:"email"`
	Role  string `json:"role"`
	jwt.RegisteredClaims
}

// issue signs a token for u.
func (s *Server) issue(u *User) (string, error) {
	now := s.now()
	c := claims{
		Email: u.Email,
		Role:  u.Role,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   u.ID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.ttl)),
		},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return tok, nil
}

// auth checks the bearer token: HS256 only, signed with our key, with an
// exp that has not passed, for a user that exists.
func (s *Server) auth(r *http.Request) (*User, *claims, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > maxToken {
		return nil, nil, false
	}
	var c claims
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	t, err := p.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return s.key, nil })
	if err != nil || !t.Valid {
		return nil, nil, false
	}
	u := s.byID[c.Subject]
	if u == nil {
		return nil, nil, false
	}
	return u, &c, true
}
