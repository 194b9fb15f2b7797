package unlock

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/azaion/loader/resources"
)

// stepError is a failure of one step of the task.
type stepError struct {
	step State
	err  error
}

func (e *stepError) Error() string { return string(e.step) + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func failAt(step State, format string, args ...any) error {
	return &stepError{step: step, err: fmt.Errorf(format, args...)}
}

// run is one unlock, from login to ready or error.
func (t *Task) run(ctx context.Context, email string, password resources.Secret) {
	var fragment []byte
	err := t.steps(ctx, email, password, &fragment)
	if err == nil {
		t.enter(StateReady)
		return
	}
	step := StateError
	var se *stepError
	if errors.As(err, &se) {
		step = se.step
	}
	msg := redact(err.Error(), password.Reveal(), fragment)
	t.update(func(s *Status) {
		s.State, s.Step, s.Error = StateError, string(step), &msg
	})
	t.log.Error("unlock: failed", "step", step, "error", msg)
}

// steps logs in, downloads the key fragment (kept in *fragment so that run
// can redact it from messages), and loads the archive.
func (t *Task) steps(ctx context.Context, email string, password resources.Secret, fragment *[]byte) error {
	client := t.cfg.NewClient()
	if client == nil {
		return failAt(StateAuthenticating, "no Resource API client configured")
	}
	sctx, cancel := context.WithTimeout(ctx, t.cfg.StepTimeout)
	err := client.Login(sctx, email, password.Reveal())
	cancel()
	if err != nil {
		return failAt(StateAuthenticating, "log in to the Resource API: %w", err)
	}

	t.enter(StateDownloadingKey)
	sctx, cancel = context.WithTimeout(ctx, t.cfg.StepTimeout)
	frag, err := client.KeyFragment(sctx)
	cancel()
	*fragment = frag
	if err != nil {
		return failAt(StateDownloadingKey, "download the key fragment: %w", err)
	}
	if len(frag) == 0 {
		return failAt(StateDownloadingKey, "the Resource API sent an empty key fragment")
	}

	t.enter(StateDecrypting)
	if err := t.load(ctx, resources.AESKey(string(frag))); err != nil {
		return err
	}
	if missing := t.missingImages(ctx); len(missing) > 0 {
		return failAt(StateLoadingImages, "docker load succeeded but the archive lacks images %s", strings.Join(missing, ", "))
	}
	return nil
}

// redact removes the password and the key fragment (raw, hex, Base64) and
// the key derived from it from msg, should any error on the way have
// carried one. Secrets shorter than 4 bytes are not searched for: they would
// only garble the message.
func redact(msg, password string, fragment []byte) string {
	secrets := []string{password}
	if len(fragment) > 0 {
		key := resources.AESKey(string(fragment))
		secrets = append(secrets, string(fragment),
			hex.EncodeToString(fragment), base64.StdEncoding.EncodeToString(fragment),
			string(key), hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key))
	}
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}
