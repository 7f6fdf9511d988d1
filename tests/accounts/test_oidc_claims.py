"""The claims an OpenID provider sends, read into the identity the lab signs in (no provider needed)."""

from __future__ import annotations

from fablab.services.oidc_login import OidcSettings, Pending, identity_from_claims

S = OidcSettings(issuer="https://id.example.org/realms/lab", client_id="fablab", client_secret="x", name="SSO",
                 create=False, role_claim="groups", role_map={"fablab-stewards": "steward"})


def test_claims_become_the_identity() -> None:
    ident = identity_from_claims(S, {"sub": "abc", "email": " Ada@Example.org ", "email_verified": True,
                                     "name": "Ada", "groups": ["/lab/fablab-stewards", 7]})
    assert ident.provider == "oidc:https://id.example.org/realms/lab" and ident.subject == "abc"
    assert ident.email == "ada@example.org" and ident.email_verified and ident.name == "Ada"
    assert ident.groups == ["/lab/fablab-stewards"]  # non-strings dropped


def test_unusual_shapes() -> None:
    ident = identity_from_claims(S, {"sub": 42, "email_verified": "true", "given_name": "Grace",
                                     "family_name": "Hopper", "groups": "fablab-stewards"})
    assert ident.subject == "42" and ident.email is None and ident.email_verified
    assert ident.name == "Grace Hopper" and ident.groups == ["fablab-stewards"]
    assert not identity_from_claims(S, {"sub": "s", "email_verified": "yes"}).email_verified
    assert identity_from_claims(S, {"sub": "s", "preferred_username": "gh"}).name == "gh"
    assert identity_from_claims(S, {"sub": "s", "groups": {"a": 1}}).groups == []


def test_pending_survives_the_session_and_garbage_does_not() -> None:
    p = Pending(state="s", nonce="n", code_verifier="v", next_url="/x", purpose="login", member_id=None,
                started_at=1.5)
    assert Pending.from_session(p.to_session()) == p
    assert Pending.from_session(None) is None and Pending.from_session({"state": "s"}) is None
    assert Pending.from_session("state") is None
