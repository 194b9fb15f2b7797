package resources

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// sizedReads reads r with buffers of the sizes given, in turn, as a
// consumer such as io.ReadFull into parts of a multipart upload does.
type sizedReads struct {
	r     io.Reader
	sizes []int
	i     int
}

func (s *sizedReads) Read(p []byte) (int, error) {
	n := s.sizes[s.i%len(s.sizes)]
	s.i++
	return s.r.Read(p[:min(len(p), n)])
}

// TestEncryptReaderReadSizes: the stream is the same envelope whatever the
// sizes of the reads that take it, those that encrypt in the caller's
// buffer (two blocks and more) and those that go through the chunk, mixed.
func TestEncryptReaderReadSizes(t *testing.T) {
	mixes := [][]int{
		{1},
		{31},
		{32},
		{33, 1, 47},
		{4096, 15, 16, 17},
		{streamChunk + 5, 7},
		{1 << 20},
	}
	for _, size := range streamSizes {
		plain := patternPlain(int64(size))
		for _, mix := range mixes {
			for srcName, src := range map[string]func() io.Reader{
				"whole":    func() io.Reader { return bytes.NewReader(plain) },
				"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(plain)) },
				"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(plain)) },
			} {
				er, err := EncryptReader(testKey, src())
				if err != nil {
					t.Fatal(err)
				}
				c, err := io.ReadAll(&sizedReads{r: er, sizes: mix})
				if err != nil {
					t.Fatalf("size %d, reads %v, %s source: %v", size, mix, srcName, err)
				}
				want, _ := encryptIV(testKey, c[:BlockSize], plain)
				if !bytes.Equal(c, want) {
					t.Fatalf("size %d, reads %v, %s source: stream ciphertext (%d bytes) differs from encryptIV (%d bytes)", size, mix, srcName, len(c), len(want))
				}
			}
		}
	}
}
