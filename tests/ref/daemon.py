"""Shared helpers for the HTTP tests: run `visiond serve` on an ephemeral port and talk to it.

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import daemon

    with daemon.Daemon(args.visiond, "--cors", "http://example.test") as d:
        r = d.post_raw("/v1/detect", jpeg_bytes, "image/jpeg", query={"conf": 0.4})
        r.status, r.headers["X-Request-Id"], r.json()
        code, stderr = d.stop()            # SIGTERM; returns the exit status and everything logged

The daemon runs from the project root (so `--models models` finds ./models) with `--port 0` and an empty
config file (so /etc/visiond/visiond.conf and VISIOND_* variables of the caller's environment cannot change
what is tested). Its stderr is read by a thread as it comes, so the pipe never fills; the port is parsed
from the `listening on HOST:PORT` log line.

Requests use http.client, one connection each. A request whose body the daemon refuses before reading it
(413 by Content-Length, 404, 405) may see the connection closed while the body is still being sent: the
send error is ignored and the answer read anyway.

OpenApi validates response bodies against proto/openapi.yaml (OpenAPI 3.1: the schemas are JSON Schema
2020-12; $refs into the document are resolved by embedding its components in each schema).

Only the standard library, plus PyYAML and jsonschema for OpenApi (Debian's python3-yaml and
python3-jsonschema, i.e. /usr/bin/python3).
"""
import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
LISTENING_RE = re.compile(r"listening on (\S+):(\d+)")
SANITIZER_RE = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                          r"WARNING: ThreadSanitizer|SUMMARY: \w+Sanitizer")


def sanitizer_report(text):
    """The first sanitizer report in a daemon's stderr (ASan/LSan/UBSan/TSan builds), or ""."""
    m = SANITIZER_RE.search(text)
    return text[max(0, m.start() - 200):m.start() + 3000] if m else ""


class Response:
    """An HTTP answer: status, headers (case-insensitive look-up), body bytes."""

    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage: headers["x-request-id"], get_all(...)
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return f"<{self.status} {self.reason} {self.body[:200]!r}>"


def multipart(fields, boundary=None):
    """(body, content_type) of a multipart/form-data body.

    fields: list of (name, value); value is str/int/float (a text field) or a tuple
    (filename, bytes, content_type) (a file part)."""
    boundary = boundary or "visiond-test-" + uuid.uuid4().hex
    out = []
    for name, value in fields:
        out.append(f"--{boundary}\r\n".encode())
        if isinstance(value, tuple):
            filename, data, ctype = value
            out.append(f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                       f"Content-Type: {ctype}\r\n\r\n".encode())
            out.append(data)
        else:
            out.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
            out.append(str(value).encode())
        out.append(b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def with_query(path, query):
    if not query:
        return path
    items = query.items() if isinstance(query, dict) else query
    return path + ("&" if "?" in path else "?") + urllib.parse.urlencode(
        [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in items])


# Passed through: VISIOND_KERNELS forces the engine's kernel set for every process a test starts
# (scripts/test runs the numerical tests once per set), and is not one of the daemon's settings.
KEEP_ENV = ("VISIOND_KERNELS",)


def clean_env(extra=None):
    """The caller's environment without VISIOND_* (which the daemon reads as settings), but for
    KEEP_ENV, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISIOND_") or k in KEEP_ENV}
    env.update(extra or {})
    return env


class Daemon:
    """One `visiond serve` process. Arguments after `visiond` are extra flags (they come last, so they
    override the defaults given here: --port 0 --models models --workers 2)."""

    def __init__(self, visiond, *flags, workers=2, env=None, start_timeout=60.0, start=True):
        self.visiond = str(pathlib.Path(visiond).resolve())
        self.flags = list(flags)
        self.workers = workers
        self.env = clean_env(env)
        self.start_timeout = start_timeout
        self.proc = None
        self.host = self.port = None
        self.lines = []
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._config = None
        self.returncode = None
        if start:
            self.start()

    # ---- lifecycle ----

    def argv(self):
        # a gallery of its own in a temp dir unless the flags name one (later flags win)
        return [self.visiond, "serve", "--config", self._config, "--port", "0", "--models", "models",
                "--workers", str(self.workers), "--data-dir", self._data_dir, *self.flags]

    def start(self):
        fd, self._config = tempfile.mkstemp(prefix="visiond-test-", suffix=".conf")
        os.close(fd)
        self._data_dir = tempfile.mkdtemp(prefix="visiond-test-data-")
        self.proc = subprocess.Popen(self.argv(), cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self._out = []
        self._out_reader = threading.Thread(target=lambda: self._out.append(self.proc.stdout.read()),
                                            daemon=True)
        self._out_reader.start()
        if not self._listening.wait(self.start_timeout) or self.port is None:
            self.kill()
            raise RuntimeError(f"visiond did not start within {self.start_timeout:.0f} s "
                               f"(exit {self.proc.returncode}):\n{self.stderr()}")
        return self

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.lines.append(line)
            m = LISTENING_RE.search(line)
            if m and self.port is None:
                self.host, self.port = m.group(1), int(m.group(2))
                self._listening.set()
        self._listening.set()  # exited: start() stops waiting

    def stderr(self):
        with self._lock:
            return "\n".join(self.lines)

    def log_records(self):
        """The JSON log lines, parsed (lines that are not JSON are skipped)."""
        out = []
        for line in self.stderr().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def wait_log(self, matches, timeout=10.0):
        """The first JSON log record for which matches(record) is true, waiting up to timeout seconds for
        it (the access log line is written after the response is sent); None if none came."""
        until = time.monotonic() + timeout
        while True:
            found = next((x for x in self.log_records() if matches(x)), None)
            if found is not None or time.monotonic() >= until:
                return found
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30.0):
        """SIGTERM, wait; returns (exit status, stderr text). Kills it (status then negative) if it
        does not exit within `timeout`."""
        if self.proc is None:
            return self.returncode, self.stderr()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._finish()
        if self.returncode not in (0, None) and self.returncode != -signal.SIGKILL:
            # a daemon that crashed on SIGTERM says why only here: keep its last words in the test's output
            print(f"visiond exited {self.returncode} on SIGTERM; its stderr ends:\n{self.stderr()[-2000:]}",
                  flush=True)
        return self.returncode, self.stderr()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._finish()

    def _finish(self):
        self._reader.join(5)
        self._out_reader.join(5)
        self.returncode = self.proc.returncode
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()
        if self._config:
            os.unlink(self._config)
            self._config = None
        if getattr(self, "_data_dir", None):
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.stop()

    # ---- requests ----

    def request(self, method, path, body=None, headers=None, timeout=30.0):
        """Sends one request on a new connection and returns its Response. With a
        `Transfer-Encoding: chunked` header the body is sent in chunks of 64 KiB, else with its
        Content-Length."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        started = time.monotonic()
        try:
            hdrs = dict(headers or {})
            chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in hdrs.items())
            if chunked and body is not None:
                body = [body[i:i + 65536] for i in range(0, len(body), 65536)] or [b""]
            elif body is not None and not any(k.lower() == "content-length" for k in hdrs):
                hdrs["Content-Length"] = str(len(body))
            try:
                conn.request(method, path, body=body, headers=hdrs, encode_chunked=chunked)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before the body was read: the answer is waiting
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, resp.reason, resp.headers, data)
        finally:
            conn.close()
            took = time.monotonic() - started
            if took > timeout / 3:  # a warning in the test's log before a slower machine turns it into a timeout
                print(f"daemon.py: slow request: {method} {path.split('?')[0]} took {took:.1f} s of the "
                      f"{timeout:.0f} s allowed", file=sys.stderr)

    def get(self, path, headers=None, **kw):
        return self.request("GET", path, headers=headers, **kw)

    def post_raw(self, path, data, content_type, query=None, headers=None, **kw):
        hdrs = dict(headers or {})
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        return self.request("POST", with_query(path, query), body=data, headers=hdrs, **kw)

    def post_multipart(self, path, fields, query=None, headers=None, **kw):
        body, ctype = multipart(fields)
        return self.post_raw(path, body, ctype, query=query, headers=headers, **kw)

    def post_json(self, path, doc, query=None, headers=None, **kw):
        body = doc if isinstance(doc, (bytes, str)) else json.dumps(doc)
        body = body.encode() if isinstance(body, str) else body
        return self.post_raw(path, body, "application/json", query=query, headers=headers, **kw)

    def wait_ready(self, timeout=30.0):
        """Polls /readyz until 200; returns the last Response."""
        until = time.monotonic() + timeout
        while True:
            r = self.get("/readyz")
            if r.status == 200 or time.monotonic() > until:
                return r
            time.sleep(0.1)


def run_visiond(visiond, *args, env=None, timeout=60.0):
    """Runs `visiond ARGS...` from the project root; returns the CompletedProcess (text)."""
    return subprocess.run([str(pathlib.Path(visiond).resolve()), *args], cwd=ROOT, env=clean_env(env), capture_output=True,
                          text=True, timeout=timeout, check=False)


class OpenApi:
    """Response schemas of proto/openapi.yaml, by path, method and status."""

    def __init__(self, path=ROOT / "proto" / "openapi.yaml"):
        import jsonschema
        import yaml
        self.jsonschema = jsonschema
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)

    def _deref(self, node):
        while isinstance(node, dict) and set(node) == {"$ref"}:
            target = self.doc
            for part in node["$ref"][2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def path_item(self, path):
        """The document's path item for a request path: exact, else a template whose "{name}" segments
        match one path segment each (/v1/vision/custom/{model}); one trailing slash is ignored."""
        paths = self.doc["paths"]
        for p in (path, path[:-1] if len(path) > 1 and path.endswith("/") else None):
            if p in paths:
                return paths[p]
            for template, item in paths.items():
                pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))  # {name}: one segment
                if p and "{" in template and re.fullmatch(pattern, p):
                    return item
        return None

    def response(self, path, method, status):
        """The documented response object for this call: the exact status, else `default`; a path or
        method the document does not have (404/405 answers) gets components/responses/Error.
        Returns (response, documented_status_key) or (None, None) if the status is not documented."""
        item = self.path_item(path.split("?", 1)[0])
        op = item.get(method.lower()) if item else None
        if op is None:
            # A method the path does not have (405): the path's own error shape (DeepStack's route
            # answers in DeepStack's); an unknown path (404): the common Error.
            defaults = [o["responses"]["default"] for o in (item or {}).values()
                        if isinstance(o, dict) and "default" in o.get("responses", {})]
            # An unknown path under /v1/vision/ answers in DeepStack's shape, as the prefix row says.
            fallback = "DeepStackError" if path.startswith("/v1/vision/") else "Error"
            return self._deref(defaults[0] if defaults else {"$ref": f"#/components/responses/{fallback}"}), "default"
        responses = op["responses"]
        key = str(status) if str(status) in responses else "default" if "default" in responses else None
        if key is None:
            return None, None
        return self._deref(responses[key]), key

    def schema(self, path, method, status, content_type="application/json"):
        resp, _ = self.response(path, method, status)
        if resp is None:
            return None
        content = resp.get("content", {}).get(content_type)
        return None if content is None else content.get("schema")

    def validate(self, path, method, status, body, content_type="application/json"):
        """Validates `body` (parsed JSON) against the documented schema. Returns a list of problems
        (empty if valid)."""
        resp, key = self.response(path, method, status)
        if resp is None:
            return [f"{method} {path}: status {status} is not documented (and no default)"]
        content = resp.get("content", {})
        if content_type not in content:
            return [f"{method} {path} {status}: no {content_type} content documented "
                    f"(has {sorted(content)})"]
        schema = dict(content[content_type]["schema"])
        schema["components"] = self.doc["components"]
        validator = self.jsonschema.Draft202012Validator(schema)
        return [f"{method} {path} {status} (schema of response {key}): {e.message} at "
                f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}"
                for e in validator.iter_errors(body)]

    def validate_named(self, schema_name, body):
        schema = {"$ref": f"#/components/schemas/{schema_name}", "components": self.doc["components"]}
        validator = self.jsonschema.Draft202012Validator(schema)
        return [f"{schema_name}: {e.message} at {'/'.join(str(p) for p in e.absolute_path) or '(root)'}"
                for e in validator.iter_errors(body)]


class Checks:
    """Collects pass/fail lines; exit status 1 if anything failed."""

    def __init__(self):
        self.failed = []
        self.passed = 0

    def check(self, group, ok, what, detail=""):
        if ok:
            self.passed += 1
            return True
        msg = f"{group}: {what}" + (f" -- {detail}" if detail else "")
        self.failed.append(msg)
        print(f"FAIL {msg}", flush=True)
        return False

    def summary(self, name):
        print(f"{name}: {self.passed} checks passed, {len(self.failed)} failed")
        return 1 if self.failed else 0
