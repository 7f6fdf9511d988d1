"""OpenID Connect sign-in: the authorization code flow with PKCE against the lab's provider (Keycloak,
Authentik, Nextcloud...), with Authlib's requests client for the OAuth part and joserfc (Authlib's JOSE
library) for the ID token.

`begin` discovers the provider (/.well-known/openid-configuration) and returns the authorization URL and
the `Pending` round trip (state, nonce, PKCE verifier) the caller keeps in the browser's signed session;
`complete` checks the callback against it, redeems the code, verifies the ID token (signature against the
provider's JWKS; iss, aud, exp, iat, nonce with a small leeway), reads the userinfo when the token lacks the
email or the groups, and returns the `ExternalIdentity` for services/identities.py.

Every failure is an `OidcError` with a sentence for the login page and an HTTP status: 502 when the provider
is down or answers with something we cannot accept, 4xx when the request itself is wrong (state, replay,
the person said no). Messages and logs never carry the client secret, a code or a token."""

from __future__ import annotations

import base64
import hmac
import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError  # type: ignore[import-untyped]
from authlib.integrations.requests_client import OAuth2Session  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from ..domain.role_mapping import RoleMapError, parse_role_map
from .identities import ExternalIdentity

log = logging.getLogger(__name__)

TIMEOUT = 5.0  # seconds per request to the provider: a sign-in page must not hang on it
LEEWAY = 60  # seconds of clock skew tolerated on exp and iat
CACHE_SECONDS = 3600  # discovery documents and key sets are re-read hourly (and on an unknown key id)
PENDING_SECONDS = 600  # a sign-in started more than this long ago is not finished
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


class OidcError(Exception):
    """A sign-in that cannot go on: `message` for the person, `status` for the page, `code` for tests/logs."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: str
    name: str
    create: bool
    role_claim: str
    role_map: dict[str, str]

    @property
    def provider_key(self) -> str:
        """MemberIdentity.provider of this issuer's accounts."""
        return f"oidc:{self.issuer}"


def enabled(config: Any) -> bool:
    return bool(config.get("FABLAB_OIDC_ISSUER") and config.get("FABLAB_OIDC_CLIENT_ID"))


def settings(config: Any) -> OidcSettings:
    """The lab's settings; a malformed role map is an OidcError (staff must fix it, the page says so)."""
    try:
        role_map = parse_role_map(config.get("FABLAB_OIDC_ROLE_MAP", ""))
    except RoleMapError as exc:
        raise OidcError("misconfigured", f"the lab's FABLAB_OIDC_ROLE_MAP setting is wrong ({exc}). "
                                         "Tell the lab's staff.", 503) from None
    return OidcSettings(issuer=config["FABLAB_OIDC_ISSUER"].rstrip("/"), client_id=config["FABLAB_OIDC_CLIENT_ID"],
                        client_secret=config.get("FABLAB_OIDC_CLIENT_SECRET", ""),
                        name=config.get("FABLAB_OIDC_NAME") or "single sign-on",
                        create=config.get("FABLAB_OIDC_NEW_MEMBERS", "link") == "create",
                        role_claim=config.get("FABLAB_OIDC_ROLE_CLAIM") or "groups", role_map=role_map)


@dataclass(frozen=True)
class Pending:
    """One sign-in on its way through the provider, kept in the browser's signed session until the
    callback, and removed there (a replayed callback finds none)."""

    state: str
    nonce: str
    code_verifier: str
    next_url: str | None
    purpose: str  # "login", or "link" (a signed-in member adds this provider's account)
    member_id: int | None
    started_at: float  # epoch seconds

    def to_session(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_session(cls, raw: object) -> Pending | None:
        if not isinstance(raw, dict):
            return None
        try:
            return cls(state=str(raw["state"]), nonce=str(raw["nonce"]), code_verifier=str(raw["code_verifier"]),
                       next_url=raw.get("next_url"), purpose=str(raw.get("purpose", "login")),
                       member_id=raw.get("member_id"), started_at=float(raw["started_at"]))
        except (KeyError, TypeError, ValueError):
            return None


# --- talking to the provider --------------------------------------------------------------------------------

_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def _unreachable(what: str, s: OidcSettings) -> OidcError:
    return OidcError("provider_unreachable", f"{s.name} did not answer ({what}).", 502)


def _get_json(url: str, s: OidcSettings, what: str, **kwargs: Any) -> dict[str, Any]:
    try:
        resp = requests.get(url, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        log.warning("OIDC %s: %s unreachable (%s)", what, url, type(exc).__name__)
        raise _unreachable(what, s) from None
    if resp.status_code != 200:
        log.warning("OIDC %s: %s answered %s", what, url, resp.status_code)
        raise OidcError("provider_error", f"{s.name} answered with an error ({what}, HTTP {resp.status_code}).",
                        502)
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise OidcError("provider_error", f"{s.name} answered something that is not JSON ({what}).", 502)
    return body


def _cached(url: str, s: OidcSettings, what: str, *, fresh: bool = False) -> dict[str, Any]:
    hit = _cache.get(url)
    if hit is not None and not fresh and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    body = _get_json(url, s, what)
    _cache[url] = (time.monotonic(), body)
    return body


def discover(s: OidcSettings) -> dict[str, Any]:
    """The provider's metadata; its issuer must be the configured one (OpenID Connect Discovery 4.3)."""
    meta = _cached(s.issuer + "/.well-known/openid-configuration", s, "discovery")
    if str(meta.get("issuer", "")).rstrip("/") != s.issuer:
        _cache.pop(s.issuer + "/.well-known/openid-configuration", None)
        raise OidcError("provider_error", f"{s.name} names another issuer than FABLAB_OIDC_ISSUER. "
                                          "Tell the lab's staff.", 502)
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(meta.get(key), str):
            raise OidcError("provider_error", f"{s.name}'s discovery document has no {key}.", 502)
    return meta


def _session(s: OidcSettings, redirect_uri: str, scope: str = "openid") -> OAuth2Session:
    return OAuth2Session(s.client_id, s.client_secret, scope=scope, redirect_uri=redirect_uri,
                         code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic")


def begin(s: OidcSettings, *, redirect_uri: str, next_url: str | None, now: datetime, purpose: str = "login",
          member_id: int | None = None) -> tuple[str, Pending]:
    """The provider's authorization URL for this browser, and what to keep until the callback."""
    meta = discover(s)
    scopes = ["openid", "email", "profile"]
    # Ask for the groups scope only where the provider has one (Authentik); Keycloak adds groups by mapper.
    if s.role_map and s.role_claim in (meta.get("scopes_supported") or []):
        scopes.append(s.role_claim)
    pending = Pending(state=secrets.token_urlsafe(24), nonce=secrets.token_urlsafe(24),
                      code_verifier=secrets.token_urlsafe(48), next_url=next_url, purpose=purpose,
                      member_id=member_id, started_at=now.timestamp())
    url, _ = _session(s, redirect_uri, " ".join(scopes)).create_authorization_url(
        meta["authorization_endpoint"], state=pending.state, nonce=pending.nonce,
        code_verifier=pending.code_verifier)
    return url, pending


def _callback_refusal(s: OidcSettings, args: dict[str, str]) -> OidcError | None:
    error = args.get("error")
    if not error:
        return None
    if error == "access_denied":
        return OidcError("access_denied", f"{s.name} did not let you in, or you cancelled there.", 403)
    if error == "login_required":
        return OidcError("login_required", f"you are not signed in at {s.name}.", 401)
    # Any other code is the provider's (invalid_scope, server_error...): shown as a short identifier only.
    code = "".join(ch for ch in error[:40] if ch.isalnum() or ch in "_-")
    return OidcError("provider_error", f"{s.name} refused the request ({code}).", 400)


def complete(s: OidcSettings, pending: Pending | None, args: dict[str, str], *, redirect_uri: str,
             now: datetime) -> ExternalIdentity:
    """The identity the callback proves, or OidcError. `args` is the callback's query."""
    refused = _callback_refusal(s, args)
    if refused is not None:
        raise refused
    if pending is None:
        raise OidcError("no_pending", "this sign-in was already used or was not started in this browser.", 400)
    if now.timestamp() - pending.started_at > PENDING_SECONDS:
        raise OidcError("stale", "the sign-in took too long.", 400)
    if not hmac.compare_digest(args.get("state", "").encode(), pending.state.encode()):
        raise OidcError("state_mismatch", "the answer does not belong to the sign-in started here.", 400)
    # RFC 9207: a provider that names itself in the answer must be ours (a mix-up with another provider).
    if "iss" in args and args["iss"].rstrip("/") != s.issuer:
        raise OidcError("issuer_mismatch", "the answer came from another provider.", 400)
    code = args.get("code")
    if not code:
        raise OidcError("no_code", f"{s.name} sent no authorization code.", 400)
    meta = discover(s)
    token = _redeem(s, meta, code, pending, redirect_uri)
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise OidcError("no_id_token", f"{s.name} sent no ID token (is the openid scope allowed?).", 502)
    claims = verify_id_token(s, meta, id_token, nonce=pending.nonce, now=now)
    need = ["email", "email_verified", "name"] + ([s.role_claim] if s.role_map else [])
    if any(key not in claims for key in need) and isinstance(meta.get("userinfo_endpoint"), str):
        claims = {**_userinfo(s, meta, token, claims["sub"]), **claims}
    return identity_from_claims(s, claims)


def _redeem(s: OidcSettings, meta: dict[str, Any], code: str, pending: Pending, redirect_uri: str) -> dict[str, Any]:
    try:
        token = _session(s, redirect_uri).fetch_token(meta["token_endpoint"], code=code,
                                                      code_verifier=pending.code_verifier, timeout=TIMEOUT)
    except requests.RequestException as exc:
        log.warning("OIDC token endpoint unreachable (%s)", type(exc).__name__)
        raise _unreachable("token endpoint", s) from None
    except AuthlibBaseError as exc:
        # invalid_grant: a code used twice, expired, or issued to another client or verifier.
        log.warning("OIDC token endpoint refused the code: %s", exc.error)
        raise OidcError("code_refused", f"{s.name} did not accept the sign-in ({exc.error}).", 400) from None
    except ValueError:
        raise OidcError("provider_error", f"{s.name}'s token endpoint answered something unreadable.", 502) from None
    return dict(token)


def _keys(s: OidcSettings, meta: dict[str, Any], kid: str | None) -> KeySet:
    jwks = _cached(meta["jwks_uri"], s, "keys")
    if kid is not None and kid not in {k.get("kid") for k in jwks.get("keys", []) if isinstance(k, dict)}:
        jwks = _cached(meta["jwks_uri"], s, "keys", fresh=True)  # the provider rotated its keys
    try:
        return KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError):
        raise OidcError("provider_error", f"{s.name}'s signing keys are unreadable.", 502) from None


def _header(id_token: str) -> dict[str, Any]:
    try:
        raw = id_token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, IndexError):
        header = None
    return header if isinstance(header, dict) else {}


def verify_id_token(s: OidcSettings, meta: dict[str, Any], id_token: str, *, nonce: str,
                    now: datetime) -> dict[str, Any]:
    """The ID token's claims after checking its signature against the provider's keys and its claims."""
    bad = f"{s.name} sent an ID token that does not hold up"
    kid = _header(id_token).get("kid")
    keys = _keys(s, meta, kid if isinstance(kid, str) else None)
    try:
        token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
    except JoseError as exc:
        log.warning("OIDC ID token rejected: %s", type(exc).__name__)
        raise OidcError("bad_signature", f"{bad} (its signature is not the provider's).", 502) from None
    except ValueError:
        raise OidcError("bad_signature", f"{bad} (it is malformed).", 502) from None
    claims = dict(token.claims)
    registry = JWTClaimsRegistry(now=int(now.timestamp()), leeway=LEEWAY,
                                 # The discovery document's own spelling (Authentik's ends in a slash).
                                 iss={"essential": True, "value": str(meta["issuer"])},
                                 sub={"essential": True}, exp={"essential": True}, iat={"essential": True})
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise OidcError("expired", f"{bad} (it has expired; is the server's clock right?).", 502) from None
    except ClaimError as exc:
        why = {"iss": "its issuer is not ours", "iat": "it was issued in the future or has no date"}.get(
            exc.claim, f"its {exc.claim} claim is missing or wrong")
        raise OidcError("bad_claims", f"{bad} ({why}).", 502) from None
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if s.client_id not in audiences or (len(audiences) > 1 and claims.get("azp") != s.client_id):
        raise OidcError("wrong_audience", f"{bad} (it was issued to another application).", 502)
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"].encode(), nonce.encode()):
        raise OidcError("nonce_mismatch", f"{bad} (it belongs to another sign-in).", 400)
    return claims


def _userinfo(s: OidcSettings, meta: dict[str, Any], token: dict[str, Any], sub: str) -> dict[str, Any]:
    access = token.get("access_token")
    if not isinstance(access, str):
        return {}
    info = _get_json(meta["userinfo_endpoint"], s, "userinfo", headers={"Authorization": f"Bearer {access}"})
    if info.get("sub") != sub:  # OpenID Connect Core 5.3.2: else the answer may be someone else's
        raise OidcError("bad_claims", f"{s.name}'s userinfo answer is for someone else.", 502)
    return info


def identity_from_claims(s: OidcSettings, claims: dict[str, Any]) -> ExternalIdentity:
    email = claims.get("email")
    verified = claims.get("email_verified")
    name = claims.get("name") or " ".join(str(claims.get(k, "")) for k in ("given_name", "family_name")).strip()
    raw = claims.get(s.role_claim)
    # A list of names (Keycloak, Authentik); a single group as a plain string; anything else is no groups.
    groups = [raw] if isinstance(raw, str) else [g for g in raw if isinstance(g, str)] if isinstance(raw, list) else []
    return ExternalIdentity(provider=s.provider_key, subject=str(claims["sub"]),
                            email=email.strip().lower() if isinstance(email, str) and email.strip() else None,
                            # Some providers send the string "true" (AWS Cognito); anything else is unverified.
                            email_verified=verified is True or verified == "true",
                            name=str(name or claims.get("preferred_username") or "")[:120], groups=groups)
