package resources

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/azaion/loader/resources/aescbc"
)

// streamChunk is how much a stream encrypts or decrypts at a time.
const streamChunk = 256 << 10

// EncryptReader returns the envelope encrypt(key, P) of src's bytes as a
// stream: the IV, then the ciphertext, the padding added at src's end. A
// read of two blocks or more reads the plaintext straight into the caller's
// buffer and encrypts it there; smaller reads go through one chunk of
// memory.
func EncryptReader(key []byte, src io.Reader) (io.Reader, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	iv := make([]byte, BlockSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, fmt.Errorf("encrypt: iv: %w", err)
	}
	e := &encReader{src: src, mode: cipher.NewCBCEncrypter(block, iv)}
	e.out = iv
	return e, nil
}

type encReader struct {
	src   io.Reader
	mode  cipher.BlockMode
	carry [BlockSize]byte // plaintext of a partial block read last time
	held  int             // bytes in carry
	buf   []byte          // the chunk for small reads, made on the first
	out   []byte          // ciphertext ready to hand out
	done  bool
	err   error
}

func (e *encReader) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.done {
			return 0, io.EOF
		}
		if e.err != nil {
			return 0, e.err
		}
		if len(p) >= 2*BlockSize {
			// Straight into p: the copy out of a chunk of our own was a
			// fifth of an upload's memory traffic.
			return e.encrypt(p)
		}
		if e.buf == nil {
			e.buf = make([]byte, streamChunk+BlockSize)
		}
		n, _ := e.encrypt(e.buf)
		e.out = e.buf[:n]
	}
	n := copy(p, e.out)
	e.out = e.out[n:]
	return n, nil
}

// encrypt reads plaintext into p, after the partial block carried over,
// leaving room for the padding, and encrypts its whole blocks in place, or,
// at src's end, all of it with its padding. It returns how much of p is
// ciphertext; len(p) is at least 2 blocks.
func (e *encReader) encrypt(p []byte) (int, error) {
	copy(p, e.carry[:e.held])
	n, err := readFull(e.src, p[e.held:len(p)-BlockSize])
	n += e.held
	switch err {
	case nil:
		// n is at least one block: p holds two.
		whole := n &^ (BlockSize - 1)
		e.held = copy(e.carry[:], p[whole:n])
		e.mode.CryptBlocks(p[:whole], p[:whole])
		return whole, nil
	case io.EOF:
		pad := BlockSize - n%BlockSize
		for i := n; i < n+pad; i++ {
			p[i] = byte(pad)
		}
		e.mode.CryptBlocks(p[:n+pad], p[:n+pad])
		e.done = true
		return n + pad, nil
	default:
		e.err = err
		return 0, err
	}
}

// DecryptReader returns the plaintext of the envelope read from src as a
// stream. The padding is checked at src's end: a bad padding or a ciphertext
// that is not a whole number of blocks ends the stream with ErrDecrypt, and
// the last block is never handed out before it has been checked.
func DecryptReader(key []byte, src io.Reader) (io.Reader, error) {
	block, err := aescbc.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	return &decReader{src: src, block: block, buf: make([]byte, streamChunk+BlockSize)}, nil
}

type decReader struct {
	src   io.Reader
	block *aescbc.Block
	mode  cipher.BlockMode
	buf   []byte
	held  int             // ciphertext bytes held back, not yet decrypted
	carry [BlockSize]byte // they, while out is still buf's plaintext
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
		d.mode = aescbc.NewCBCDecrypter(d.block, iv)
	}
	copy(d.buf, d.carry[:d.held]) // out is empty: buf is free again
	n, err := readFull(d.src, d.buf[d.held:])
	n += d.held
	d.total += int64(n - d.held)
	switch err {
	case nil:
		// Keep the last block back: it may be the one with the padding.
		ready := n - BlockSize
		d.mode.CryptBlocks(d.buf[:ready], d.buf[:ready])
		d.out = d.buf[:ready]
		d.held = copy(d.carry[:], d.buf[ready:n])
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
