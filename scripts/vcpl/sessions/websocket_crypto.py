"""Key material for the WebSocket rehearsal: a throwaway CA and server certificate for wss, and the
request signatures the venues document (Kalshi's RSA-PSS handshake headers, Coinbase's HMAC-signed
subscribe).

Nothing here is a real secret. The credential files hold `credential_value` stand-ins (plain
strings, not PEM keys), so an RSA key is *derived* from the stand-in: both the simulator (from
`credential_value`) and the client (from the mounted file) derive the same key pair from the same
string, and the signature is then a real RSA-PSS signature checked by the `cryptography` package.
"""
from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import hmac
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

# Small primes for trial division before Miller-Rabin (keeps key derivation well under a second).
_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p ** 0.5) + 1))]


# --- TLS ------------------------------------------------------------------------------------------
def make_tls(work: Path, hosts: list[str]) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for `hosts` (DNS names or IP addresses), written under work.
    Returns (ca.pem, server.pem, server.key). Valid for one day: it is thrown away with the sandbox."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vcpl rehearsal CA (throwaway)")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "simulator")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256()))
    work.mkdir(parents=True, exist_ok=True)
    paths = (work / "ws-ca.pem", work / "ws-server.pem", work / "ws-server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


# --- RSA-PSS (Kalshi) -----------------------------------------------------------------------------
def _stream(seed: str, label: str, nbytes: int, counter: int) -> int:
    out = b""
    block = 0
    while len(out) < nbytes:
        out += hashlib.sha256(f"{seed}|{label}|{counter}|{block}".encode()).digest()
        block += 1
    return int.from_bytes(out[:nbytes], "big")


def _probably_prime(n: int) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53):
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(seed: str, label: str, bits: int) -> int:
    counter = 0
    while True:
        candidate = _stream(seed, label, bits // 8, counter) | (3 << (bits - 2)) | 1
        if _probably_prime(candidate):
            return candidate
        counter += 1


@functools.lru_cache(maxsize=8)
def derived_rsa_key(seed: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    """A deterministic RSA key pair from a stand-in credential string (never from a real secret)."""
    e = 65537
    p = _prime(seed, "p", bits // 2)
    q = _prime(seed, "q", bits // 2)
    salt = 0
    while (p - 1) % e == 0 or (q - 1) % e == 0 or p == q:
        salt += 1
        q = _prime(seed, f"q{salt}", bits // 2)
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(e, p * q))
    return numbers.private_key()


def rsa_key_from_file_content(content: str) -> rsa.RSAPrivateKey:
    """What the gateway does with its private-key file: a PEM key if it is one, else (the rehearsal's
    stand-in) the key derived from the string."""
    if content.lstrip().startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(content.encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    return derived_rsa_key(content.strip())


_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def kalshi_sign(key: rsa.RSAPrivateKey, timestamp_ms: str, method: str, path: str) -> str:
    """KALSHI-ACCESS-SIGNATURE: base64(RSA-PSS-SHA256(timestamp + METHOD + path))."""
    return base64.b64encode(key.sign(f"{timestamp_ms}{method}{path}".encode(), _PSS, hashes.SHA256())).decode()


def kalshi_verify(key: rsa.RSAPrivateKey, signature_b64: str, timestamp_ms: str, method: str, path: str) -> bool:
    try:
        key.public_key().verify(base64.b64decode(signature_b64), f"{timestamp_ms}{method}{path}".encode(), _PSS, hashes.SHA256())
        return True
    except Exception:  # InvalidSignature, or a signature that is not base64
        return False


# --- HMAC-SHA256 (Coinbase signed subscribe) -----------------------------------------------------
def _secret_bytes(secret: str) -> bytes:
    # Coinbase's API secret is base64; the stand-in is not, so it is used as raw bytes.
    try:
        return base64.b64decode(secret, validate=True)
    except ValueError:
        return secret.encode()


def coinbase_sign(secret: str, timestamp: str, method: str = "GET", path: str = "/users/self/verify", body: str = "") -> str:
    """Coinbase Exchange signature: base64(HMAC-SHA256(secret, timestamp + method + requestPath + body))."""
    return base64.b64encode(hmac.new(_secret_bytes(secret), f"{timestamp}{method}{path}{body}".encode(), hashlib.sha256).digest()).decode()
