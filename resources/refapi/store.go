package refapi

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
)

// rootDir is the directory of the empty folder: it starts with '.', so no
// valid folder name can be it. Temporary files start with '.' too.
const rootDir = ".root"

// store keeps files as <dir>/<folder>/<name>. Every access goes through an
// os.Root, so no name and no symlink can reach outside dir.
type store struct{ dir string }

func newStore(dir string) (*store, error) {
	if dir == "" {
		return nil, errors.New("data dir is required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	return &store{dir: dir}, nil
}

func folderDir(folder string) string {
	if folder == "" {
		return rootDir
	}
	return folder
}

// put writes r to folder/name through a temporary file and a rename, so a
// reader sees the old or the new bytes, never a part.
func (st *store) put(folder, name string, r io.Reader) error {
	sf, err := st.stage(folder, name, r)
	if err != nil {
		return err
	}
	return sf.commit()
}

// staged is a file written to a temporary name, not yet visible.
type staged struct {
	root       *os.Root
	tmp, final string
}

// stage writes r to a temporary file beside folder/name. A body over the
// request's limit gives errTooLarge, another failure to read r errBadBody. The caller must commit or abort.
func (st *store) stage(folder, name string, r io.Reader) (_ *staged, err error) {
	root, err := os.OpenRoot(st.dir)
	if err != nil {
		return nil, fmt.Errorf("open data dir: %w", err)
	}
	dir := folderDir(folder)
	if err := root.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		root.Close()
		return nil, fmt.Errorf("mkdir: %w", err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	sf := &staged{root: root, tmp: dir + "/.tmp-" + hex.EncodeToString(rnd[:]), final: dir + "/" + name}
	f, err := root.OpenFile(sf.tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("create: %w", err)
	}
	src := &srcReader{r: r}
	_, err = io.Copy(f, src)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		sf.abort()
		var mbe *http.MaxBytesError
		switch {
		case errors.As(src.err, &mbe):
			return nil, errTooLarge
		case src.err != nil:
			return nil, fmt.Errorf("%w: %w", errBadBody, src.err)
		}
		return nil, fmt.Errorf("write: %w", err)
	}
	return sf, nil
}

// srcReader remembers a failure of the reader, to tell a bad request body
// from a failing disk.
type srcReader struct {
	r   io.Reader
	err error
}

func (s *srcReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// commit renames the file into place.
func (sf *staged) commit() error {
	defer sf.root.Close()
	if err := sf.root.Rename(sf.tmp, sf.final); err != nil {
		_ = sf.root.Remove(sf.tmp)
		return fmt.Errorf("rename: %w", err)
	}
	return nil
}

// abort removes the temporary file.
func (sf *staged) abort() {
	_ = sf.root.Remove(sf.tmp)
	sf.root.Close()
}

// get reads folder/name; fs.ErrNotExist when there is no such file.
func (st *store) get(folder, name string) ([]byte, error) {
	root, err := os.OpenRoot(st.dir)
	if err != nil {
		return nil, fmt.Errorf("open data dir: %w", err)
	}
	defer root.Close()
	p := folderDir(folder) + "/" + name
	fi, err := root.Stat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fs.ErrNotExist
	}
	return root.ReadFile(p)
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
