#!/usr/bin/python3
"""The README's curl examples work, exactly as written (issue 3, acceptance 2).

Takes every command line (not blank, not a `#` comment) inside the ```sh blocks of README.md's
"## HTTP API" section -- each a `curl -sf` call, some fed by a pipe (a JSON body with a base64 photo is
too long for one argument) -- changes only the port (http://127.0.0.1:8080 -> the test daemon's
ephemeral port) and runs it with /bin/sh from the project root against a live `visiond serve`:

  - lines that contain the README's placeholder API key go to a daemon started with a keys file holding
    exactly that key (`--keys`); the others to a daemon without keys (the default set-up);
  - each must exit 0 and get an HTTP 2xx (the status is read through a curl config file given with
    CURL_HOME, which adds a --write-out trailer without touching the line);
  - JSON answers must match proto/openapi.yaml for that path and status.

It also checks that the section covers every endpoint and every input form of /v1/detect (raw body,
multipart, JSON, data: URI, DeepStack alias, models, healthz, readyz, metrics, openapi.json, a key), that
a keyless protected example is refused (curl -f exits 22) by the daemon with keys, and that the README's
sample /v1/detect answer matches the DetectResponse schema.

usage: test_readme_curl.py --visiond build/visiond   (run from the project root)
Exit 0 if all pass, 1 on any failure, 77 (skipped) without curl, python3-yaml/-jsonschema or the models.
"""
import argparse
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import daemon  # noqa: E402

try:
    import jsonschema  # noqa: F401
    import yaml  # noqa: F401
except ImportError as e:
    print(f"SKIP: {e} (needs Debian's python3-yaml and python3-jsonschema: /usr/bin/python3)")
    sys.exit(77)

README = daemon.ROOT / "README.md"
SECTION = "## HTTP API"
BASE = "http://127.0.0.1:8080"
PLACEHOLDER_KEY = "replace-with-your-api-key"  # the README's example key; the test daemon accepts it
TRAILER = "@@VISIOND_TEST_HTTP_STATUS="
# What the examples must cover: (description, predicate on a line).
COVERAGE = [
    ("POST /detect (the design card's route)", lambda l: "8080/detect " in l and "-F image=@" in l),
    ("POST /verify (the design card's route)", lambda l: "8080/verify " in l and "image2=" in l),
    ("GET /v1/vision/custom/list", lambda l: l.rstrip().endswith("/v1/vision/custom/list")),
    ("POST /v1/vision/custom/{model}", lambda l: "/v1/vision/custom/" in l and "-F image=@" in l),
    ("POST /v1/detect with a raw image body", lambda l: "/v1/detect" in l and "--data-binary @" in l),
    ("POST /v1/detect multipart", lambda l: "/v1/detect" in l and "-F image=@" in l),
    ("POST /v1/detect JSON image_b64", lambda l: "/v1/detect" in l and "application/json" in l
     and "image_b64" in l),
    ("POST /v1/detect JSON data: URI", lambda l: "/v1/detect" in l and "data:image/" in l),
    ("POST /v1/vision/detection (DeepStack)", lambda l: "/v1/vision/detection" in l and "min_confidence" in l),
    ("POST /v1/faces", lambda l: "/v1/faces" in l),
    ("POST /v1/verify (two photos)", lambda l: "/v1/verify" in l and "image2=" in l and "aligned" not in l),
    ("POST /v1/verify (aligned crops)", lambda l: "/v1/verify" in l and "aligned=true" in l),
    ("POST /v1/vision/face (DeepStack)", lambda l: l.rstrip().endswith("/v1/vision/face")),
    ("POST /v1/vision/face/match (DeepStack)", lambda l: "/v1/vision/face/match" in l),
    ("GET /v1/models", lambda l: l.rstrip().endswith("/v1/models")),
    ("GET /healthz", lambda l: l.rstrip().endswith("/healthz")),
    ("GET /readyz", lambda l: l.rstrip().endswith("/readyz")),
    ("GET /metrics", lambda l: l.rstrip().endswith("/metrics")),
    ("GET /openapi.json", lambda l: l.rstrip().endswith("/openapi.json")),
    ("POST /v1/subjects", lambda l: l.rstrip().endswith("/v1/subjects") and "-d" in l),
    ("POST /v1/subjects/{name}/faces", lambda l: "/faces'" in l and "/v1/subjects/" in l),
    ("POST /v1/identify", lambda l: "/v1/identify" in l),
    ("GET /v1/gallery", lambda l: l.rstrip().endswith("/v1/gallery")),
    ("POST /v1/vision/face/register", lambda l: "/v1/vision/face/register" in l),
    ("POST /v1/vision/face/recognize", lambda l: "/v1/vision/face/recognize" in l),
    ("POST /v1/vision/face/list", lambda l: "/v1/vision/face/list" in l),
    ("POST /v1/vision/face/delete", lambda l: "/v1/vision/face/delete" in l),
    ("a key as Authorization: Bearer", lambda l: f"Bearer {PLACEHOLDER_KEY}" in l),
    ("a key as X-API-Key", lambda l: f"X-API-Key: {PLACEHOLDER_KEY}" in l),
    ("a key as DeepStack's api_key field", lambda l: f"api_key={PLACEHOLDER_KEY}" in l),
]


def section_blocks(text):
    """(language, lines) of every fenced block in the README's HTTP API section."""
    start = text.find("\n" + SECTION + "\n")
    if start < 0:
        return None
    rest = text[start + len(SECTION) + 2:]
    end = re.search(r"^## ", rest, re.M)
    body = rest[:end.start()] if end else rest
    return [(m.group(1), m.group(2).splitlines()) for m in re.finditer(r"^```(\w*)\n(.*?)^```", body, re.M | re.S)]


def run_line(line, port, curl_home):
    cmd = line.replace(BASE, f"http://127.0.0.1:{port}")
    env = daemon.clean_env({"CURL_HOME": str(curl_home)})
    env.pop("XDG_CONFIG_HOME", None)
    p = subprocess.run(["/bin/sh", "-c", cmd], cwd=daemon.ROOT, env=env, capture_output=True, timeout=60,
                       check=False)
    out = p.stdout.decode("utf-8", "replace")
    status = None
    i = out.rfind(TRAILER)
    if i >= 0:
        status = int(out[i + len(TRAILER):].strip() or 0)
        out = out[:i].rstrip("\n")
    return p.returncode, status, out, p.stderr.decode("utf-8", "replace")


def method_and_path(line):
    m = re.search(re.escape(BASE) + r"(/[^\s'\"?]*)", line)
    path = m.group(1) if m else "?"
    method = "POST" if re.search(r"(^|\s)(-F|-d|--data-binary|--data)\s", line) else "GET"
    x = re.search(r"(^|\s)-X\s+([A-Z]+)", line)
    if x:
        method = x.group(2)
    return method, path


def check_line(c, api, line, d, curl_home):
    code, status, out, err = run_line(line, d.port, curl_home)
    short = line if len(line) <= 110 else line[:107] + "..."
    ok = c.check("run", code == 0 and status is not None and 200 <= status < 300,
                 f"{short}: exit 0 and HTTP 2xx", f"exit {code}, HTTP {status}, stderr {err[-300:]!r}, "
                 f"out {out[:300]!r}")
    method, path = method_and_path(line)
    if ok and out.lstrip().startswith("{"):
        try:
            doc = json.loads(out)
        except ValueError as e:
            c.check("run", False, f"{short}: JSON answer parses", str(e))
            return
        problems = api.validate(path, method, status, doc)
        c.check("run", not problems, f"{short}: answer matches proto/openapi.yaml", "; ".join(problems[:3]))
    if ok and path == "/detect" and "dog.jpg" in line:  # the design card's example finds the dog
        labels = [x.get("label") for x in json.loads(out).get("detections", [])]
        c.check("run", "dog" in labels, f"{short}: finds the dog", str(labels))
    if ok and path == "/verify":
        c.check("run", isinstance(json.loads(out).get("verified"), bool), f"{short}: answers verified",
                out[:200])
    if ok and path.startswith("/v1/vision/custom/") and path != "/v1/vision/custom/list":
        labels = [x.get("label") for x in json.loads(out).get("predictions", [])]
        c.check("run", "dog" in labels, f"{short}: finds the dog", str(labels))
    if ok and path == "/metrics":
        c.check("run", "visiond_requests_total" in out, f"{short}: Prometheus text", out[:200])
    if ok:
        print(f"ok   {short}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--visiond", required=True)
    args = ap.parse_args()
    if not shutil.which("curl"):
        print("SKIP: curl is not installed")
        return 77
    if not (daemon.ROOT / "models").is_dir() or not (daemon.SHARED / "images" / "dog.jpg").exists():
        print("SKIP: needs ./models (scripts/fetch-models) and ../shared/images")
        return 77
    c = daemon.Checks()
    api = daemon.OpenApi()
    blocks = section_blocks(README.read_text(encoding="utf-8"))
    if not c.check("readme", blocks is not None, f"README.md has a section '{SECTION}'"):
        return c.summary("test_readme_curl")
    lines = [x.strip() for lang, body in blocks if lang == "sh" for x in body
             if x.strip() and not x.strip().startswith("#")]
    c.check("readme", len(lines) >= 10, f"the section has curl examples ({len(lines)})")
    for line in lines:
        c.check("readme", BASE in line, f"{line[:80]}...: talks to {BASE}")
        c.check("readme", line.startswith("curl -sf ") or "| curl -sf " in line,
                f"{line[:80]}...: is a curl -sf call (-f: an HTTP error fails the command)")
    for what, pred in COVERAGE:
        c.check("readme", any(pred(x) for x in lines), f"an example of {what}")
    for lang, body in blocks:
        if lang == "json":
            doc = json.loads("\n".join(body))
            problems = api.validate_named("DetectResponse", doc)
            c.check("readme", not problems, "the sample /v1/detect answer matches DetectResponse", "; ".join(problems))

    keyed = [x for x in lines if PLACEHOLDER_KEY in x]
    plain = [x for x in lines if PLACEHOLDER_KEY not in x]
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="visiond-readme-"))
    try:
        (tmp / ".curlrc").write_text(f'write-out = "\\n{TRAILER}%{{http_code}}\\n"\n')
        (tmp / "keys").write_text(PLACEHOLDER_KEY + "\n")
        with daemon.Daemon(args.visiond) as d:
            for line in plain:
                check_line(c, api, line, d, tmp)
            code, err = d.stop()
        c.check("lifecycle", code == 0, "the daemon without keys exits 0 on SIGTERM", f"exit {code}")
        c.check("lifecycle", not daemon.sanitizer_report(err), "no sanitizer report", daemon.sanitizer_report(err))
        with daemon.Daemon(args.visiond, "--keys", str(tmp / "keys")) as d:
            for line in keyed:
                check_line(c, api, line, d, tmp)
            models = [x for x in plain if x.rstrip().endswith("/v1/models")]
            if models:
                rc, status, _, _ = run_line(models[0], d.port, tmp)
                c.check("keys", rc == 22 and status == 401,
                        "the keyless /v1/models example is refused (401, curl exit 22) when keys are set",
                        f"exit {rc}, HTTP {status}")
            code, err = d.stop()
        c.check("lifecycle", code == 0, "the daemon with keys exits 0 on SIGTERM", f"exit {code}")
        c.check("lifecycle", not daemon.sanitizer_report(err), "no sanitizer report", daemon.sanitizer_report(err))
        c.check("keys", PLACEHOLDER_KEY not in err, "the key is not logged")
    finally:
        shutil.rmtree(tmp)
    return c.summary("test_readme_curl")


if __name__ == "__main__":
    sys.exit(main())
