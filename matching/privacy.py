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

import hashlib
import hmac
import json
import os
import secrets
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cryptography.fernet import Fernet

from gis.config import data_dir

PARALLEL_FROM = 100_000


def _secrets_file() -> Path:
    return data_dir() / "secrets.json"


def load_vault() -> Vault:
    """The platform's vault: keys from the environment, else from (or generated into) the data folder."""
    hmac_key = os.environ.get("NANHAI_PERSON_KEY_SECRET")
    fernet_key = os.environ.get("NANHAI_FERNET_KEY")
    if not (hmac_key and fernet_key):
        path = _secrets_file()
        if path.exists():
            stored = json.loads(path.read_text())
        else:
            stored = {"person_key_secret": secrets.token_urlsafe(32), "fernet_key": Fernet.generate_key().decode()}
            path.write_text(json.dumps(stored, indent=2))
            path.chmod(0o600)
        hmac_key = hmac_key or stored["person_key_secret"]
        fernet_key = fernet_key or stored["fernet_key"]
    return Vault(hmac_key.encode(), fernet_key.encode())


def _encrypt_chunk(args: tuple[bytes, list[bytes]]) -> list[str]:
    fernet = Fernet(args[0])
    return [fernet.encrypt(p).decode() for p in args[1]]


class Vault:
    """Person keys and encryption of personal data."""

    def __init__(self, hmac_key: bytes, fernet_key: bytes) -> None:
        self._hmac_key = hmac_key
        self._fernet_key = fernet_key
        self._fernet = Fernet(fernet_key)

    def person_key(self, normalised_id: str) -> str:
        """HMAC-SHA256 (hex) of a normalised ID number: the same person, the same key, nothing reversible."""
        return hmac.new(self._hmac_key, normalised_id.encode(), hashlib.sha256).hexdigest()

    def person_keys(self, ids) -> list[str]:
        key = self._hmac_key
        return [hmac.new(key, i.encode(), hashlib.sha256).hexdigest() for i in ids]

    def seal(self, id_number: str, name: str, phone: str) -> str:
        """Encrypt one record's personal fields into a Fernet token (text)."""
        return self.seal_many([id_number], [name], [phone])[0]

    def seal_many(self, ids, names, phones) -> list[str]:
        """Encrypt many records' personal fields, on every core when there are many."""
        payloads = [f"{i}\t{n}\t{p}".encode() for i, n, p in zip(ids, names, phones, strict=True)]
        if len(payloads) < PARALLEL_FROM or (os.cpu_count() or 1) < 2:
            return [self._fernet.encrypt(p).decode() for p in payloads]
        workers = os.cpu_count() or 2
        size = -(-len(payloads) // workers)
        chunks = [(self._fernet_key, payloads[i:i + size]) for i in range(0, len(payloads), size)]
        with ProcessPoolExecutor(workers) as pool:
            return [token for part in pool.map(_encrypt_chunk, chunks) for token in part]

    def open(self, token: str) -> dict[str, str]:
        """Decrypt a token made by :meth:`seal`; callers must audit the read."""
        id_number, name, phone = self._fernet.decrypt(token.encode()).decode().split("\t")
        return {"id_number": id_number, "name": name, "phone": phone}
