package resources

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/azaion/loader/resources/bufpool"
)

// memReader is a Reader over a fresh random plaintext of size bytes, its
// big part in memory.
func memReader(t *testing.T, size int64) ([]byte, *Reader) {
	t.Helper()
	plain, small, big := splitOf(t, size)
	r, err := NewReader(context.Background(), testKey, small, BytesPart(big), int64(len(big)))
	if err != nil {
		t.Fatal(err)
	}
	return plain, r
}

// spanBytes is a span's bytes in one piece.
func spanBytes(s Span) []byte {
	var out []byte
	for _, b := range s.Bytes {
		out = append(out, b...)
	}
	return out
}

// waitReady polls ReadyAt until the bytes are at hand or a second passes.
func waitReady(t *testing.T, r *Reader, n int, off int64) Span {
	t.Helper()
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if s, ok := r.ReadyAt(context.Background(), n, off); ok {
			return s
		}
	}
	t.Fatalf("ReadyAt(%d at %d): not at hand after a second", n, off)
	return Span{}
}

// TestReadSpanSequential: a sequential read through ReadSpan in FUSE-sized
// pieces, which fall across the read-ahead's chunks, gives the exact
// plaintext, some of it as two slices of two chunks; the end is io.EOF.
func TestReadSpanSequential(t *testing.T) {
	ctx := context.Background()
	plain, r := memReader(t, 9<<20+5)
	const piece = 1 << 20
	bufs := bufpool.New(piece, 1)
	// A read that does not start a stream is decrypted into a buffer of
	// bufs, which Release gives back.
	s, err := r.ReadSpan(ctx, piece, 5<<20, bufs)
	if err != nil || len(s.Bytes) != 1 || !bytes.Equal(spanBytes(s), plain[5<<20:6<<20]) {
		t.Fatalf("ReadSpan at 5 MiB of a fresh reader: %v, %d slices; want one, with its bytes", err, len(s.Bytes))
	}
	first := &s.Bytes[0][0]
	s.Release()
	if again := bufs.Get(piece); &(*again)[0] != first {
		t.Fatal("the span's buffer did not go back to the pool on Release")
	}
	r.ahead.drop()
	var out []byte
	multi := 0
	for off := int64(0); off < r.Size(); {
		s, err := r.ReadSpan(ctx, piece, off, bufs)
		n := s.Len()
		if err != nil && !(err == io.EOF && off+int64(n) == r.Size()) {
			t.Fatalf("ReadSpan at %d: %d bytes, %v", off, n, err)
		}
		if len(s.Bytes) > 1 {
			multi++
		}
		out = append(out, spanBytes(s)...)
		s.Release()
		off += int64(n)
	}
	if !bytes.Equal(out, plain) {
		t.Fatal("ReadSpan's bytes differ from the plaintext")
	}
	if multi == 0 {
		t.Fatal("no span came as slices of two chunks: the reads were copied")
	}
}

// TestReadyAt: ReadyAt serves only bytes decrypted already, never waits,
// and a refusal leaves the stream as it was: the read after it is still
// sequential and served from the chunks.
func TestReadyAt(t *testing.T) {
	ctx := context.Background()
	plain, r := memReader(t, 9<<20+5)
	const piece = 1 << 20
	if _, ok := r.ReadyAt(ctx, piece, 0); ok {
		t.Fatal("ReadyAt on a fresh reader: served, want not at hand")
	}
	// Start the stream: three sequential reads open the window ahead.
	buf := make([]byte, piece)
	for off := int64(0); off < 3*piece; off += piece {
		if n, err := r.ReadAt(ctx, buf, off); err != nil || !bytes.Equal(buf[:n], plain[off:off+piece]) {
			t.Fatalf("ReadAt at %d: %d, %v or other bytes", off, n, err)
		}
	}
	// A jump is refused and changes nothing.
	state := func() [3]int64 {
		r.ahead.mu.Lock()
		defer r.ahead.mu.Unlock()
		return [3]int64{r.ahead.next, r.ahead.window, r.ahead.lastK}
	}
	before := state()
	if _, ok := r.ReadyAt(ctx, piece, 8<<20); ok { // past aheadSlack from where the stream is
		t.Fatal("ReadyAt of a jump: served, want not at hand")
	}
	if after := state(); after != before {
		t.Fatalf("a refused ReadyAt changed the stream: (next, window, lastK) %v, was %v", after, before)
	}
	s := waitReady(t, r, piece, 3*piece)
	if got := spanBytes(s); !bytes.Equal(got, plain[3*piece:4*piece]) {
		t.Fatal("ReadyAt's bytes differ from the plaintext")
	}
	s.Release()
	// At the end, the span is short.
	bufs := bufpool.New(piece, 1)
	for off := int64(4 * piece); ; off += piece {
		s, err := r.ReadSpan(ctx, piece, off, bufs)
		n := s.Len()
		if !bytes.Equal(spanBytes(s), plain[off:off+int64(n)]) {
			t.Fatalf("ReadSpan at %d: other bytes", off)
		}
		s.Release()
		if off+int64(n) == r.Size() {
			if err != io.EOF {
				t.Fatalf("ReadSpan to the end: %v, want io.EOF", err)
			}
			break
		}
		if err != nil {
			t.Fatalf("ReadSpan at %d: %v", off, err)
		}
	}
}

// TestSpanOutlivesItsChunk: a span held while its reader jumps away and
// reads on keeps its bytes: the chunk's buffer goes back to the pool only
// once the span is released.
func TestSpanOutlivesItsChunk(t *testing.T) {
	ctx := context.Background()
	plain, r := memReader(t, 12<<20+5)
	const piece = 1 << 20
	buf := make([]byte, piece)
	bufs := bufpool.New(piece, 1)
	var held Span
	for off := int64(0); off < 3*piece; off += piece {
		s, err := r.ReadSpan(ctx, piece, off, bufs)
		if err != nil {
			t.Fatal(err)
		}
		if off == 2*piece {
			held = s
			continue
		}
		s.Release()
	}
	if len(held.Bytes) != 2 {
		t.Fatalf("the held span is %d slices, want two of the read-ahead's chunks", len(held.Bytes))
	}
	// Jump (8 MiB is past aheadSlack from where the stream is), and read a
	// stream there: the old chunks are dropped and new ones take buffers
	// from the pool.
	for off := int64(8 * piece); off < 12*piece; off += piece {
		n, err := r.ReadAt(ctx, buf, off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], plain[off:off+int64(n)]) {
			t.Fatalf("ReadAt at %d: other bytes", off)
		}
	}
	r.ahead.drop()
	if !bytes.Equal(spanBytes(held), plain[2*piece:3*piece]) {
		t.Fatal("a held span's bytes changed after its chunks were dropped")
	}
	held.Release()
}

// TestChunksFitPooledBuffers: every read-ahead chunk, chunk 0 with the
// small part's plaintext too, fits the pooled plaintext and ciphertext
// buffers, so that prefilled buffers serve the first read and none is
// dropped as too small.
func TestChunksFitPooledBuffers(t *testing.T) {
	_, r := memReader(t, 9<<20+5)
	if len(r.small) != MaxSmallLen {
		t.Fatalf("small part of %d bytes, want the largest, %d", len(r.small), MaxSmallLen)
	}
	a := r.ahead
	for k := int64(0); k < a.chunks; k++ {
		lo, hi := a.start(k), a.start(k+1)
		// As Reader.readAt sizes its ciphertext: the blocks and the one before.
		clen := ((hi-1)/BlockSize - lo/BlockSize + 2) * BlockSize
		if hi-lo > int64(chunkBufs.Size()) {
			t.Errorf("chunk %d: %d bytes of plaintext, pooled buffers hold %d", k, hi-lo, chunkBufs.Size())
		}
		if clen > int64(cipherBufs.Size()) {
			t.Errorf("chunk %d: %d bytes of ciphertext, pooled buffers hold %d", k, clen, cipherBufs.Size())
		}
	}
}
