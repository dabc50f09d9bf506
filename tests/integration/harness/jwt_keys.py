"""Signing keys made per test session and the JWKS that publishes them, so tokens are real JWTs signed by
PyJWT and verified by the gateway."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ISSUER = "https://idp.gatehouse.test"


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: Any

    def jwk(self) -> dict:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            out = json.loads(RSAAlgorithm.to_jwk(public))
        elif isinstance(public, ec.EllipticCurvePublicKey):
            out = json.loads(ECAlgorithm.to_jwk(public))
        else:
            out = json.loads(OKPAlgorithm.to_jwk(public))
        out["kid"] = self.kid
        return out

    def sign(self, claims: dict | None = None, *, algorithm: str | None = None, kid: str | None = "same",
             **overrides: Any) -> str:
        body = {"iss": ISSUER, "sub": "alice", "aud": "api", "iat": int(time.time()), "exp": int(time.time()) + 600}
        body.update(claims or {})
        body.update(overrides)
        headers = {} if kid is None else {"kid": self.kid if kid == "same" else kid}
        return jwt.encode(body, self.private, algorithm=algorithm or self.algorithm, headers=headers)


RSA = SigningKey("rsa-1", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))
EC = SigningKey("ec-1", "ES256", ec.generate_private_key(ec.SECP256R1()))
ED = SigningKey("ed-1", "EdDSA", ed25519.Ed25519PrivateKey.generate())
OTHER_RSA = SigningKey("rsa-1", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def jwks(*keys: SigningKey) -> str:
    return json.dumps({"keys": [key.jwk() for key in (keys or (RSA, EC, ED))]})
