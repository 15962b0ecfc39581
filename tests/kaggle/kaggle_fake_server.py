"""A small stand-in for Kaggle's API on 127.0.0.1, for tests that run the real `kaggle` client.

The client is pointed here by its own settings, nothing patched: KAGGLE_API_ENVIRONMENT=LOCALHOST
makes it call http://localhost/api/v1/<service>/<method>, and HTTP_PROXY/HTTPS_PROXY send every
request (API calls, the download the redirect leads to, the blob upload) to this server, so no
request can leave the machine. Requests are answered the way Kaggle answers them: JSON POSTs, a
302 redirect to the zip for downloads, and the three-step submission (start upload, PUT the bytes
to the URL it returned, create the submission with the blob token).
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import threading
import zipfile
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

USERNAME = "podium-tester"
KEY = "3f9a1c7e5b2d4a6c8e0f1a2b3c4d5e6f"  # fake; tests check it never shows anywhere
# A fixed past date: the client stamps downloads with it and compares it on the next download.
LAST_MODIFIED = formatdate(1_700_000_000, usegmt=True)
_CLEARED = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "XDG_CONFIG_HOME", "VERBOSE", "VERBOSE_OUTPUT",
            "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


@contextlib.contextmanager
def fake_kaggle(monkeypatch, folder: Path):
    """A running FakeKaggle, the client sent to it, HOME and the config folder (with a kaggle.json
    holding USERNAME and KEY, mode 600) inside `folder`."""
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(folder / "home"))
    (folder / "home").mkdir(exist_ok=True)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(write_kaggle_json(folder / "kaggle-config").parent))
    with FakeKaggle(USERNAME, KEY) as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server


def write_kaggle_json(folder: Path, mode: int = 0o600) -> Path:
    path = Path(folder) / "kaggle.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"username": USERNAME, "key": KEY}))
    path.chmod(mode)
    return path


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive holding `members` (name -> content), names written exactly as given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, content in members.items():
            bundle.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()


class FakeKaggle:
    """Serve competitions and datasets, take submissions, and record every request received."""

    def __init__(self, username: str, key: str):
        self.credentials = (username, key)
        self.files: dict[str, bytes] = {}  # served at /files/<name>
        self.competitions: dict[str, str] = {}  # slug -> file name
        self.datasets: dict[str, str] = {}  # "owner/slug" -> file name
        # API method (or "upload", the blob PUT) -> (status, message, headers) to answer with instead
        self.failures: dict[str, tuple[int, str, dict]] = {}
        self.requests: list[dict] = []
        self.blobs: dict[str, bytes] = {}
        self.submissions: list[dict] = []  # ApiSubmission JSON, newest first
        self.created: list[dict] = []  # CreateSubmission bodies
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeKaggle:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """The environment that sends the client here."""
        return {"KAGGLE_API_ENVIRONMENT": "LOCALHOST", "HTTP_PROXY": self.address, "HTTPS_PROXY": self.address,
                "http_proxy": self.address, "https_proxy": self.address}

    def add_competition(self, slug: str, archive: bytes) -> None:
        self.files[f"{slug}.zip"] = archive
        self.competitions[slug] = f"{slug}.zip"

    def add_dataset(self, ref: str, archive: bytes) -> None:
        name = f"{ref.split('/')[1]}.zip"
        self.files[name] = archive
        self.datasets[ref] = name

    def api_calls(self) -> list[str]:
        return [r["method"] for r in self.requests if r["path"].startswith("/api/v1/")]

    def body_of(self, method: str) -> dict:
        return next(json.loads(r["body"]) for r in self.requests if r["method"] == method)


def _handler(kaggle: FakeKaggle):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _receive(self) -> dict:
            path = urlsplit(self.path).path  # absolute-form through the proxy
            length = int(self.headers.get("Content-Length") or 0)
            request = {"verb": self.command, "path": path, "method": path.rsplit("/", 1)[-1],
                       "headers": dict(self.headers), "body": self.rfile.read(length)}
            kaggle.requests.append(request)
            return request

        def _send(self, status: int, body: bytes = b"", content_type: str = "application/json", headers=None):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data: dict, headers=None):
            self._send(status, json.dumps(data).encode(), headers=headers)

        def _error(self, status: int, message: str, headers=None):
            self._json(status, {"code": status, "message": message}, headers)

        def _redirect(self, name: str):
            self.send_response(302)
            self.send_header("Location", f"http://localhost/files/{name}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            request = self._receive()
            name = request["path"].removeprefix("/files/")
            if name not in kaggle.files:
                return self._send(404, b"no such file", "text/plain")
            self._send(200, kaggle.files[name], "application/zip", {"Last-Modified": LAST_MODIFIED})

        def do_PUT(self):
            request = self._receive()
            if "upload" in kaggle.failures:
                status, message, headers = kaggle.failures["upload"]
                return self._error(status, message, headers)
            kaggle.blobs[request["path"].removeprefix("/upload/")] = request["body"]
            self._send(200)

        def do_POST(self):
            request = self._receive()
            method = request["method"]
            expected = "Basic " + base64.b64encode(":".join(kaggle.credentials).encode()).decode()
            if request["headers"].get("Authorization") != expected:
                return self._error(401, "Unauthenticated")
            if method in kaggle.failures:
                status, message, headers = kaggle.failures[method]
                return self._error(status, message, headers)
            body = json.loads(request["body"] or b"{}")
            if method == "DownloadDataFiles":
                name = kaggle.competitions.get(body.get("competitionName"))
                return self._redirect(name) if name else self._error(404, "Competition not found")
            if method == "DownloadDataset":
                name = kaggle.datasets.get(f"{body.get('ownerSlug')}/{body.get('datasetSlug')}")
                return self._redirect(name) if name else self._error(404, "Dataset not found")
            if method == "StartSubmissionUpload":
                token = f"blob-{len(kaggle.blobs) + 1}"
                return self._json(200, {"token": token, "createUrl": f"http://localhost/upload/{token}"})
            if method == "CreateSubmission":
                if body.get("blobFileTokens") not in kaggle.blobs:
                    return self._error(400, "Unknown blob token")
                kaggle.created.append(body)
                ref = 100 + len(kaggle.created)
                kaggle.submissions.insert(0, {"ref": ref, "date": "2026-01-02T03:04:05.000Z", "status": "PENDING",
                                              "description": body.get("submissionDescription"),
                                              "fileName": "submission.csv"})
                return self._json(200, {"message": "Successfully submitted to Fake Competition", "ref": ref})
            if method == "ListSubmissions":
                size, page = body.get("pageSize", 20), body.get("page", 1)
                return self._json(200, {"submissions": kaggle.submissions[(page - 1) * size:page * size]})
            return self._error(404, f"no such method {method}")

    return Handler
