#!/usr/bin/env python3
"""hub_server.py - a local stand-in for the Hugging Face Hub and the Ollama registry, written for
the tests of `inferno pull` (tests/pull_test.py) and its benchmark (bench/pull-bench.sh). It never
contacts anything: two HTTP/1.1 servers on 127.0.0.1, the hub (API routes, redirects) and a "CDN"
on another port (the bytes, with Range and ETag), as the real hubs split them.

Hugging Face routes (as huggingface_hub calls them):
  GET /api/models/OWNER/REPO/tree/REV?recursive=true   JSON array of {type, path, size, oid,
                                                       lfs: {oid, size, pointerSize}}; pages of
                                                       `page_size` entries linked by
                                                       Link: <...>; rel="next"
  GET /OWNER/REPO/resolve/REV/PATH                     302 to the CDN (LFS files) or the bytes
Ollama routes (a Docker registry v2):
  GET /v2/NS/NAME/manifests/TAG                        the manifest
  GET /v2/NS/NAME/blobs/sha256:HEX                     307 to the CDN
CDN: GET /blob/HEX                                     the bytes; Range: bytes=N- / N-M -> 206,
                                                       past the end -> 416; ETag "HEX"

Faults, set per test in Hub.faults (the attribute names below): `status` {route substring:
[codes...]} answers the next requests matching with those codes; `drop` {hex: [nbytes...]} cuts
the next transfers of a blob after that many bytes (Content-Length promises all); `stall`
{hex: [(nbytes, seconds)...]} sends that many bytes, then nothing for that long, then hangs up; `no_range`
ignores Range (200 with everything); `rate` bytes/s for every blob; `wrong` {hex: bytes} serves
other bytes than the listed digest; `wrong_listing` {path} lists a wrong sha256 for a file;
`bad_range` N answers the next N Range requests with a 206 from byte 0. Every request is logged (method, path, headers).

As a program: hub_server.py --file PATH [--owner O --repo R] serves one file as an HF repository
and prints the endpoint, for benchmarks.
"""
import hashlib
import http.server
import json
import os
import socketserver
import sys
import threading
import time
import urllib.parse


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def git_oid(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Blob:
    """Bytes in memory, or a file on disk (path) for large benchmarks."""

    def __init__(self, data=None, path=None):
        self.data = data
        self.path = path
        if data is not None:
            self.size = len(data)
            self.sha = sha256(data)
        else:
            self.size = os.path.getsize(path)
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            self.sha = h.hexdigest()


class Hub:
    def __init__(self, token=None):
        self.lock = threading.Lock()
        self.token = token
        self.repos = {}     # (owner, repo) -> {"revs": {rev: {path: Blob}}, "gated": bool, "page_size": n}
        self.ollama = {}    # (ns, name, tag) -> [(mediaType, Blob)]
        self.blobs = {}     # hex -> Blob
        self.log = []       # (server, method, path, headers)
        self.reset_faults()
        self.api = self._start(self._api_handler())
        self.cdn = self._start(self._cdn_handler())
        self.endpoint = "http://127.0.0.1:%d" % self.api.server_address[1]
        self.cdn_endpoint = "http://127.0.0.1:%d" % self.cdn.server_address[1]

    def reset_faults(self):
        self.status = {}
        self.drop = {}
        self.no_range = False
        self.rate = 0
        self.wrong = {}
        self.wrong_listing = set()
        self.stall = {}
        self.bad_range = 0

    def close(self):
        for s in (self.api, self.cdn):
            s.shutdown()
            s.server_close()

    # ---- content ------------------------------------------------------------------------------
    def add_hf(self, owner, repo, files, rev="main", gated=False, page_size=0):
        r = self.repos.setdefault((owner, repo), {"revs": {}, "gated": gated, "page_size": page_size})
        r["gated"] = gated
        r["page_size"] = page_size
        blobs = {}
        for path, content in files.items():
            b = content if isinstance(content, Blob) else Blob(content)
            blobs[path] = b
            self.blobs[b.sha] = b
        r["revs"][rev] = blobs
        return blobs

    def add_ollama(self, ns, name, tag, layers):
        out = []
        for mt, content in layers:
            b = content if isinstance(content, Blob) else Blob(content)
            self.blobs[b.sha] = b
            out.append((mt, b))
        self.ollama[(ns, name, tag)] = out

    def requests(self, server=None, contains=""):
        with self.lock:
            return [e for e in self.log if (server is None or e[0] == server) and contains in e[2]]

    # ---- servers ------------------------------------------------------------------------------
    def _start(self, handler):
        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                # a client killed mid-transfer (the tests do that) is not an error of the hub
                if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                    super().handle_error(request, client_address)

        s = Server(("127.0.0.1", 0), handler)
        threading.Thread(target=s.serve_forever, daemon=True).start()
        return s

    def _fault_status(self, path):
        with self.lock:
            for key, codes in self.status.items():
                if key in path and codes:
                    return codes.pop(0)
        return None

    def _base_handler(hub, server_name):
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def log(self):
                with hub.lock:
                    hub.log.append((server_name, self.command, self.path, dict(self.headers)))

            def reply(self, code, body=b"", ctype="application/json", headers=()):
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

        return H

    def _api_handler(hub):
        Base = hub._base_handler("api")

        class H(Base):
            def do_GET(self):
                self.log()
                u = urllib.parse.urlsplit(self.path)
                path = urllib.parse.unquote(u.path)
                code = hub._fault_status(path)
                if code:
                    return self.reply(code, {"error": "injected %d" % code})
                # split before unquoting: a revision "refs/pr/1" travels as one segment
                parts = [urllib.parse.unquote(x) for x in u.path.strip("/").split("/")]
                if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
                    return self.tree(parts[2], parts[3], "/".join(parts[5:]), u.query)
                if len(parts) >= 5 and parts[2] == "resolve":
                    return self.resolve(parts[0], parts[1], parts[3], "/".join(parts[4:]))
                if parts[0] == "v2" and len(parts) == 5 and parts[3] == "manifests":
                    return self.manifest(parts[1], parts[2], parts[4])
                if parts[0] == "v2" and len(parts) == 5 and parts[3] == "blobs":
                    hexd = parts[4].split(":", 1)[-1]
                    if hexd not in hub.blobs:
                        return self.reply(404, {"errors": [{"code": "BLOB_UNKNOWN",
                                                            "message": "blob unknown"}]})
                    return self.reply(307, b"", headers=[("Location", "%s/blob/%s" % (
                        hub.cdn_endpoint, hexd))])
                return self.reply(404, {"error": "no route"})

            def authorized(self, repo):
                if not repo["gated"]:
                    return True
                return self.headers.get("Authorization") == "Bearer %s" % hub.token

            def repo(self, owner, name):
                r = hub.repos.get((owner, name))
                if not r:
                    self.reply(401, {"error": "Repository not found"})  # as the Hub answers
                    return None
                if not self.authorized(r):
                    self.reply(401, {"error": "Access to model %s/%s is restricted" % (owner, name)})
                    return None
                return r

            def tree(self, owner, name, rev, query):
                r = self.repo(owner, name)
                if r is None:
                    return
                if rev not in r["revs"]:
                    return self.reply(404, {"error": "Invalid rev id: %s" % rev})
                entries = []
                dirs = set()
                for p, b in sorted(r["revs"][rev].items()):
                    segs = p.split("/")
                    for i in range(1, len(segs)):
                        dirs.add("/".join(segs[:i]))
                    e = {"type": "file", "path": p, "size": b.size,
                         "oid": git_oid(b.data) if b.data is not None else "0" * 40}
                    if p.endswith(".gguf"):
                        sha = b.sha
                        if p in hub.wrong_listing:
                            sha = sha256(b"not these bytes")
                        e["lfs"] = {"oid": sha, "size": b.size, "pointerSize": 134}
                    entries.append(e)
                entries = [{"type": "directory", "path": d, "size": 0, "oid": "1" * 40}
                           for d in sorted(dirs)] + entries
                q = urllib.parse.parse_qs(query)
                start = int(q.get("cursor", ["0"])[0])
                ps = r["page_size"] or len(entries) or 1
                page = entries[start:start + ps]
                headers = []
                if start + ps < len(entries):
                    nxt = "%s/api/models/%s/%s/tree/%s?recursive=true&cursor=%d" % (
                        hub.endpoint, owner, name, rev, start + ps)
                    headers.append(("Link", '<%s>; rel="next"' % nxt))
                self.reply(200, page, headers=headers)

            def resolve(self, owner, name, rev, path):
                r = self.repo(owner, name)
                if r is None:
                    return
                files = r["revs"].get(rev)
                if files is None or path not in files:
                    return self.reply(404, {"error": "Entry not found"})
                b = files[path]
                self.reply(302, b"", headers=[("Location", "%s/blob/%s" % (hub.cdn_endpoint, b.sha)),
                                              ("X-Linked-Etag", '"%s"' % b.sha),
                                              ("X-Linked-Size", str(b.size))])

            def manifest(self, ns, name, tag):
                layers = hub.ollama.get((ns, name, tag))
                if layers is None:
                    return self.reply(404, {"errors": [{"code": "MANIFEST_UNKNOWN",
                                                        "message": "manifest unknown"}]})
                m = {"schemaVersion": 2,
                     "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                     "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                "digest": "sha256:" + "0" * 64, "size": 2},
                     "layers": [{"mediaType": mt, "digest": "sha256:" + b.sha, "size": b.size}
                                for mt, b in layers]}
                self.reply(200, m, ctype="application/vnd.docker.distribution.manifest.v2+json")

        return H

    def _cdn_handler(hub):
        Base = hub._base_handler("cdn")

        class H(Base):
            def do_GET(self):
                self.log()
                path = urllib.parse.urlsplit(self.path).path
                code = hub._fault_status(path)
                if code:
                    return self.reply(code, b"<html>injected</html>", ctype="text/html")
                parts = path.strip("/").split("/")
                if len(parts) != 2 or parts[0] != "blob" or parts[1] not in hub.blobs:
                    return self.reply(404, b"NoSuchKey", ctype="text/plain")
                b = hub.blobs[parts[1]]
                start, end = 0, b.size - 1
                rng = self.headers.get("Range")
                partial = False
                if rng and not hub.no_range and rng.startswith("bytes="):
                    a, _, z = rng[6:].partition("-")
                    start = int(a)
                    if z:
                        end = min(int(z), b.size - 1)
                    if start >= b.size:
                        return self.reply(416, b"", headers=[("Content-Range", "bytes */%d" % b.size)])
                    partial = True
                    with hub.lock:
                        if hub.bad_range:
                            hub.bad_range -= 1
                            start = 0  # a 206 for other bytes than asked for
                n = end - start + 1
                self.send_response(206 if partial else 200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(n))
                self.send_header("ETag", '"%s"' % b.sha)
                self.send_header("Accept-Ranges", "bytes")
                if partial:
                    self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, b.size))
                self.end_headers()
                with hub.lock:
                    cut = hub.drop[b.sha].pop(0) if hub.drop.get(b.sha) else None
                    wrong = hub.wrong.get(b.sha)
                    stall = hub.stall[b.sha].pop(0) if hub.stall.get(b.sha) else None
                if stall is not None:
                    # send some bytes, then nothing for stall[1] seconds, then hang up
                    self.send_bytes(b, start, min(n, stall[0]), None, wrong)
                    time.sleep(stall[1])
                    self.close_connection = True
                    return
                self.send_bytes(b, start, n, cut, wrong)
                if cut is not None:
                    self.close_connection = True

            def send_bytes(self, b, start, n, cut, wrong):
                limit = n if cut is None else min(n, max(0, cut - start))
                rate = hub.rate
                if b.path and rate == 0 and wrong is None:
                    self.wfile.flush()
                    with open(b.path, "rb") as f:
                        off, left = start, limit
                        while left > 0:
                            try:
                                k = os.sendfile(self.connection.fileno(), f.fileno(), off, left)
                            except (BrokenPipeError, ConnectionResetError):
                                return
                            if k <= 0:
                                break
                            off += k
                            left -= k
                    return
                data = wrong if wrong is not None else None
                sent = 0
                chunk = 65536
                t0 = time.monotonic()
                while sent < limit:
                    k = min(chunk, limit - sent)
                    if data is not None:
                        piece = data[start + sent:start + sent + k]
                    elif b.data is not None:
                        piece = b.data[start + sent:start + sent + k]
                    else:
                        with open(b.path, "rb") as f:
                            f.seek(start + sent)
                            piece = f.read(k)
                    try:
                        self.wfile.write(piece)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    sent += k
                    if rate:
                        ahead = sent / rate - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)

        return H


def gguf(arch="llama", file_type=7, n_floats=1024, extra=b""):
    """A small valid GGUF v3: general.architecture, general.file_type, <arch>.context_length and
    one F32 tensor of n_floats elements (token_embd.weight) filled with a pattern."""
    import struct

    def s(x):
        x = x.encode()
        return struct.pack("<Q", len(x)) + x

    kv = [(s("general.architecture"), struct.pack("<I", 8) + s(arch)),
          (s("general.file_type"), struct.pack("<I", 4) + struct.pack("<I", file_type)),
          (s(arch + ".context_length"), struct.pack("<I", 4) + struct.pack("<I", 256))]
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, len(kv))
    for k, v in kv:
        head += k + v
    head += s("token_embd.weight") + struct.pack("<I", 1) + struct.pack("<Q", n_floats)
    head += struct.pack("<I", 0) + struct.pack("<Q", 0)
    head += b"\0" * ((32 - len(head) % 32) % 32)
    body = bytes((i * 7 + len(extra)) & 0xFF for i in range(n_floats * 4))
    return head + body


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", required=True)
    ap.add_argument("--owner", default="bench")
    ap.add_argument("--repo", default="model-GGUF")
    a = ap.parse_args()
    hub = Hub()
    b = Blob(path=a.file)
    hub.add_hf(a.owner, a.repo, {os.path.basename(a.file): b})
    print(json.dumps({"endpoint": hub.endpoint, "cdn": hub.cdn_endpoint, "sha256": b.sha,
                      "url": "%s/blob/%s" % (hub.cdn_endpoint, b.sha)}), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
