"""The console's session cookie under `flagledger serve`, as an operator configures it.

Threat: the network (and an insider on the host). The cookie holds a bearer token: sent once over plain HTTP it
can be read off the wire. It used to be ``Secure`` only when the request's scheme was https — and uvicorn by
default believes ``X-Forwarded-Proto`` from loopback, so whether it was depended on a header any local client
can send. Now it is always ``Secure`` unless the node is configured for plain-HTTP local development
(``http.insecure_cookie``), and forwarded headers count only when a proxy is configured as trusted
(``http.trust_proxy`` + ``forwarded_allow_ips``).
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx

from tests.e2e.test_serve import _enrolled_with_token, _free_port, _start, _wait_until_serving
from tests.support.staff import password_of


def _cookies_set(data: str, token: str, env: dict[str, str], forwarded_proto: str | None) -> list[str]:
    """Sign in once (tanaka, with their own password; ``token`` shows they are activated) on a fresh
    `flagledger serve` with ``env``; the Set-Cookie headers it answered with."""
    port = _free_port()
    proc = _start("serve", "--data-dir", data, "--port", str(port), **env)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_serving(base, proc, 30)
        headers = {"X-Forwarded-Proto": forwarded_proto} if forwarded_proto else {}
        form = httpx.get(f"{base}/console/login", headers=headers)
        field = re.search(r'name="csrf" value="([0-9a-f]{64})"', form.text)
        assert field is not None, form.text
        # a Secure cookie is not sent back over plain HTTP by a client: hand it over as a browser on https would
        nonce = re.search(r"flagledger_login=([0-9a-f]+)", form.headers["set-cookie"])
        assert nonce is not None
        r = httpx.post(
            f"{base}/console/login",
            data={
                "agency": "131016",
                "staff": "tanaka",
                "password": password_of("131016", "tanaka"),
                "csrf": field.group(1),
            },
            headers={**headers, "Cookie": f"flagledger_login={nonce.group(1)}"},
        )
        assert r.status_code == 303, r.text
        return r.headers.get_list("set-cookie")
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err


def _secure(cookies: list[str]) -> bool:
    (session,) = [c for c in cookies if c.startswith("flagledger_session=")]
    return "secure" in [part.strip().lower() for part in session.split(";")]


def test_the_session_cookie_is_secure_by_default_even_over_plain_http(tmp_path: Path) -> None:
    data = str(tmp_path / "node")
    token = _enrolled_with_token(data)
    assert _secure(_cookies_set(data, token, {}, None))


def test_forwarded_proto_counts_only_from_a_configured_trusted_proxy(tmp_path: Path) -> None:
    data = str(tmp_path / "node")
    token = _enrolled_with_token(data)
    dev = {"FLAGLEDGER_HTTP_INSECURE_COOKIE": "on"}  # plain-HTTP local development: Secure only over https
    assert not _secure(_cookies_set(data, token, dev, None))
    assert not _secure(_cookies_set(data, token, dev, "https")), "a client's own header is not believed"
    trusted = {**dev, "FLAGLEDGER_HTTP_TRUST_PROXY": "on"}  # the proxy on this host (127.0.0.1) is trusted
    assert _secure(_cookies_set(data, token, trusted, "https"))
    elsewhere = {**trusted, "FLAGLEDGER_HTTP_FORWARDED_ALLOW_IPS": "10.9.9.9"}
    assert not _secure(_cookies_set(data, token, elsewhere, "https")), "only the configured proxy's address"
