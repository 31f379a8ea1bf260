"""Tokens from a real identity provider: verified against its JWKS, keys rotated, nothing else."""

import base64
import hashlib
import hmac
import json
import threading
import time
import types
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import jwt.jwks_client
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

import lib.web.auth

ISSUER = "https://idp.example.test/"
AUDIENCE = "authenticated"


class SigningKey:
    """A private key the fake identity provider signs with, and its public JWK."""

    def __init__(self, algorithm: str) -> None:
        self.kid = uuid.uuid4().hex
        self.algorithm = algorithm
        if algorithm == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk = {**jwk, "kid": self.kid, "use": "sig", "alg": algorithm}

    def token(self, kid: str | None = None, **claims) -> str:
        now = int(time.time())
        body = {"sub": "idp-user", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, **claims}
        headers = {"kid": kid or self.kid}
        return jwt.encode(body, self.private, algorithm=self.algorithm, headers=headers)

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class JwksServer:
    """A tiny identity provider endpoint serving /jwks.json, counting its fetches."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys = keys
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.fetches += 1
                body = json.dumps({"keys": [key.jwk for key in server.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A path of its own: the app caches key sets per URL, and ports get reused.
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/{uuid.uuid4().hex}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def rsa_key():
    return SigningKey("RS256")


@pytest.fixture
def idp(configure, rsa_key):
    """A JWKS provider configured as the app's only way to verify tokens."""
    server = JwksServer([rsa_key])
    configure(
        AUTH_JWT_SECRET=None,
        AUTH_JWKS_URL=server.url,
        AUTH_JWT_ISSUER=ISSUER,
        AUTH_JWT_AUDIENCE=AUDIENCE,
    )
    yield server
    server.close()


def call(api, token: str):
    return api.get("/api/models", headers={"Authorization": f"Bearer {token}"})


def test_an_rs256_token_from_the_jwks_is_accepted(api, idp, rsa_key):
    assert call(api, rsa_key.token()).status_code == 200


def test_an_es256_token_from_the_jwks_is_accepted(api, idp):
    es_key = SigningKey("ES256")
    idp.keys.append(es_key)

    assert call(api, es_key.token()).status_code == 200


@pytest.mark.parametrize(
    "claims",
    [{"iss": "https://evil.example/"}, {"aud": "someone-else"}, {"sub": ""}, {"sub": "a\x00b"}],
    ids=["issuer", "audience", "empty-sub", "control-character-sub"],
)
def test_a_token_with_wrong_claims_is_401(api, idp, rsa_key, claims):
    response = call(api, rsa_key.token(**claims))

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_a_token_expired_within_the_clock_skew_is_accepted(api, idp, rsa_key):
    assert call(api, rsa_key.token(exp=int(time.time()) - 10)).status_code == 200


def test_a_token_expired_beyond_the_clock_skew_is_401_token_expired(api, idp, rsa_key):
    response = call(api, rsa_key.token(exp=int(time.time()) - 120))

    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


def test_alg_none_is_refused(api, idp, rsa_key):
    token = jwt.encode(
        {"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
        None,
        algorithm="none",
        headers={"kid": rsa_key.kid},
    )

    assert call(api, token).status_code == 401


def test_an_hs256_token_signed_with_the_public_key_is_refused(api, idp, rsa_key):
    # The classic algorithm confusion: the public key used as an HMAC secret.
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}).encode())
    claims = {"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(rsa_key.public_pem(), f"{header}.{payload}".encode(), hashlib.sha256)
    token = f"{header}.{payload}.{b64(signature.digest())}"

    assert call(api, token).status_code == 401


def test_a_token_without_a_kid_is_refused(api, idp, rsa_key):
    token = jwt.encode(
        {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
        rsa_key.private,
        algorithm="RS256",
    )

    assert call(api, token).status_code == 401


def test_a_rotated_key_is_fetched_once_the_refresh_cooldown_has_passed(
    api, idp, rsa_key, configure, monkeypatch
):
    monkeypatch.setattr(lib.web.auth, "JWKS_REFRESH_COOLDOWN_SECONDS", 3)
    configure(AUTH_JWKS_URL=idp.url + "?short-cooldown")  # a new client, built with it
    assert call(api, rsa_key.token()).status_code == 200
    fetched_at = time.monotonic()
    new_key = SigningKey("RS256")
    idp.keys = [new_key]  # the provider rotates: the old key is gone, a new kid signs

    too_soon = call(api, new_key.token())
    time.sleep(max(0.0, fetched_at + 3.2 - time.monotonic()))
    after = [call(api, new_key.token()).status_code for _ in range(5)]

    assert too_soon.status_code == 401
    assert after == [200] * 5
    assert idp.fetches == 2  # the first fetch, then exactly one refresh for the new kid


def test_a_rotated_key_is_honoured_30_seconds_after_the_last_fetch(api, idp, rsa_key, monkeypatch):
    ahead = [0.0]  # the JWKS client's clock, moved forward without waiting
    clock = types.SimpleNamespace(monotonic=lambda: time.monotonic() + ahead[0])
    monkeypatch.setattr(jwt.jwks_client, "time", clock)
    assert call(api, rsa_key.token()).status_code == 200
    new_key = SigningKey("RS256")
    idp.keys = [new_key]

    ahead[0] = 29.0
    too_soon = call(api, new_key.token()).status_code
    ahead[0] = 30.5
    after = call(api, new_key.token()).status_code

    assert (too_soon, after) == (401, 200)
    assert idp.fetches == 2


def test_a_jwks_without_cryptography_installed_says_how_to_add_it(api, idp, rsa_key, monkeypatch):
    monkeypatch.setattr(lib.web.auth, "has_crypto", False)  # as requirements.txt installs PyJWT

    response = call(api, rsa_key.token())

    assert response.status_code == 503
    assert response.json() == {
        "error": "AUTH_JWKS_URL needs PyJWT[crypto] in requirements.txt",
        "code": "config_missing",
    }


def test_forged_kids_do_not_make_the_app_refetch_the_key_set(api, idp, rsa_key):
    assert call(api, rsa_key.token()).status_code == 200

    forged = [call(api, rsa_key.token(kid=f"forged-{i}")).status_code for i in range(20)]

    assert forged == [401] * 20
    assert idp.fetches == 1


def test_an_hs256_token_is_refused_when_a_jwks_is_configured(api, idp):
    from dev.stack import DEV_JWT_SECRET
    from dev.tokens import issue_token

    assert call(api, issue_token(DEV_JWT_SECRET, "mallory")).status_code == 401


def test_an_unreachable_jwks_is_503_not_401(api, configure, rsa_key):
    configure(AUTH_JWT_SECRET=None, AUTH_JWKS_URL="http://127.0.0.1:9/jwks.json")

    response = call(api, rsa_key.token())

    assert response.status_code == 503
    assert response.json()["code"] == "auth_unavailable"
