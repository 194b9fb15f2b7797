package resources

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/azaion/loader/resources/cdn"
)

// bindWait is how long an open waits, when the small part is not the one
// the big part was published with, before it asks both stores once more:
// an upload may be between storing the small part and publishing the big
// part (PROTOCOL §4, "Upload order"), a window of one server-side copy.
const bindWait = 500 * time.Millisecond

// errMismatch: the small part and the big part are of different versions.
var errMismatch = errors.New("the small part is not the one the big part was published with")

// bind checks the small part an open is about to merge against the big
// part's azaion-small-sha256 metadata (PROTOCOL §4, "Binding the two parts
// of one version"), wherever the small part came from. On a mismatch it
// waits bindWait and fetches both the small part and the big part's stat
// once more, and returns the pair when it matches; otherwise the open
// fails with an ErrUpstream error (EIO on the mount, 502 on /load), never
// with bytes of two versions. A big part without the metadata is taken as
// it is, as before the binding existed.
func (s *Store) bind(ctx context.Context, sess *session, folder, name string, small []byte, obj cdn.Object) ([]byte, cdn.Object, error) {
	want := obj.SmallSHA256()
	if want == "" || want == hashHex(small) {
		return small, obj, nil
	}
	s.log.Warn("small part and big part differ, asking again", "folder", folder, "name", name, "etag", obj.ETag)
	t := time.NewTimer(bindWait)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return nil, cdn.Object{}, ctx.Err()
	}
	type stat struct {
		obj cdn.Object
		err error
	}
	stated := make(chan stat, 1)
	go func() {
		o, err := sess.cdn.Stat(ctx, folder, name)
		stated <- stat{o, err}
	}()
	small, gerr := s.get(ctx, sess, folder, name+".small")
	st := <-stated
	switch {
	case ctx.Err() != nil:
		return nil, cdn.Object{}, ctx.Err()
	case gerr != nil:
		return nil, cdn.Object{}, fmt.Errorf("%w: %w (the small part again: %v)", ErrUpstream, errMismatch, gerr)
	case st.err != nil:
		return nil, cdn.Object{}, fmt.Errorf("%w: %w (the big part again: %v)", ErrUpstream, errMismatch, st.err)
	}
	if want := st.obj.SmallSHA256(); want != "" && want != hashHex(small) {
		return nil, cdn.Object{}, fmt.Errorf("%w: %w", ErrUpstream, errMismatch)
	}
	return small, st.obj, nil
}
