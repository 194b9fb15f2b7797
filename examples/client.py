#!/usr/bin/env python3
"""A Python client of the azaion-loader control API, with requests.

    apt-get install python3-requests      # or: pip install requests
    python3 examples/client.py --addr 127.0.0.1:8080 status
    AZAION_EMAIL=pilot@example.com AZAION_PASSWORD=... python3 examples/client.py login
    python3 examples/client.py upload yolo.onnx --folder models
    python3 examples/client.py load models/yolo.onnx -o yolo.onnx
    python3 examples/client.py unlock          # with AZAION_EMAIL, AZAION_PASSWORD

Answers are printed as JSON (load prints the byte count). Errors are JSON
{"detail": "..."}; this client prints the detail and exits 1 (3 for 401, 4
for 404), like `azaion-loader`'s own client subcommands. Uploads stream
from the file (memory stays small whatever its size); a load that fails
leaves no output file behind. Set AZAION_CONTROL_TOKEN when the loader has
a control_token.
"""
import argparse
import json
import os
import sys
import tempfile
import time
import uuid

import requests


class LoaderError(Exception):
    def __init__(self, status, detail):
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class MultipartBody:
    """A multipart/form-data body read from an open file as it is sent:
    the fields first (the loader's streamed upload wants the folder before
    the file), then one file part. len() is the exact body size."""

    def __init__(self, fields, file_field, filename, f):
        self.boundary = "azaion-" + uuid.uuid4().hex
        self.content_type = "multipart/form-data; boundary=" + self.boundary
        head = b""
        for k, v in fields.items():
            head += self._part_head(f'name="{k}"') + v.encode() + b"\r\n"
        head += self._part_head(f'name="{file_field}"; filename="{_quote(filename)}"',
                                "Content-Type: application/octet-stream\r\n")
        self._parts = [head, f, f"\r\n--{self.boundary}--\r\n".encode()]
        self._size = len(head) + os.fstat(f.fileno()).st_size + len(self._parts[2])

    def _part_head(self, disposition, extra=""):
        return f"--{self.boundary}\r\nContent-Disposition: form-data; {disposition}\r\n{extra}\r\n".encode()

    def __len__(self):
        return self._size

    def read(self, n=-1):
        n = 1 << 20 if n is None or n < 0 else n
        while self._parts:
            part = self._parts[0]
            if isinstance(part, bytes):
                chunk, self._parts[0] = part[:n], part[n:]
            else:
                chunk = part.read(n)
            if chunk:
                return chunk
            self._parts.pop(0)
        return b""


def _quote(name):
    """A filename as browsers put it in a Content-Disposition."""
    return name.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class Loader:
    """The control API of one loader."""

    def __init__(self, addr="127.0.0.1:8080", token=None, timeout=60):
        self.base = addr if "://" in addr else "http://" + addr
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = "Bearer " + token
        self.timeout = timeout

    def _check(self, r):
        if r.status_code != 200:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise LoaderError(r.status_code, detail)
        return r

    def health(self):
        return self._check(self.session.get(self.base + "/health", timeout=self.timeout)).json()

    def status(self):
        return self._check(self.session.get(self.base + "/status", timeout=self.timeout)).json()

    def login(self, email, password):
        r = self.session.post(self.base + "/login", json={"email": email, "password": password}, timeout=self.timeout)
        return self._check(r).json()

    def load(self, folder, name, out):
        """Stream folder/name's plaintext into the file object out; return its size."""
        r = self.session.post(self.base + "/load/" + requests.utils.quote(name, safe=""),
                              json={"folder": folder, "filename": name}, stream=True, timeout=self.timeout)
        self._check(r)
        want = int(r.headers["Content-Length"])
        got = 0
        for chunk in r.iter_content(chunk_size=1 << 20):
            out.write(chunk)
            got += len(chunk)
        if got != want:  # the loader cuts a stream that fails half-way
            raise LoaderError(0, f"short body: {got} of {want} bytes")
        return got

    def upload(self, path, folder, name=None):
        name = name or os.path.basename(path)
        with open(path, "rb") as f:
            body = MultipartBody({"folder": folder}, "file", name, f)
            # A body with read() and len() is sent as it is read, with an
            # exact Content-Length: the file is never held in memory.
            r = self.session.post(self.base + "/upload/" + requests.utils.quote(name, safe=""),
                                  data=body, headers={"Content-Type": body.content_type},
                                  timeout=self.timeout)
        return self._check(r).json()

    def unlock(self, email, password, wait=True, poll=0.5, timeout=1800):
        r = self.session.post(self.base + "/unlock", json={"email": email, "password": password}, timeout=self.timeout)
        st = self._check(r).json()
        deadline = time.monotonic() + timeout
        while wait and st["state"] not in ("ready", "error") and time.monotonic() < deadline:
            time.sleep(poll)
            st = self._check(self.session.get(self.base + "/unlock/status", timeout=self.timeout)).json()
        return st


def load_to(loader, folder, name, out):
    """Load folder/name into the file out, whole or not at all: the bytes
    go to a temp file beside it, renamed into place once complete."""
    d = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(out) + ".")
    try:
        with os.fdopen(fd, "wb") as f:
            n = loader.load(folder, name, f)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
        return n
    except BaseException:
        os.unlink(tmp)
        raise


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def main(argv=None):
    p = argparse.ArgumentParser(description="azaion-loader control API client")
    p.add_argument("--addr", default=os.environ.get("AZAION_LISTEN", "127.0.0.1:8080"))
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("status")
    sub.add_parser("login")
    lo = sub.add_parser("load")
    lo.add_argument("resource", help="FOLDER/NAME")
    lo.add_argument("-o", dest="out", required=True)
    up = sub.add_parser("upload")
    up.add_argument("file")
    up.add_argument("--folder", required=True)
    up.add_argument("--name")
    sub.add_parser("unlock")
    a = p.parse_args(argv)

    loader = Loader(a.addr, token=os.environ.get("AZAION_CONTROL_TOKEN"))
    try:
        if a.cmd == "status":
            print(json.dumps(loader.status()))
        elif a.cmd == "login":
            print(json.dumps(loader.login(os.environ["AZAION_EMAIL"], os.environ["AZAION_PASSWORD"])))
        elif a.cmd == "load":
            folder, _, name = a.resource.partition("/")
            print(load_to(loader, folder, name, a.out), "bytes")
        elif a.cmd == "upload":
            print(json.dumps(loader.upload(a.file, a.folder, a.name)))
        elif a.cmd == "unlock":
            st = loader.unlock(os.environ["AZAION_EMAIL"], os.environ["AZAION_PASSWORD"])
            print(json.dumps(st))
            return 0 if st["state"] == "ready" else 1
    except LoaderError as e:
        print(f"client.py: {e}", file=sys.stderr)
        return {401: 3, 404: 4}.get(e.status, 1)
    except requests.ConnectionError as e:
        print(f"client.py: no loader at {loader.base}: {e}", file=sys.stderr)
        return 5
    return 0


if __name__ == "__main__":
    sys.exit(main())
