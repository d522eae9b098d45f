"""Statement signatures: JWS compact serialisation (RFC 7515 §7.1), alg ``EdDSA`` over Ed25519
(RFC 8037 §3.1), key id = RFC 7638 thumbprint of the public JWK; public keys as a JWKS
(RFC 7517 §5).

``EdDSA`` is the algorithm name RFC 8037 defines and every JOSE library verifies; RFC 9864 (2025)
adds the fully specified name ``Ed25519`` for the same signature. We sign with ``EdDSA`` so that
older verifiers accept the statement; joserfc warns about that choice, which is deliberate here.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OKPKey
from joserfc.jws import JWSRegistry

ALG = "EdDSA"
#: media type of the statement payload, in the protected header's ``cty``
CONTENT_TYPE = "application/vnd.greengauge.statement+json"


#: a statement carries every decision's evidence and history: far above joserfc's 128 kB default
MAX_PAYLOAD_BYTES = 16_000_000


def _registry() -> JWSRegistry:
    r = JWSRegistry(algorithms=[ALG])
    r.max_payload_length = MAX_PAYLOAD_BYTES
    return r


class KeyError_(ValueError):
    """A key file that cannot be used; the message names the file."""


def generate_key(path: Path) -> str:
    """Write a new Ed25519 private key as PKCS#8 PEM (mode 0600); return its key id."""
    path = Path(path)
    if path.exists():
        raise KeyError_(f"{path}: exists already; refusing to overwrite a signing key")
    pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return load_key(path).thumbprint()


def load_key(path: Path | str) -> OKPKey:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyError_(f"{path}: cannot read the signing key ({exc.strerror})") from None
    try:
        key = OKPKey.import_key(data)
    except (JoseError, ValueError, TypeError) as exc:
        raise KeyError_(f"{path}: not an Ed25519 key in PEM ({exc})") from None
    if key.as_dict(private=False).get("crv") != "Ed25519":
        raise KeyError_(f"{path}: the key is not Ed25519")
    return key


def public_jwk(key: OKPKey) -> dict[str, Any]:
    return {**key.as_dict(private=False), "kid": key.thumbprint(), "alg": ALG, "use": "sig"}


def jwks(keys: list[OKPKey]) -> dict[str, Any]:
    seen, out = set(), []
    for k in keys:
        if k.thumbprint() not in seen:
            seen.add(k.thumbprint())
            out.append(public_jwk(k))
    return {"keys": out}


def sign(payload: bytes, key: OKPKey) -> str:
    header = {"alg": ALG, "kid": key.thumbprint(), "typ": "JOSE", "cty": CONTENT_TYPE}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jws.serialize_compact(header, payload, key, registry=_registry())


class InvalidSignature(ValueError):
    pass


def verify(token: str, key_set: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Check a compact JWS against a JWKS; return (protected header, payload bytes).

    Raises InvalidSignature saying why (malformed, unknown kid, wrong algorithm, bad signature).
    """
    token = token.strip()
    if token.count(".") != 2:
        raise InvalidSignature("not a JWS compact serialisation (three base64url parts joined by '.')")
    try:
        keys = KeySet.import_key_set(key_set)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise InvalidSignature(f"the JWKS cannot be read: {exc}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            obj = jws.extract_compact(token.encode("ascii"), registry=_registry())
        except (JoseError, ValueError, UnicodeError) as exc:
            raise InvalidSignature(f"malformed JWS: {exc}") from None
        header = obj.headers()
        if header.get("alg") != ALG:
            raise InvalidSignature(f"algorithm {header.get('alg')!r}: only {ALG} (Ed25519) statements are accepted")
        kid = header.get("kid")
        if not any(k.get("kid") == kid for k in key_set.get("keys", [])):
            raise InvalidSignature(f"key {kid!r} is not in the JWKS")
        try:
            verified = jws.deserialize_compact(token, keys, registry=_registry())
        except (JoseError, ValueError) as exc:
            raise InvalidSignature(f"the signature does not match ({exc.__class__.__name__})") from None
    return verified.headers(), verified.payload
