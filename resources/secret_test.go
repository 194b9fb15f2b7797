package resources

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const secretValue = "hunter2-s3cr3t"

func TestSecretFmt(t *testing.T) {
	s := Secret(secretValue)
	type login struct {
		Email    string
		Password Secret
	}
	for _, f := range []string{"%v", "%s", "%#v", "%+v", "%q", "%x", "%X", "%d", "%10s", "%.3s"} {
		for _, arg := range []any{s, &s, login{"a@b.c", s}, &login{"a@b.c", s}, []Secret{s}, map[string]Secret{"k": s}} {
			out := fmt.Sprintf(f, arg)
			if strings.Contains(out, secretValue) || strings.Contains(out, fmt.Sprintf("%x", secretValue)) || strings.Contains(out, fmt.Sprintf("%X", secretValue)) {
				t.Errorf("Sprintf(%q, %T) = %s: shows the secret", f, arg, out)
			}
		}
	}
	if got := fmt.Sprint(s); got != "[redacted]" {
		t.Errorf("Sprint = %q", got)
	}
	if err := fmt.Errorf("login %v: %w", s, errors.New("x")); strings.Contains(err.Error(), secretValue) {
		t.Errorf("error shows the secret: %v", err)
	}
	if s.Reveal() != secretValue {
		t.Errorf("Reveal = %q", s.Reveal())
	}
}

func TestSecretSlog(t *testing.T) {
	s := Secret(secretValue)
	type creds struct {
		Email    string
		Password Secret
	}
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		for i, attr := range []slog.Attr{
			slog.Any("password", s),
			slog.Any("password", &s),
			slog.Group("login", slog.Any("password", s)),
			slog.Any("creds", creds{"a@b.c", s}),
			slog.Any("list", []Secret{s}),
		} {
			var b bytes.Buffer
			slog.New(h(&b)).Info("login", attr)
			if strings.Contains(b.String(), secretValue) || !strings.Contains(b.String(), "redacted") {
				t.Errorf("%s handler, attr %d: %s", name, i, strings.TrimSpace(b.String()))
			}
		}
		var b bytes.Buffer
		slog.New(h(&b)).With("key", s).Error("fail", "err", fmt.Errorf("with %v", s))
		if strings.Contains(b.String(), secretValue) {
			t.Errorf("%s handler, With: %s", name, b.String())
		}
	}
}

// TestSecretJSON: a struct holding a Secret marshalled to JSON (the JSON log
// handler does that for any struct value) shows no secret.
func TestSecretJSON(t *testing.T) {
	b, err := json.Marshal(struct{ Password Secret }{Secret(secretValue)})
	if err != nil || strings.Contains(string(b), secretValue) {
		t.Errorf("json.Marshal = %s, %v", b, err)
	}
}
