package resources

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// streamSizes cross the chunk boundary of both streams.
var streamSizes = []int{0, 1, 15, 16, 17, streamChunk - 16, streamChunk - 1, streamChunk, streamChunk + 1, 2*streamChunk + 33}

func encryptStream(t *testing.T, key []byte, src io.Reader) []byte {
	t.Helper()
	er, err := EncryptReader(key, src)
	if err != nil {
		t.Fatal(err)
	}
	c, err := io.ReadAll(er)
	if err != nil {
		t.Fatalf("EncryptReader: %v", err)
	}
	return c
}

// TestEncryptReaderIsEncrypt checks the stream byte for byte against the
// whole-buffer envelope with the same IV (itself pinned by golden.json).
func TestEncryptReaderIsEncrypt(t *testing.T) {
	for _, size := range streamSizes {
		plain := patternPlain(int64(size))
		for name, src := range map[string]io.Reader{
			"whole":    bytes.NewReader(plain),
			"one byte": iotest.OneByteReader(bytes.NewReader(plain)),
			"half":     iotest.HalfReader(bytes.NewReader(plain)),
			"data+EOF": iotest.DataErrReader(bytes.NewReader(plain)),
		} {
			c := encryptStream(t, testKey, src)
			want, _ := encryptIV(testKey, c[:BlockSize], plain)
			if !bytes.Equal(c, want) {
				t.Fatalf("size %d, %s source: stream ciphertext (%d bytes) differs from encryptIV (%d bytes)", size, name, len(c), len(want))
			}
		}
	}
}

func TestDecryptReaderOneByte(t *testing.T) {
	for _, size := range streamSizes {
		plain := patternPlain(int64(size))
		c, _ := encryptIV(testKey, testIV, plain)
		// Ciphertext in one byte at a time, plaintext out one byte at a time.
		dr, _ := DecryptReader(testKey, iotest.OneByteReader(bytes.NewReader(c)))
		got, err := io.ReadAll(iotest.OneByteReader(dr))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: one-byte stream = %d bytes, %v", size, len(got), err)
		}
		// iotest.TestReader checks the io.Reader contract on the plaintext.
		dr, _ = DecryptReader(testKey, iotest.HalfReader(bytes.NewReader(c)))
		if err := iotest.TestReader(dr, plain); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
	}
}

func decryptStream(key, c []byte) ([]byte, error) {
	dr, err := DecryptReader(key, bytes.NewReader(c))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(dr)
}

func TestDecryptReaderRejects(t *testing.T) {
	for _, c := range rejectCases(t) {
		if _, err := decryptStream(testKey, c.c); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: DecryptReader err %v, want ErrDecrypt", c.name, err)
		}
	}
	// A bad padding found only in a later chunk: the bytes before it may
	// have been handed out, but the stream must end with ErrDecrypt, and
	// never with the bad last block.
	body := 2*streamChunk + 5*BlockSize
	for _, last := range []string{"abcdefghijklmno\x00", "abcdefghijklmno\x11", "abcdefghijk\x05\x05\x04\x05\x05"} {
		c := rawCBC(t, testKey, testIV, withLast(body, last))
		got, err := decryptStream(testKey, c)
		if !errors.Is(err, ErrDecrypt) || len(got) > body {
			t.Errorf("pad %q after %d bytes: %d bytes, err %v; want at most %d, ErrDecrypt", last[11:], body, len(got), err, body)
		}
	}
}

func TestDecryptReaderWrongKey(t *testing.T) {
	for _, blocks := range []int{0, 3, streamChunk / BlockSize, 2*streamChunk/BlockSize + 7} {
		c, plainLen := wrongKeyCipher(t, blocks)
		if got, err := decryptStream(testKey, c); err != nil || len(got) != plainLen {
			t.Fatalf("%d blocks, right key: %d bytes, %v; want %d", blocks, len(got), err, plainLen)
		}
		if got, err := decryptStream(wrongKey, c); !errors.Is(err, ErrDecrypt) || len(got) >= plainLen {
			t.Fatalf("%d blocks, wrong key: %d bytes, %v; want fewer than %d, ErrDecrypt", blocks, len(got), err, plainLen)
		}
	}
}

func TestDecryptReaderTruncated(t *testing.T) {
	plain := patternPlain(2*streamChunk + 100)
	c, _ := encryptIV(testKey, testIV, plain)
	for _, n := range []int{0, 1, 15, 16, 17, 31, 33, streamChunk + 5, len(c) - 15, len(c) - 1} {
		got, err := decryptStream(testKey, c[:n])
		if !errors.Is(err, ErrDecrypt) || len(got) >= len(plain) {
			t.Errorf("first %d of %d bytes: %d bytes, err %v; want ErrDecrypt", n, len(c), len(got), err)
		}
	}
}

// failAfter gives the first n bytes of data, then err.
type failAfter struct {
	data []byte
	n    int
	err  error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	k := copy(p[:min(len(p), f.n)], f.data)
	f.data, f.n = f.data[k:], f.n-k
	return k, nil
}

var errBoom = errors.New("boom: the source broke")

// TestStreamsPassSourceErrors: an error from the source mid-stream ends
// either stream with that error, never with a clean EOF.
func TestStreamsPassSourceErrors(t *testing.T) {
	checkSourceError(t, errBoom)
	checkSourceError(t, io.ErrNoProgress)
}

// TestStreamsPassUnexpectedEOF: io.ErrUnexpectedEOF is what an HTTP body
// (request or response) returns when the peer stops before Content-Length;
// it is an error like any other, not the end of the plaintext.
func TestStreamsPassUnexpectedEOF(t *testing.T) {
	checkSourceError(t, io.ErrUnexpectedEOF)
}

func checkSourceError(t *testing.T, srcErr error) {
	t.Helper()
	plain := patternPlain(3*streamChunk + 50)
	c, _ := encryptIV(testKey, testIV, plain)
	for _, n := range []int{0, 5, 16, 32, streamChunk, streamChunk + 48, 2*streamChunk + 7} {
		er, err := EncryptReader(testKey, &failAfter{data: plain, n: n, err: srcErr})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(er); !errors.Is(err, srcErr) {
			t.Errorf("encrypt, %v after %d bytes: %d bytes out, err %v; want %v", srcErr, n, len(got), err, srcErr)
		}
		dr, _ := DecryptReader(testKey, &failAfter{data: c, n: n, err: srcErr})
		if got, err := io.ReadAll(dr); !errors.Is(err, srcErr) {
			t.Errorf("decrypt, %v after %d bytes: %d bytes out, err %v; want %v", srcErr, n, len(got), err, srcErr)
		}
	}
}

// TestDecryptReaderSourceCutAtBlock: a source that fails at a block
// boundary where the plaintext so far happens to end in a valid padding
// (here: a 1) must not pass for a complete, shorter resource. An HTTP body
// cut short returns exactly io.ErrUnexpectedEOF.
func TestDecryptReaderSourceCutAtBlock(t *testing.T) {
	plain := []byte("fifteen bytes..\x01 and the rest of the resource")
	c, _ := encryptIV(testKey, testIV, plain)
	dr, _ := DecryptReader(testKey, &failAfter{data: c, n: 2 * BlockSize, err: io.ErrUnexpectedEOF})
	got, err := io.ReadAll(dr)
	if err == nil {
		t.Fatalf("source cut after 32 of %d bytes gave a clean end and %q", len(c), got)
	}
}

// TestEncryptReaderSourceCut: an upload whose body breaks must not turn into
// a valid envelope of the bytes that arrived.
func TestEncryptReaderSourceCut(t *testing.T) {
	plain := patternPlain(1000)
	er, _ := EncryptReader(testKey, &failAfter{data: plain, n: 100, err: io.ErrUnexpectedEOF})
	c, err := io.ReadAll(er)
	if err == nil {
		got, derr := DecryptKey(testKey, c)
		t.Fatalf("source cut after 100 of 1000 bytes: clean envelope of %d bytes (decrypts to %d bytes, %v)", len(c), len(got), derr)
	}
}

func TestStreamBadKey(t *testing.T) {
	if _, err := EncryptReader([]byte("short"), bytes.NewReader(nil)); err == nil {
		t.Error("EncryptReader with a 5-byte key succeeded")
	}
	if _, err := DecryptReader([]byte("short"), bytes.NewReader(nil)); err == nil {
		t.Error("DecryptReader with a 5-byte key succeeded")
	}
}
