#!/usr/bin/env python3
"""Open a model from the azaion-loader mount the way a runtime does.

Inference runtimes (ONNX Runtime, TensorRT, PyTorch) open the model file
and either read it whole or mmap it; both work on the mount, which serves
the decrypted bytes read-only and fetches only what is read. This snippet
uses only the standard library: it mmaps the file, hashes it in 1 MiB
steps, and prints the size and SHA-256 so you can compare them with the
original's.

    python3 examples/open_model.py /mnt/azaion/models/yolo.onnx
"""
import hashlib
import mmap
import os
import sys


def open_model(path):
    """Return (size, sha256 hex) of the model at path, read through mmap."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return 0, hashlib.sha256().hexdigest()
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            h = hashlib.sha256()
            step = 1 << 20
            for off in range(0, size, step):
                h.update(m[off:off + step])
            # A runtime also peeks at headers: the first bytes are there
            # without reading the rest.
            _header = m[:16]
            return size, h.hexdigest()


def main(argv):
    if len(argv) != 2:
        print("usage: open_model.py MOUNT/FOLDER/NAME", file=sys.stderr)
        return 2
    try:
        size, digest = open_model(argv[1])
    except OSError as e:
        # EACCES: the loader is not logged in; ENOENT: no such resource;
        # EIO: the Resource API or the CDN failed (the loader logs why).
        print(f"open_model: {argv[1]}: {e.strerror}", file=sys.stderr)
        return 1
    print(f"{size} {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
