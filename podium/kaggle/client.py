"""Kaggle credentials, the official client (imported here only, when a command talks to Kaggle),
and Kaggle's answers turned into one clear line that never shows the key."""
from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import sys
from pathlib import Path

from podium.errors import PodiumError

TOKEN_PAGE = "https://www.kaggle.com/settings/api"


def config_dir() -> Path:
    """The folder the client reads kaggle.json from, resolved the way the client resolves it."""
    explicit = os.environ.get("KAGGLE_CONFIG_DIR")
    if explicit:
        return Path(explicit).expanduser()
    legacy = Path.home() / ".kaggle"
    if sys.platform.startswith("linux") and not legacy.exists():
        return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kaggle"
    return legacy


def credentials_source() -> str:
    """Where the client will find credentials, in its order; the one setup message when nowhere.

    Warns when kaggle.json is readable by other users. Names places, never values.
    """
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    for token_file in _access_token_files():
        if token_file.is_file() and token_file.read_text().strip():
            return str(token_file)
    kaggle_json = config_dir() / "kaggle.json"
    stored = _read_kaggle_json(kaggle_json)
    # Environment values override the file's, as in the client.
    if (os.environ.get("KAGGLE_USERNAME") or stored.get("username")) and (os.environ.get("KAGGLE_KEY") or stored.get("key")):
        if "KAGGLE_KEY" in os.environ:
            return "KAGGLE_USERNAME/KAGGLE_KEY"
        _warn_if_readable_by_others(kaggle_json)
        return str(kaggle_json)
    oauth = Path.home() / ".kaggle" / "credentials.json"
    if oauth.is_file():
        return f"{oauth} (from `kaggle auth login`)"
    raise PodiumError(
        f"no Kaggle credentials: create an API token at {TOKEN_PAGE} and save the kaggle.json it gives you "
        f"as {kaggle_json} (then `chmod 600 {kaggle_json}`), or set KAGGLE_USERNAME and KAGGLE_KEY "
        "(a new-style token goes in KAGGLE_API_TOKEN)")


def client():
    """The official client, authenticated; ImportError and bad credentials become one clear error."""
    source = credentials_source()
    try:
        # `import kaggle` signs in with import-time settings and prints its own help and warnings;
        # the credentials were checked and reported above, so that output is dropped.
        with contextlib.redirect_stdout(io.StringIO()):
            from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError:
        raise PodiumError("talking to Kaggle needs the official client: pip install kaggle") from None
    api = KaggleApi()
    # The client fixes these when first imported; resolving them per call keeps the documented
    # variables in force. Never its --verbose: that prints request headers, the key among them.
    api.config_dir = str(config_dir())
    api.config = os.path.join(api.config_dir, api.config_file)
    api.args = ["--local"] if os.environ.get("KAGGLE_API_ENVIRONMENT") == "LOCALHOST" else []
    with kaggle_errors("sign in"), contextlib.redirect_stdout(io.StringIO()):
        try:
            api.authenticate()
        except SystemExit:
            raise PodiumError(f"Kaggle did not accept the credentials from {source}; "
                              f"create a new API token at {TOKEN_PAGE}") from None
    return api


@contextlib.contextmanager
def kaggle_errors(action: str, competition: str | None = None):
    """Turn what the client raises while doing `action` into one PodiumError line, secrets removed."""
    import requests

    try:
        yield
    except requests.HTTPError as exc:
        raise PodiumError(redact(_http_error_line(exc, action, competition))) from None
    except requests.RequestException as exc:
        raise PodiumError(redact(f"cannot reach Kaggle to {action}: {_one_line(exc)}")) from None
    except ValueError as exc:  # the client's own checks, e.g. a download of the wrong size
        raise PodiumError(redact(f"Kaggle client could not {action}: {_one_line(exc)}")) from None


def redact(text: str) -> str:
    """`text` with every known Kaggle secret replaced, so no message or record can carry one."""
    for secret in _known_secrets():
        text = text.replace(secret, "***")
    return text


def _http_error_line(exc, action: str, competition: str | None) -> str:
    response = exc.response
    status = getattr(response, "status_code", None)
    detail = _kaggle_detail(exc)
    if status == 401:
        return f"Kaggle rejected the credentials (HTTP 401) while trying to {action}; create a new API token at {TOKEN_PAGE}"
    if status == 403 and competition and ("rule" in detail.lower() or not detail):
        return (f"Kaggle refused to {action} (HTTP 403: {detail or 'forbidden'}); accept the competition's rules "
                f"at https://www.kaggle.com/competitions/{competition}/rules and retry")
    if status == 429:
        wait = response.headers.get("Retry-After")
        return (f"Kaggle is rate limiting requests (HTTP 429) while trying to {action}; "
                + (f"retry in {wait} s" if wait else "wait a few minutes and retry"))
    if status == 404:
        return f"Kaggle found nothing to {action} (HTTP 404: {detail or 'not found'}); check the name"
    return f"Kaggle answered HTTP {status} while trying to {action}: {detail or 'no details'}"


def _kaggle_detail(exc) -> str:
    """Kaggle's own message (its JSON errors carry one), else the HTTP reason."""
    response = exc.response
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        message = None
    return _one_line(message or getattr(response, "reason", None) or "")


def _one_line(value) -> str:
    return " ".join(str(value).split())[:300]


def _access_token_files() -> list[Path]:
    folder = Path.home() / ".kaggle"
    return [folder / "access_token", folder / "access_token.txt"]


def _read_kaggle_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        raise PodiumError(f"{path} is not a readable kaggle.json; download a fresh one from {TOKEN_PAGE}") from None
    return data if isinstance(data, dict) else {}


def _warn_if_readable_by_others(path: Path) -> None:
    if os.name != "nt" and path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
        print(f"podium: warning: {path} holds your Kaggle key and is readable by other users; "
              f"run `chmod 600 {path}`", file=sys.stderr)


def _known_secrets() -> list[str]:
    secrets = [os.environ.get("KAGGLE_KEY"), os.environ.get("KAGGLE_API_TOKEN")]
    with contextlib.suppress(PodiumError):
        secrets.append(_read_kaggle_json(config_dir() / "kaggle.json").get("key"))
    for token_file in _access_token_files():
        with contextlib.suppress(OSError):
            secrets.append(token_file.read_text().strip())
    # Short values would redact ordinary words; real keys and tokens are long.
    return [s for s in secrets if isinstance(s, str) and len(s) >= 8]
