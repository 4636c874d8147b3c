"""Certificates and keys the local control plane needs, made with ``cryptography``.

A throwaway CA signs the apiserver's serving certificate (so clients verify TLS instead of
skipping it), and one RSA key signs and verifies ServiceAccount tokens. Further ServiceAccount keys
(RSA or EC P-256) come from :func:`new_service_account_key`, for tests that rotate the cluster's
signing keys (``Stack.restart_apiserver``); :func:`service_account_kid` is the ``kid`` the
apiserver gives a key in its JWKS and token headers.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pki:
    """Paths of the files :func:`ensure_pki` wrote."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def ensure_pki(folder: Path) -> Pki:
    """Create the CA, serving certificate and ServiceAccount key in ``folder`` unless present."""
    folder.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        ca_cert=folder / "ca.crt",
        serving_cert=folder / "apiserver.crt",
        serving_key=folder / "apiserver.key",
        service_account_key=folder / "sa.key",
    )
    if all(p.exists() for p in (pki.ca_cert, pki.serving_cert, pki.serving_key, pki.service_account_key)):
        return pki
    now = dt.datetime.now(dt.UTC)
    ca_key = _new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openai-operator devstack CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    serving_key = _new_key()
    serving_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(serving_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes"),
                    x509.DNSName("kubernetes.default"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.serving_cert.write_bytes(serving_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.serving_key, serving_key)
    _write_key(pki.service_account_key, _new_key())
    return pki


def new_service_account_key(path: Path, *, algorithm: Literal["RSA", "EC"] = "RSA") -> Path:
    """Write a new private key for ServiceAccount tokens (PEM, mode 0600) at ``path`` and return it.

    ``RSA`` (2048 bits) signs RS256 tokens, ``EC`` (P-256) ES256 ones. The apiserver takes the file
    both as ``--service-account-signing-key-file`` and as a ``--service-account-key-file``.
    """
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    key = _new_key() if algorithm == "RSA" else ec.generate_private_key(ec.SECP256R1())
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_key(path, key)
    return path


def service_account_kid(path: Path) -> str:
    """The ``kid`` kube-apiserver derives for the key in ``path``: base64url (unpadded) of the SHA-256
    of the public key's DER (SubjectPublicKeyInfo). Works for a private or a public PEM file."""
    data = path.read_bytes()
    public = (
        serialization.load_pem_public_key(data)
        if b"PUBLIC KEY" in data.split(b"\n", 1)[0]
        else serialization.load_pem_private_key(data, password=None).public_key()
    )
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
