// Command bigimage writes a `docker save`-style tar of one image whose
// single layer holds SIZE MiB of random bytes, for the unlock benchmark
// (peak RSS of the loader while it unlocks an archive of ≥ 200 MB). It
// needs no Docker engine.
//
// Make an archive for POST /unlock and the images setting that goes with it:
//
//	go run ./control/unlock/dockertest/cmd/bigimage -size 256 -o /tmp/big.tar
//	printf 'bench-fragment' >/tmp/fragment.bin   # what the Resource API serves
//	go run ./cmd/azaion-loader seal --fragment /tmp/fragment.bin -o /tmp/images.enc /tmp/big.tar
//	# loader: AZAION_IMAGES_PATH=/tmp/images.enc AZAION_IMAGES=azaion-bench/big:1
//
// or without the plaintext on disk:
//
//	go run ./control/unlock/dockertest/cmd/bigimage -size 256 |
//	  go run ./cmd/azaion-loader seal --fragment /tmp/fragment.bin -o /tmp/images.enc
//
// The image ID that `docker image inspect` will report goes to stderr.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"

	"github.com/azaion/loader/control/unlock/dockertest"
)

func main() {
	size := flag.Int64("size", 256, "MiB of random bytes in the image's layer")
	tag := flag.String("tag", "azaion-bench/big:1", "the image's reference")
	out := flag.String("o", "", "write the tar to this file (default: standard output)")
	seed := flag.Uint64("seed", 1, "seed of the layer's bytes (the same seed gives the same image)")
	flag.Parse()
	if err := run(*size<<20, *tag, *out, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "bigimage:", err)
		os.Exit(1)
	}
}

func run(size int64, tag, out string, seed uint64) (err error) {
	if size <= 0 {
		return errors.New("-size must be positive")
	}
	w := io.Writer(os.Stdout)
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(out)
			}
		}()
		w = f
	} else if st, err := os.Stdout.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		return errors.New("refusing to write a binary tar to a terminal; use -o FILE or a pipe")
	}
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	id, err := dockertest.WriteImageTar(w, tag, size, rand.NewChaCha8(key))
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s %s (%d MiB layer)\n", tag, id, size>>20)
	return nil
}
