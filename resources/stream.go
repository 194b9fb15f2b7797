package resources

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"
)

// streamChunk is how much a stream encrypts or decrypts at a time.
const streamChunk = 256 << 10

// EncryptReader returns the envelope encrypt(key, P) of src's bytes as a
// stream: the IV, then the ciphertext, the padding added at src's end. It
// holds at most one chunk in memory.
func EncryptReader(key []byte, src io.Reader) (io.Reader, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	iv := make([]byte, BlockSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, fmt.Errorf("encrypt: iv: %w", err)
	}
	e := &encReader{src: src, mode: cipher.NewCBCEncrypter(block, iv), buf: make([]byte, 0, streamChunk+BlockSize)}
	e.out = iv
	return e, nil
}

type encReader struct {
	src  io.Reader
	mode cipher.BlockMode
	buf  []byte // plaintext carried over, then ciphertext ready to hand out
	out  []byte
	done bool
	err  error
}

func (e *encReader) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.done {
			return 0, io.EOF
		}
		if e.err != nil {
			return 0, e.err
		}
		e.fill()
	}
	n := copy(p, e.out)
	e.out = e.out[n:]
	return n, nil
}

// fill reads the next chunk of plaintext and encrypts its whole blocks, or,
// at src's end, the rest with its padding.
func (e *encReader) fill() {
	buf := e.buf[:cap(e.buf)-BlockSize]
	// Carry the partial block left in front of buf by the previous fill.
	carry := len(e.buf)
	n, err := readFull(e.src, buf[carry:])
	n += carry
	switch err {
	case nil:
		whole := n &^ (BlockSize - 1)
		e.mode.CryptBlocks(buf[:whole], buf[:whole])
		out := make([]byte, whole)
		copy(out, buf[:whole])
		e.buf = append(e.buf[:0], buf[whole:n]...)
		e.out = out
	case io.EOF:
		pad := BlockSize - n%BlockSize
		buf = buf[:n+pad]
		for i := n; i < len(buf); i++ {
			buf[i] = byte(pad)
		}
		e.mode.CryptBlocks(buf, buf)
		e.out = buf
		e.done = true
	default:
		e.err = err
	}
}

// DecryptReader returns the plaintext of the envelope read from src as a
// stream. The padding is checked at src's end: a bad padding or a ciphertext
// that is not a whole number of blocks ends the stream with ErrDecrypt, and
// the last block is never handed out before it has been checked.
func DecryptReader(key []byte, src io.Reader) (io.Reader, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	return &decReader{src: src, block: block, buf: make([]byte, streamChunk+BlockSize)}, nil
}

type decReader struct {
	src   io.Reader
	block cipher.Block
	mode  cipher.BlockMode
	buf   []byte
	held  int // ciphertext bytes at the front of buf, not yet decrypted
	out   []byte
	err   error
	total int64
}

func (d *decReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		d.fill()
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

func (d *decReader) fill() {
	if d.mode == nil {
		iv := make([]byte, BlockSize)
		if n, err := readFull(d.src, iv); n < BlockSize {
			d.err = err
			if err == io.EOF {
				d.err = fmt.Errorf("%w: ciphertext shorter than its IV", ErrDecrypt)
			}
			return
		}
		d.mode = cipher.NewCBCDecrypter(d.block, iv)
	}
	n, err := readFull(d.src, d.buf[d.held:])
	n += d.held
	d.total += int64(n - d.held)
	switch err {
	case nil:
		// Keep the last block back: it may be the one with the padding.
		ready := n - BlockSize
		d.mode.CryptBlocks(d.buf[:ready], d.buf[:ready])
		d.out = append(make([]byte, 0, ready), d.buf[:ready]...)
		copy(d.buf, d.buf[ready:n])
		d.held = BlockSize
	case io.EOF:
		if n == 0 || n%BlockSize != 0 {
			d.err = fmt.Errorf("%w: ciphertext is truncated (not a whole number of blocks)", ErrDecrypt)
			return
		}
		d.mode.CryptBlocks(d.buf[:n], d.buf[:n])
		pad, perr := padLen(d.buf[n-BlockSize : n])
		if perr != nil {
			d.err = perr
			return
		}
		d.out = d.buf[:n-pad]
		d.held = 0
		d.err = io.EOF
	default:
		d.err = err
	}
}

// readFull is io.ReadFull that hands back the source's own error: io.EOF
// only when the source ended, never io.ErrUnexpectedEOF for a short read,
// so that a body cut short (which says io.ErrUnexpectedEOF itself) is not
// mistaken for the end of the data.
func readFull(r io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
