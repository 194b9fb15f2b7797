package unlock

import (
	"errors"
	"fmt"
	"io"

	"github.com/azaion/loader/resources"
)

// Seal writes the image archive of PROTOCOL §5 to dst: src (a `docker save`
// tar) encrypted with SHA-256(fragment), IV first. progress, when not nil, is
// called with the number of tar bytes read so far.
func Seal(dst io.Writer, src io.Reader, fragment []byte, progress func(done int64)) error {
	if len(fragment) == 0 {
		return errors.New("seal: empty key fragment")
	}
	if progress != nil {
		src = &sealProgress{r: src, f: progress}
	}
	enc, err := resources.EncryptReader(resources.AESKey(string(fragment)), src)
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	if _, err := io.Copy(dst, enc); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	return nil
}

// sealProgress reports the bytes read through it.
type sealProgress struct {
	r    io.Reader
	f    func(int64)
	done int64
}

func (p *sealProgress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.done += int64(n)
		p.f(p.done)
	}
	return n, err
}
