"""api/signing.py: the key file, the JWKS, and refusals (peer check with jwcrypto in test_statements)."""

from __future__ import annotations

import json
import os
import stat

import pytest
from jwcrypto import jwk, jws
from typer.testing import CliRunner

from api.signing import InvalidSignature, KeyError_, generate_key, jwks, load_key, sign, verify
from greengauge.cli import app


def test_keygen_writes_a_private_pem_once(tmp_path):
    f = tmp_path / "k.pem"
    r = CliRunner().invoke(app, ["api", "keygen", str(f)])
    assert r.exit_code == 0 and "kid" in r.stdout
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert CliRunner().invoke(app, ["api", "keygen", str(f)]).exit_code == 2  # never overwrites a key
    with pytest.raises(KeyError_, match="exists already"):
        generate_key(f)


def test_a_signature_made_here_verifies_in_jwcrypto_and_one_made_there_here(tmp_path):
    key = load_key(_new(tmp_path))
    keyset = jwks([key])
    token = sign(b'{"a":"1"}', key)
    j = jws.JWS()
    j.deserialize(token)
    j.verify(jwk.JWKSet.from_json(json.dumps(keyset)).get_key(key.thumbprint()), alg="EdDSA")
    # and the other way: jwcrypto signs with the same private key, we verify
    peer = jwk.JWK.from_pem((tmp_path / "k.pem").read_bytes())
    s = jws.JWS(b'{"b":"2"}')
    s.add_signature(peer, alg="EdDSA", protected=json.dumps({"alg": "EdDSA", "kid": key.thumbprint()}))
    _, payload = verify(s.serialize(compact=True), keyset)
    assert payload == b'{"b":"2"}'


def _new(tmp_path):
    generate_key(tmp_path / "k.pem")
    return tmp_path / "k.pem"


def test_refusals_say_why(tmp_path):
    key = load_key(_new(tmp_path))
    other = load_key(_new(tmp_path / "o"))
    token = sign(b"{}", key)
    with pytest.raises(InvalidSignature, match="not in the JWKS"):
        verify(token, jwks([other]))
    with pytest.raises(InvalidSignature, match="three base64url parts"):
        verify("abc", jwks([key]))
    h, p, s = token.split(".")
    with pytest.raises(InvalidSignature, match="only EdDSA"):
        import base64

        none = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
        verify(f"{none}.{p}.", jwks([key]))
    with pytest.raises(KeyError_, match="not an Ed25519 key"):
        (tmp_path / "bad.pem").write_text("not a key")
        load_key(tmp_path / "bad.pem")
