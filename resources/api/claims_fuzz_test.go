package api

import (
	"strings"
	"testing"
	"time"
)

// FuzzClaims: a token from /login is untrusted. parseClaims never panics,
// refuses what is too long or not three header-safe parts before decoding,
// and what it accepts gives a refresh decision without panicking: a token
// without exp never expires here, alg "none" is only read, never trusted.
//
//	go test -run '^$' -fuzz '^FuzzClaims$' -fuzztime 1m ./resources/api/
func FuzzClaims(f *testing.F) {
	f.Add("")
	f.Add("a.b.c")
	// {"alg":"none"} . {"sub":"7","email":"pilot@azaion.test"} . (no signature)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiI3IiwiZW1haWwiOiJwaWxvdEBhemFpb24udGVzdCJ9.")
	// {"alg":"HS256","typ":"JWT"} . {"exp":1,"iat":2} . sig
	f.Add("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjEsImlhdCI6Mn0.c2ln")
	// exp as a string, a huge number, a negative one
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOiJ0b21vcnJvdyJ9.c2ln")
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjFlMzA4fQ.c2ln")
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOi05OTk5OTk5OTk5OX0.c2ln")
	f.Add(strings.Repeat(".", 1<<20))
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := parseClaims(tok)
		if err != nil {
			if c != (Claims{}) {
				t.Fatalf("error %v with claims %+v", err, c)
			}
			if len(tok) > 8 && strings.Contains(err.Error(), tok) {
				t.Fatal("the error quotes the token")
			}
			return
		}
		if len(tok) > maxToken || strings.Count(tok, ".") != 2 {
			t.Fatalf("accepted a token of %d bytes with %d dots", len(tok), strings.Count(tok, "."))
		}
		now := time.Now()
		if c.ExpiresAt.IsZero() && expiring(c, now) {
			t.Fatal("a token without exp counts as expiring")
		}
		if m := refreshMargin(c); m < 0 || m > 30*time.Second {
			t.Fatalf("refresh margin %v", m)
		}
	})
}
