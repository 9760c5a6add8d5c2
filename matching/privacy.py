"""Keys and secrets: the person key (HMAC-SHA256 of the ID number) and encryption at rest (Fernet).

The HMAC secret and the Fernet key come from the environment
(``NANHAI_PERSON_KEY_SECRET``, ``NANHAI_FERNET_KEY``) or, for the embedded
deployment, are generated once into ``<data folder>/secrets.json`` (mode 600).
Losing them makes stored personal data unreadable and person keys unmatched:
back the file up with the database.

Clear ID numbers, phones and names exist only in memory during an import;
what is stored is the key, the masked forms and one Fernet token per record.

>>> vault = Vault(b"k" * 32, Fernet.generate_key())
>>> vault.person_key("440605199001011236") == vault.person_key("440605199001011236")
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gis.config import data_dir


def _secrets_file() -> Path:
    return data_dir() / "secrets.json"


PERSON_KEY_VARIABLE, FERNET_KEY_VARIABLE = "NANHAI_PERSON_KEY_SECRET", "NANHAI_FERNET_KEY"


def secrets_file() -> Path:
    """Where the generated development keys are kept (``<data folder>/secrets.json``)."""
    return _secrets_file()


def secrets_from_environment() -> bool:
    """Whether both keys come from the environment (a real deployment), not from the generated file."""
    return bool(os.environ.get(PERSON_KEY_VARIABLE) and os.environ.get(FERNET_KEY_VARIABLE))


def load_secrets() -> dict[str, str]:
    """The keys in use, ``{"person_key_secret": …, "fernet_key": …}``: each from the environment, else from (or
    generated into) the data folder's secrets.json — the form a backup keeps them in."""
    hmac_key = os.environ.get(PERSON_KEY_VARIABLE)
    fernet_key = os.environ.get(FERNET_KEY_VARIABLE)
    if not (hmac_key and fernet_key):
        path = _secrets_file()
        if path.exists():
            stored = json.loads(path.read_text())
        else:
            stored = {"person_key_secret": secrets.token_urlsafe(32), "fernet_key": Fernet.generate_key().decode()}
            save_secrets(path, stored)
        hmac_key = hmac_key or stored["person_key_secret"]
        fernet_key = fernet_key or stored["fernet_key"]
    return {"person_key_secret": hmac_key, "fernet_key": fernet_key}


def save_secrets(path: Path, keys: dict[str, str]) -> None:
    """Write ``keys`` to ``path`` (mode 600 from the start): as secrets.json, or as ``NAME=value`` lines for a
    systemd EnvironmentFile when the name ends in ``.env``."""
    if path.suffix == ".env":
        body = (f"{PERSON_KEY_VARIABLE}={keys['person_key_secret']}\n"
                f"{FERNET_KEY_VARIABLE}={keys['fernet_key']}\n")
    else:
        body = json.dumps({"person_key_secret": keys["person_key_secret"], "fernet_key": keys["fernet_key"]},
                          indent=2)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(body)
    path.chmod(0o600)


def read_secrets(path: Path) -> dict[str, str]:
    """The keys :func:`save_secrets` wrote to ``path`` (either form; a key missing is left out)."""
    body = path.read_text()
    if path.suffix != ".env":
        stored = json.loads(body)
        return {name: stored[name] for name in ("person_key_secret", "fernet_key") if name in stored}
    names = {PERSON_KEY_VARIABLE: "person_key_secret", FERNET_KEY_VARIABLE: "fernet_key"}
    pairs = (line.split("=", 1) for line in body.splitlines() if "=" in line and not line.lstrip().startswith("#"))
    return {names[key.strip()]: value.strip().strip('"') for key, value in pairs if key.strip() in names}


def load_vault() -> Vault:
    """The platform's vault: keys from the environment, else from (or generated into) the data folder."""
    keys = load_secrets()
    return Vault(keys["person_key_secret"].encode(), keys["fernet_key"].encode())


class Opener:
    """Opens sealed texts, and nothing else: what a Spark executor is sent to open the addresses and dates of birth
    it places and ages by (the Fernet key alone; the HMAC key that makes person keys stays with the driver)."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def open_texts(self, tokens: Sequence[str]) -> list[str]:
        """As :meth:`Vault.open_texts`."""
        return open_many(self.key, tokens)


class _Hmac:
    """HMAC-SHA256 under one key for many short messages: the keyed inner and outer SHA-256 states are
    computed once and copied per message (RFC 2104), instead of keyed afresh by ``hmac.digest`` for every
    message."""

    def __init__(self, key: bytes) -> None:
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def seal_many(fernet_key: bytes, texts: Sequence[bytes], now: int | None = None,
              random_bytes: Callable[[int], bytes] = os.urandom) -> list[str]:
    """Fernet tokens of many texts at once: each token is what ``Fernet(fernet_key).encrypt`` makes (version,
    time, a random IV, AES-128-CBC with PKCS7 padding, HMAC-SHA256) and any Fernet opens it.

    Why not ``Fernet.encrypt`` per text: it builds a cipher and an HMAC object for every token, and that
    set-up was the largest cost of importing a million records. Here CBC is computed as it is defined,
    C_j = AES(P_j ⊕ C_j-1) with C_0 the token's IV, for all tokens of one length together: one AES
    call per block position over the whole batch (the cipher is applied block by block, ECB being
    exactly that), the XOR chaining in numpy. tests/matching/test_privacy.py checks the tokens byte for
    byte against AES-CBC applied token by token, and opens them with Fernet. ``now`` (seconds) and
    ``random_bytes`` (the IVs' source) are for those tests.
    """
    raw = base64.urlsafe_b64decode(fernet_key)
    if len(raw) != 32:
        raise ValueError("Fernet key must be 32 url-safe base64-encoded bytes")
    signer, aes = _Hmac(raw[:16]), Cipher(algorithms.AES(raw[16:]), modes.ECB()).encryptor()
    header = np.frombuffer(b"\x80" + struct.pack(">Q", int(time.time()) if now is None else now), dtype=np.uint8)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    blocks_of = lengths // 16 + 1  # PKCS7 always pads, a whole block when the text fills its last one
    tokens: list[str] = [""] * len(texts)
    for blocks in np.unique(blocks_of):
        rows = np.flatnonzero(blocks_of == blocks)
        width = int(blocks) * 16
        plain = np.frombuffer(b"".join(texts[i] + bytes([width - len(texts[i])]) * (width - len(texts[i]))
                                       for i in rows.tolist()), dtype=np.uint8).reshape(len(rows), int(blocks), 16)
        ivs = np.frombuffer(random_bytes(16 * len(rows)), dtype=np.uint8).reshape(len(rows), 16)
        cipher = np.empty_like(plain)
        previous = ivs
        for j in range(int(blocks)):
            mixed = np.bitwise_xor(plain[:, j, :], previous)
            previous = np.frombuffer(aes.update(mixed.tobytes()), dtype=np.uint8).reshape(len(rows), 16)
            cipher[:, j, :] = previous
        signed = np.concatenate([np.broadcast_to(header, (len(rows), 9)), ivs, cipher.reshape(len(rows), width)],
                                axis=1).tobytes()
        size = 25 + width
        for n, i in enumerate(rows):
            body = signed[n * size:(n + 1) * size]
            tokens[i] = base64.urlsafe_b64encode(body + signer.digest(body)).decode()
    return tokens


def open_many(fernet_key: bytes, tokens: Sequence[str]) -> list[str]:
    """The texts of many Fernet tokens at once, each checked as ``Fernet.decrypt`` checks it (version byte, length,
    HMAC-SHA256, PKCS7 padding; no time limit): :class:`cryptography.fernet.InvalidToken` on the first that fails.

    Why not ``Fernet.decrypt`` per token: for the same reason as :func:`seal_many` (a cipher and an HMAC object per
    token). CBC decryption needs no chaining, P_j = AES⁻¹(C_j) ⊕ C_j-1, so every block of every token of one
    length is deciphered by one ECB call and the XOR done in numpy. The HMAC is still checked token by token,
    before anything is deciphered.
    """
    raw = base64.urlsafe_b64decode(fernet_key)
    if len(raw) != 32:
        raise ValueError("Fernet key must be 32 url-safe base64-encoded bytes")
    signer, aes = _Hmac(raw[:16]), Cipher(algorithms.AES(raw[16:]), modes.ECB()).decryptor()
    bodies: list[bytes] = []
    for token in tokens:
        try:
            body = base64.urlsafe_b64decode(token)
        except (ValueError, TypeError):
            raise InvalidToken from None
        if len(body) < 73 or (len(body) - 57) % 16 or body[0] != 0x80 or \
                not hmac.compare_digest(signer.digest(body[:-32]), body[-32:]):
            raise InvalidToken
        bodies.append(body)
    texts: list[str] = [""] * len(bodies)
    sizes = np.fromiter((len(b) for b in bodies), dtype=np.int64, count=len(bodies))
    for size in np.unique(sizes):
        rows = np.flatnonzero(sizes == size)
        signed = np.frombuffer(b"".join(bodies[i] for i in rows.tolist()), dtype=np.uint8).reshape(len(rows), -1)
        width = int(size) - 57
        cipher = signed[:, 25:25 + width]
        chained = np.concatenate([signed[:, 9:25], cipher[:, :-16]], axis=1)  # each block's predecessor, IV first
        deciphered = np.frombuffer(aes.update(cipher.tobytes()), dtype=np.uint8).reshape(len(rows), width)
        plain = np.bitwise_xor(deciphered, chained)
        pads = plain[:, -1].astype(np.int64)
        padded = np.arange(16) >= 16 - pads[:, None]  # the last ``pad`` bytes of each text must all be ``pad``
        if not np.all(((plain[:, -16:] == pads[:, None]) | ~padded).all(axis=1) & (pads >= 1) & (pads <= 16)):
            raise InvalidToken
        flat = plain.tobytes()
        for n, (i, pad) in enumerate(zip(rows.tolist(), pads.tolist(), strict=True)):
            texts[i] = flat[n * width:(n + 1) * width - pad].decode()
    return texts


def opened_fields(text: str) -> dict[str, str]:
    """The fields of an opened record token: ID number, name, phone and the date of birth a record without an ID
    number gave (``""`` when none: tokens sealed before issue 21 have three fields)."""
    id_number, name, phone, *rest = text.split("\t")
    return {"id_number": id_number, "name": name, "phone": phone, "birth": rest[0] if rest else ""}


class Vault:
    """Person keys and encryption of personal data."""

    def __init__(self, hmac_key: bytes, fernet_key: bytes) -> None:
        self._keyed = _Hmac(hmac_key)
        self._fernet_key = fernet_key
        self._fernet = Fernet(fernet_key)

    def person_key(self, normalised_id: str) -> str:
        """HMAC-SHA256 (hex) of a normalised ID number: the same person, the same key, nothing reversible."""
        return self._keyed.digest(normalised_id.encode()).hex()

    def tag(self, purpose: str, value: str) -> str:
        """A keyed, irreversible tag of ``value`` (for example a client address) for counting without storing it."""
        return self._keyed.digest(f"{purpose}:{value}".encode()).hex()[:32]

    def seal(self, text: str) -> str:
        """Encrypt one piece of personal data (a lead's contact) for storage."""
        return self._fernet.encrypt(text.encode()).decode()

    def unseal(self, token: str) -> str:
        """Decrypt what :meth:`seal` made; callers must audit the read."""
        return self._fernet.decrypt(token.encode()).decode()

    def seal_texts(self, texts: Sequence[str]) -> list[str]:
        """Fernet tokens of many texts (home addresses of an import), in bulk (see :func:`seal_many`)."""
        return seal_many(self._fernet_key, [t.encode() for t in texts])

    def opener(self) -> Opener:
        """An :class:`Opener` of this vault's sealed texts."""
        return Opener(self._fernet_key)

    def open_texts(self, tokens: Sequence[str]) -> list[str]:
        """The texts of many tokens (see :func:`open_many`), in memory only: for a run that must compare clear
        values (locating by address); it never writes them back."""
        return open_many(self._fernet_key, tokens)

    def key_and_seal(self, ids: Iterable[str], names: Iterable[str], phones: Iterable[str],
                     births: Iterable[str] | None = None) -> tuple[list[str], list[str]]:
        """Person keys and Fernet tokens (id, name, phone and, for a record without an ID number, the date of birth
        it gave) of many records, in bulk (see :func:`seal_many`).

        On one core: an import seals its records chunk by chunk while the database stores the previous
        chunk on the other (matching.pipeline).
        """
        ids, names, phones = (c.tolist() if hasattr(c, "tolist") else list(c) for c in (ids, names, phones))
        keys = [self.person_key(i) for i in ids]
        if births is None:
            texts = [f"{i}\t{n}\t{p}".encode() for i, n, p in zip(ids, names, phones, strict=True)]
        else:
            births = births.tolist() if hasattr(births, "tolist") else list(births)
            texts = [f"{i}\t{n}\t{p}\t{b}".encode() if b else f"{i}\t{n}\t{p}".encode()
                     for i, n, p, b in zip(ids, names, phones, births, strict=True)]
        return keys, seal_many(self._fernet_key, texts)

    def open(self, token: str) -> dict[str, str]:
        """Decrypt a token made by :meth:`seal`; callers must audit the read."""
        return opened_fields(self._fernet.decrypt(token.encode()).decode())


class SignedIds:
    """Tokens ``<version>.<id>.<nonce>.<mac>`` that stand for one stored row (an e-pass, an observation plan)
    without naming a person: the mac is HMAC-SHA256 over ``<version>.<id>.<nonce>`` under a key derived from the
    person-key secret (:meth:`Vault.tag`) under ``purpose``, so that no second secret is kept and a mac of one
    kind can never be taken for another's, a person key or a client tag; base64url without padding. The row keeps
    its nonce: drawing a new one voids every token given before.

    >>> tokens = SignedIds("NHX1", "test signing key")
    >>> vault = Vault(b"k" * 32, b"A" * 43 + b"=")
    >>> token = tokens.sign(vault, 7, "n" * 22)
    >>> token.startswith("NHX1.7.nnnn") and tokens.parse(vault, token) == (7, "n" * 22)
    True
    >>> tokens.parse(vault, token[:-1] + "A") is None
    True
    """

    def __init__(self, version: str, purpose: str) -> None:
        self.version, self.purpose = version, purpose
        self._pattern = re.compile(rf"{re.escape(version)}\.([1-9][0-9]{{0,17}})\.([A-Za-z0-9_-]{{16,32}})\."
                                   r"([A-Za-z0-9_-]{43})")

    @staticmethod
    def new_nonce() -> str:
        """A fresh nonce (22 URL-safe characters)."""
        return secrets.token_urlsafe(16)

    def _mac(self, vault: Vault, row_id: int, nonce: str) -> str:
        key = bytes.fromhex(vault.tag(self.purpose, self.version))
        digest = hmac.new(key, f"{self.version}.{row_id}.{nonce}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, vault: Vault, row_id: int, nonce: str) -> str:
        """The token of row ``row_id`` with its ``nonce``."""
        return f"{self.version}.{row_id}.{nonce}.{self._mac(vault, row_id, nonce)}"

    def parse(self, vault: Vault, token: object) -> tuple[int, str] | None:
        """(row id, nonce) of a well-formed token whose mac is right (compared in constant time); None otherwise."""
        found = self._pattern.fullmatch(token.strip()) if isinstance(token, str) else None
        if found is None:
            return None
        row_id, nonce, mac = int(found.group(1)), found.group(2), found.group(3)
        return (row_id, nonce) if hmac.compare_digest(self._mac(vault, row_id, nonce).encode(), mac.encode()) else None

