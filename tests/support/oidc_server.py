"""A real OpenID provider for tests: npm's `oidc-provider` run by the machine's Node.js from
tests/support/oidc/provider.mjs, on a free loopback port, with our client and test accounts.

    provider = OidcProvider(tmp_path, clients=[client(...)], accounts={...}).start()
    provider.issuer               # "http://127.0.0.1:PORT" (FABLAB_OIDC_ISSUER)
    provider.set_clock(t)         # the provider's clock (epoch seconds); follows the test's by default
    provider.sign_in(url, "alice")  # drive its login and consent forms; the redirect back to us
    provider.stop()               # down (the provider-unreachable case), start() again on the same port

`skip_reason()` says why the tests cannot run (no node, `npm install` not run in tests/support/oidc).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from .smtp import free_port

HERE = Path(__file__).resolve().parent / "oidc"
SCRIPT = HERE / "provider.mjs"


def skip_reason() -> str | None:
    if shutil.which("node") is None:
        return "Node.js is not installed (the OpenID provider runs on it)"
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        return "the OpenID provider is not installed: make test-deps (npm install in tests/support/oidc)"
    return None


def client(client_id: str, secret: str, redirect_uri: str) -> dict[str, Any]:
    return {"client_id": client_id, "client_secret": secret, "redirect_uris": [redirect_uri]}


class OidcProvider:
    def __init__(self, directory: Path, *, clients: list[dict[str, Any]], accounts: dict[str, dict[str, Any]],
                 kid: str = "k1", id_token_ttl: int = 3600, jwks_uri: str | None = None,
                 alias_clients: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.directory = directory
        self.config = {"port": self.port, "kid": kid, "clients": clients, "accounts": accounts,
                       "idTokenTtl": id_token_ttl, "jwksUri": jwks_uri, "aliasClients": alias_clients or {}}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = directory / f"oidc-{self.port}.log"

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> OidcProvider:
        cfg = self.directory / f"oidc-{self.port}.json"
        cfg.write_text(json.dumps(self.config))
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(["node", str(SCRIPT), str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                                         cwd=HERE)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the OpenID provider exited: {self.log.read_text()[-2000:]}")
            try:
                if requests.get(self.issuer + "/.well-known/openid-configuration", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"no discovery document from {self.issuer} within {timeout}s")
            time.sleep(0.05)
        self.set_clock(time.time())
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            self.proc = None

    def set_clock(self, epoch_seconds: float) -> None:
        requests.post(self.issuer + "/__test/clock", json={"now": epoch_seconds}, timeout=5).raise_for_status()

    def sign_in(self, authorize_url: str, login: str, *, browser: requests.Session | None = None,
                redirect_prefix: str = "http://localhost/", cancel: bool = False) -> str:
        """Follow the authorization request through the provider's login and consent forms, as a browser
        would, until the provider sends the browser back to `redirect_prefix`; that URL. `cancel` presses
        the provider's Cancel link on its login page instead."""
        browser = browser or requests.Session()
        url = authorize_url
        for _ in range(20):
            if url.startswith(redirect_prefix):
                return url
            resp = browser.get(url, allow_redirects=False, timeout=10)
            if resp.is_redirect:
                url = urljoin(url, resp.headers["Location"])
                continue
            page = resp.text
            if cancel and "[ Cancel ]" in page:
                url = urljoin(url, _cancel_link(page))
                continue
            if 'name="prompt" value="login"' in page:
                # The login typed becomes the account id (the `sub`): the account's sub, or the name itself.
                sub = self.config["accounts"].get(login, {}).get("sub", login)
                data = {"prompt": "login", "login": sub, "password": "any"}
            elif 'name="prompt" value="consent"' in page:
                data = {"prompt": "consent"}
            else:
                raise AssertionError(f"unexpected page from the provider ({resp.status_code}): {page[:500]}")
            action = _form_action(page)
            resp = browser.post(urljoin(url, action), data=data, allow_redirects=False, timeout=10)
            assert resp.is_redirect, f"the provider did not accept the form: {resp.status_code} {resp.text[:300]}"
            url = urljoin(url, resp.headers["Location"])
        raise AssertionError("too many redirects at the provider")


def _form_action(page: str) -> str:
    import re

    found = re.search(r'<form[^>]*action="([^"]+)"', page)
    assert found, "the provider's page has no form"
    return found.group(1).replace("&amp;", "&")


def _cancel_link(page: str) -> str:
    import re

    found = re.search(r'<a href="([^"]+)">\[ Cancel \]</a>', page)
    assert found, "the provider's page has no Cancel link"
    return found.group(1).replace("&amp;", "&")
