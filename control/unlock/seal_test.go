package unlock

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/azaion/loader/resources"
)

func TestSealRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 15, 16, 17, 256<<10 - 1, 256 << 10, 1<<20 + 5} {
		plain := make([]byte, size)
		rand.Read(plain)
		var sealed bytes.Buffer
		var last int64
		calls := 0
		err := Seal(&sealed, bytes.NewReader(plain), testFragment, func(done int64) {
			if done <= last {
				t.Errorf("progress %d after %d", done, last)
			}
			last = done
			calls++
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := int64(sealed.Len()), resources.CipherLen(int64(size)); got != want {
			t.Errorf("size %d: archive of %d bytes, want %d", size, got, want)
		}
		if last != int64(size) || (size > 0) != (calls > 0) {
			t.Errorf("size %d: last progress %d after %d calls", size, last, calls)
		}
		// PROTOCOL §5: IV ‖ AES-256-CBC(SHA-256(fragment), IV, PKCS7(T)).
		got, err := resources.DecryptKey(resources.AESKey(string(testFragment)), sealed.Bytes())
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: decrypt = %d bytes, %v; want the plaintext", size, len(got), err)
		}
	}
}

func TestSealErrors(t *testing.T) {
	if err := Seal(io.Discard, bytes.NewReader([]byte("x")), nil, nil); err == nil || err.Error() != "seal: empty key fragment" {
		t.Errorf("empty fragment: %v", err)
	}
	boom := errors.New("disk on fire")
	if err := Seal(io.Discard, iotest.ErrReader(boom), testFragment, nil); !errors.Is(err, boom) {
		t.Errorf("read error: %v, want it wrapped", err)
	}
}
