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


def _key_and_seal(args: tuple[bytes, bytes, list[str], list[str], list[str]]) -> tuple[list[str], list[str]]:
    hmac_key, fernet_key, ids, names, phones = args
    fernet = Fernet(fernet_key)
    keys = [hmac.new(hmac_key, i.encode(), hashlib.sha256).hexdigest() for i in ids]
    tokens = [fernet.encrypt(f"{i}\t{n}\t{p}".encode()).decode()
              for i, n, p in zip(ids, names, phones, strict=True)]
    return keys, tokens


class Vault:
    """Person keys and encryption of personal data."""

    def __init__(self, hmac_key: bytes, fernet_key: bytes) -> None:
        self._hmac_key = hmac_key
        self._fernet_key = fernet_key
        self._fernet = Fernet(fernet_key)

    def person_key(self, normalised_id: str) -> str:
        """HMAC-SHA256 (hex) of a normalised ID number: the same person, the same key, nothing reversible."""
        return hmac.new(self._hmac_key, normalised_id.encode(), hashlib.sha256).hexdigest()

    def tag(self, purpose: str, value: str) -> str:
        """A keyed, irreversible tag of ``value`` (for example a client address) for counting without storing it."""
        return hmac.new(self._hmac_key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()[:32]

    def seal(self, text: str) -> str:
        """Encrypt one piece of personal data (a lead's contact) for storage."""
        return self._fernet.encrypt(text.encode()).decode()

    def unseal(self, token: str) -> str:
        """Decrypt what :meth:`seal` made; callers must audit the read."""
        return self._fernet.decrypt(token.encode()).decode()

    def key_and_seal(self, ids, names, phones) -> tuple[list[str], list[str]]:
        """Person keys and Fernet tokens (id, name, phone) of many records, on every core when there are many."""
        ids, names, phones = list(ids), list(names), list(phones)
        workers = os.cpu_count() or 1
        if len(ids) < PARALLEL_FROM or workers < 2:
            return _key_and_seal((self._hmac_key, self._fernet_key, ids, names, phones))
        size = -(-len(ids) // workers)
        chunks = [(self._hmac_key, self._fernet_key, ids[i:i + size], names[i:i + size], phones[i:i + size])
                  for i in range(0, len(ids), size)]
        keys: list[str] = []
        tokens: list[str] = []
        with ProcessPoolExecutor(workers) as pool:
            for part_keys, part_tokens in pool.map(_key_and_seal, chunks):
                keys.extend(part_keys)
                tokens.extend(part_tokens)
        return keys, tokens

    def open(self, token: str) -> dict[str, str]:
        """Decrypt a token made by :meth:`seal`; callers must audit the read."""
        id_number, name, phone = self._fernet.decrypt(token.encode()).decode().split("\t")
        return {"id_number": id_number, "name": name, "phone": phone}
