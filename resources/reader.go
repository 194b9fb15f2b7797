package resources

import (
	"context"
	"crypto/cipher"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/azaion/loader/resources/aescbc"
	"github.com/azaion/loader/resources/bufpool"
)

// BigPart is a big part's ciphertext, read at any offset. Implementations are
// safe for parallel calls and return an error with every short read.
type BigPart interface {
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
}

// Reader is the random-access decrypting reader of PROTOCOL §1: plaintext at
// any offset from the small part and a BigPart, reading only the ciphertext
// blocks that cover the range plus the one before it. It is safe for parallel
// calls and never retains the caller's buffer.
type Reader struct {
	block     *aescbc.Block
	small     []byte
	big       BigPart
	cipherLen int64
	size      int64
	ahead     *readAhead // nil: every read goes straight to big
}

// NewReader checks that small and a big part of bigLen bytes make a valid
// split ciphertext, reads its last two blocks to learn the padding, and
// returns a Reader over the plaintext.
func NewReader(ctx context.Context, key []byte, small []byte, big BigPart, bigLen int64) (*Reader, error) {
	block, err := aescbc.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	n := int64(len(small)) + bigLen
	if n < 2*BlockSize || n%BlockSize != 0 || bigLen < 0 {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes", ErrDecrypt, n)
	}
	if SmallLen(n) != int64(len(small)) {
		return nil, fmt.Errorf("%w: small part of %d bytes does not fit a ciphertext of %d", ErrDecrypt, len(small), n)
	}
	r := &Reader{block: block, small: small, big: big, cipherLen: n}
	tail := make([]byte, 2*BlockSize)
	if err := r.readCipher(ctx, tail, n-2*BlockSize); err != nil {
		return nil, err
	}
	last := make([]byte, BlockSize)
	aescbc.NewCBCDecrypter(block, tail[:BlockSize]).CryptBlocks(last, tail[BlockSize:])
	pad, err := padLen(last)
	if err != nil {
		return nil, err
	}
	r.size = n - BlockSize - int64(pad)
	r.ahead = newReadAhead(r)
	return r, nil
}

// NewReaderSize is NewReader for a version whose plaintext size is already
// known (from an earlier NewReader), so that opening it reads nothing.
func NewReaderSize(key []byte, small []byte, big BigPart, bigLen, size int64) (*Reader, error) {
	block, err := aescbc.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	n := int64(len(small)) + bigLen
	if n < 2*BlockSize || n%BlockSize != 0 || SmallLen(n) != int64(len(small)) || size > n-BlockSize-1 || size < n-2*BlockSize {
		return nil, fmt.Errorf("%w: size %d does not fit a ciphertext of %d bytes", ErrDecrypt, size, n)
	}
	r := &Reader{block: block, small: small, big: big, cipherLen: n, size: size}
	r.ahead = newReadAhead(r)
	return r, nil
}

// Size is the exact plaintext size.
func (r *Reader) Size() int64 { return r.size }

// CipherLen is the whole ciphertext's length, small and big part together.
func (r *Reader) CipherLen() int64 { return r.cipherLen }

// readCipher fills p with the ciphertext at off, from the small part and then
// the big part.
func (r *Reader) readCipher(ctx context.Context, p []byte, off int64) error {
	return r.readCipherFrom(ctx, r.big, p, off)
}

// readCipherFrom is readCipher with big read from src.
func (r *Reader) readCipherFrom(ctx context.Context, src BigPart, p []byte, off int64) error {
	if k := int64(len(r.small)); off < k {
		c := copy(p, r.small[off:])
		p, off = p[c:], k
	}
	if len(p) == 0 {
		return nil
	}
	n, err := src.ReadAt(ctx, p, off-int64(len(r.small)))
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = fmt.Errorf("%w: big part ends %d bytes early", ErrDecrypt, len(p)-n)
	}
	return err
}

// parallelMin is the least ciphertext one goroutine decrypts in a large
// read. aescbc decrypts a MiB in about 0.15 ms, not much more than waking
// goroutines costs on a VM, and the read-ahead decrypts several chunks at
// once already: only reads of several MiB are cut.
const parallelMin = 1 << 20

// cipherBufs keeps ciphertext buffers large enough for a read-ahead chunk
// (chunk 0's, with the small part, is the largest) and a 1 MiB FUSE read.
var cipherBufs = bufpool.New(aheadChunk+MaxSmallLen+3*BlockSize, 4)

// ReadAt reads plaintext at off. Past the end it returns io.EOF, with every
// short read. Sequential reads are served from chunks decrypted ahead of
// them (see readAhead); other reads decrypt just the blocks they cover.
func (r *Reader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if r.ahead == nil || off < 0 || off >= r.size || len(p) == 0 {
		return r.readAt(ctx, r.big, p, off)
	}
	s, err := r.ahead.span(ctx, len(p), off, func() ([]byte, func()) { return p, nil })
	n := 0
	for _, b := range s.Bytes {
		if len(b) > 0 && &b[0] != &p[n] { // a chunk's bytes, not p's own
			copy(p[n:], b)
		}
		n += len(b)
	}
	s.Release()
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

// Span is plaintext read at an offset: its bytes in order, in one or more
// slices, which stay valid until Release.
type Span struct {
	Bytes   [][]byte
	release func()
}

// Len is the number of bytes in the span.
func (s Span) Len() int {
	n := 0
	for _, b := range s.Bytes {
		n += len(b)
	}
	return n
}

// Release ends the use of the span's bytes.
func (s Span) Release() {
	if s.release != nil {
		s.release()
	}
}

// ReadSpan reads up to n bytes of plaintext at off as ReadAt does, without
// copying what read-ahead has decrypted: a sequential read's bytes come as
// slices of the chunks that hold them, and any other read is decrypted into
// a buffer from bufs (of at least n bytes). Either way the bytes are the
// span's until Release, which hands them back. A short span ends with
// io.EOF; on any other error the span is empty and holds nothing.
func (r *Reader) ReadSpan(ctx context.Context, n int, off int64, bufs *bufpool.Pool) (Span, error) {
	into := func() ([]byte, func()) {
		bp := bufs.Get(n)
		return *bp, func() { bufs.Put(bp) }
	}
	var s Span
	var err error
	if r.ahead != nil && off >= 0 && off < r.size && n > 0 {
		s, err = r.ahead.span(ctx, n, off, into)
	} else {
		s, err = r.readInto(ctx, n, off, into)
	}
	if err == nil && s.Len() < n {
		err = io.EOF
	}
	return s, err
}

// readInto decrypts n bytes at off into the buffer into gives, as a Span
// that frees it (the function into returns with it, when not nil).
func (r *Reader) readInto(ctx context.Context, n int, off int64, into func() ([]byte, func())) (Span, error) {
	p, free := into()
	m, err := r.readAt(ctx, r.big, p[:n], off)
	if err != nil && err != io.EOF {
		if free != nil {
			free()
		}
		return Span{}, err
	}
	return Span{Bytes: [][]byte{p[:m]}, release: free}, err
}

// ReadyAt is ReadSpan for n bytes at off that read-ahead has decrypted
// already: it never waits, and when the bytes are not at hand it returns
// false and leaves the Reader as it was. Bytes short of n mean the end.
func (r *Reader) ReadyAt(ctx context.Context, n int, off int64) (Span, bool) {
	if r.ahead == nil || off < 0 || off >= r.size || n <= 0 {
		return Span{}, false
	}
	return r.ahead.ready(ctx, n, off)
}

// inPlaceLen is the buffer readInPlace needs for plaintext [lo, hi).
func inPlaceLen(lo, hi int64) int64 {
	return ((hi-1)/BlockSize - lo/BlockSize + 2) * BlockSize
}

// readInPlace reads the ciphertext of plaintext [lo, hi) (lo on a block,
// hi ≤ size) from src into buf (inPlaceLen bytes at least) and decrypts it
// there, returning the plaintext as a slice of buf.
func (r *Reader) readInPlace(ctx context.Context, src BigPart, buf []byte, lo, hi int64) ([]byte, error) {
	first := lo / BlockSize
	buf = buf[:inPlaceLen(lo, hi)]
	if err := r.readCipherFrom(ctx, src, buf, first*BlockSize); err != nil {
		return nil, err
	}
	r.decrypt(buf)
	return buf[BlockSize+lo-first*BlockSize:][:hi-lo], nil
}

// readAt reads plaintext at off, the big part's ciphertext from src.
func (r *Reader) readAt(ctx context.Context, src BigPart, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at %d: negative offset", off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), r.size)
	first, last := off/BlockSize, (end-1)/BlockSize
	// Plaintext block i is D(C[i+1]) XOR C[i], C[0] being the IV.
	clen := int((last - first + 2) * BlockSize)
	bp := cipherBufs.Get(clen)
	defer cipherBufs.Put(bp)
	buf := *bp
	if err := r.readCipherFrom(ctx, src, buf, first*BlockSize); err != nil {
		return 0, err
	}
	if off == first*BlockSize && len(p) >= clen-BlockSize {
		// Block-aligned and p holds every block: decrypt straight into p
		// (io.ReaderAt lets a read use all of p).
		r.decryptTo(p[:clen-BlockSize], buf)
		n := int(end - off)
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	}
	r.decrypt(buf)
	n := copy(p, buf[BlockSize+off-first*BlockSize:][:end-off])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// decrypt turns buf (an IV block and the ciphertext after it) into plaintext
// in place, from buf[BlockSize:]. Large buffers are cut into segments that
// decrypt on several cores: CBC decryption needs only the previous ciphertext
// block, which each segment's decrypter copies before any segment starts.
func (r *Reader) decrypt(buf []byte) { r.decryptTo(buf[BlockSize:], buf) }

// decryptTo decrypts buf (an IV block and the ciphertext after it) into dst,
// which is either buf[BlockSize:] itself or does not overlap buf.
func (r *Reader) decryptTo(dst, buf []byte) {
	body := len(buf) - BlockSize
	segs := min(runtime.GOMAXPROCS(0), body/parallelMin)
	if segs <= 1 {
		aescbc.NewCBCDecrypter(r.block, buf[:BlockSize]).CryptBlocks(dst, buf[BlockSize:])
		return
	}
	step := (body / segs) &^ (BlockSize - 1)
	// Build every decrypter before any segment starts: each copies its IV,
	// the ciphertext block that the segment before it overwrites.
	ds := make([]cipher.BlockMode, segs)
	for s := range ds {
		ds[s] = aescbc.NewCBCDecrypter(r.block, buf[s*step:s*step+BlockSize])
	}
	var wg sync.WaitGroup
	for s, d := range ds {
		lo, hi := s*step, (s+1)*step
		if s == segs-1 {
			hi = body
		}
		seg, out := buf[BlockSize+lo:BlockSize+hi], dst[lo:hi]
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.CryptBlocks(out, seg)
		}()
	}
	wg.Wait()
}

// At binds the Reader to ctx as an io.ReaderAt, for io.NewSectionReader and
// friends.
func (r *Reader) At(ctx context.Context) io.ReaderAt { return readerAt{r, ctx} }

type readerAt struct {
	r   *Reader
	ctx context.Context
}

func (a readerAt) ReadAt(p []byte, off int64) (int, error) { return a.r.ReadAt(a.ctx, p, off) }

// BytesPart is a BigPart held in memory.
type BytesPart []byte

// ReadAt reads from the bytes.
func (b BytesPart) ReadAt(_ context.Context, p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
