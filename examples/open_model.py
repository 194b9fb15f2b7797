#!/usr/bin/env python3
"""Open a model from the azaion-loader mount the way a runtime does.

Inference runtimes (ONNX Runtime, TensorRT, PyTorch) open the model file
and either read it whole or mmap it; both work on the mount, which serves
the decrypted bytes read-only and fetches only what is read. This snippet
mmaps the file and prints its size and SHA-256 (compare them with the
original's); for an .onnx file it then loads the model with onnx (Debian:
apt-get install python3-onnx), checks it, and prints its inputs and
outputs.

    python3 examples/open_model.py /mnt/azaion/models/tiny-classifier.onnx
    327 33dbe8135d911592a651eb5aea9cd27c4dcbd7a9b9c6955a423a931a08220dfe
    onnx: ir_version 8, opset 13, producer "azaion-loader demo", 3 nodes
    input  features float[N,4]
    output scores float[N,3]
"""
import hashlib
import mmap
import os
import sys


def digest(path):
    """Return (size, sha256 hex) of the file at path, read through mmap."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h = hashlib.sha256()
        if size == 0:
            return 0, h.hexdigest()
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            step = 1 << 20
            for off in range(0, size, step):
                h.update(m[off:off + step])
        return size, h.hexdigest()


def describe_onnx(path):
    """Load the ONNX model at path, check it, and return lines that
    describe it: a summary, then one line per graph input and output."""
    import onnx  # Debian: python3-onnx

    model = onnx.load(path)
    onnx.checker.check_model(model)
    opsets = ",".join(str(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))
    lines = [f'onnx: ir_version {model.ir_version}, opset {opsets}, producer "{model.producer_name}", '
             f"{len(model.graph.node)} nodes"]
    # Initializers may be listed as inputs too (older exporters): skip them.
    weights = {t.name for t in model.graph.initializer}
    for kind, values in (("input ", model.graph.input), ("output", model.graph.output)):
        for v in values:
            if v.name not in weights:
                lines.append(f"{kind} {v.name} {tensor_type(v.type)}")
    return lines


def tensor_type(t):
    """float[N,4] for a tensor type, or the kind of a non-tensor type."""
    import onnx

    if not t.HasField("tensor_type"):
        return t.WhichOneof("value") or "?"
    tt = t.tensor_type
    elem = onnx.TensorProto.DataType.Name(tt.elem_type).lower()
    if not tt.HasField("shape"):
        return elem
    dims = [d.dim_param or (str(d.dim_value) if d.HasField("dim_value") else "?") for d in tt.shape.dim]
    return f"{elem}[{','.join(dims)}]"


def main(argv):
    if len(argv) != 2:
        print("usage: open_model.py MOUNT/FOLDER/NAME", file=sys.stderr)
        return 2
    path = argv[1]
    try:
        size, sha = digest(path)
        print(f"{size} {sha}")
        if path.endswith(".onnx"):
            print("\n".join(describe_onnx(path)))
    except OSError as e:
        # EACCES: the loader is not logged in; ENOENT: no such resource;
        # EIO: the Resource API or the CDN failed (the loader logs why).
        print(f"open_model: {path}: {e.strerror or e}", file=sys.stderr)
        return 1
    except ImportError:
        print("open_model: onnx is not installed (Debian: apt-get install python3-onnx)", file=sys.stderr)
        return 1
    except Exception as e:  # onnx's decode and checker errors
        print(f"open_model: {path}: not a valid ONNX model: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
