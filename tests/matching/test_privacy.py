"""Person keys and bulk sealing: the batch tokens are Fernet tokens, byte for byte."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import struct

import pytest
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from matching.privacy import Vault, _Hmac, open_many, seal_many


def fernet_token(key: bytes, text: bytes, now: int, iv: bytes) -> str:
    """The Fernet specification applied to one text, with cryptography's own AES-CBC and PKCS7."""
    raw = base64.urlsafe_b64decode(key)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(text) + padder.finalize()
    encryptor = Cipher(algorithms.AES(raw[16:]), modes.CBC(iv)).encryptor()
    body = b"\x80" + struct.pack(">Q", now) + iv + encryptor.update(padded) + encryptor.finalize()
    return base64.urlsafe_b64encode(body + hmac.digest(raw[:16], body, "sha256")).decode()


class Ivs:
    """A reproducible IV source that remembers what it handed out."""

    def __init__(self, seed: int) -> None:
        self.rng, self.given = random.Random(seed), b""

    def __call__(self, size: int) -> bytes:
        chunk = self.rng.randbytes(size)
        self.given += chunk
        return chunk


def test_batch_tokens_are_the_fernet_tokens_of_each_text():
    key = Fernet.generate_key()
    # every padded length from one block to five, the exact multiples of 16 (a whole padding block)
    # among them, in an order that interleaves the lengths, and Chinese text
    texts = [("张" * (n % 7) + "x" * n).encode() for n in random.Random(7).sample(range(0, 72), 72)] + [b""]
    ivs = Ivs(1)
    tokens = seal_many(key, texts, now=1_700_000_000, random_bytes=ivs)
    # the IVs were drawn per length group, in the order of the groups' first appearance by length
    blocks = sorted({len(t) // 16 + 1 for t in texts})
    order = [i for b in blocks for i, t in enumerate(texts) if len(t) // 16 + 1 == b]
    iv_of = {i: ivs.given[16 * n:16 * (n + 1)] for n, i in enumerate(order)}
    assert tokens == [fernet_token(key, t, 1_700_000_000, iv_of[i]) for i, t in enumerate(texts)]
    fernet = Fernet(key)
    assert [fernet.decrypt(t.encode()) for t in tokens] == texts
    assert {fernet.extract_timestamp(t.encode()) for t in tokens} == {1_700_000_000}


def test_batch_tokens_are_fresh_and_bound_to_their_key():
    key = Fernet.generate_key()
    first, second = seal_many(key, [b"440605198503030011"] * 2)
    assert first != second  # a new IV per token: equal texts do not give equal tokens
    with pytest.raises(InvalidToken):
        Fernet(Fernet.generate_key()).decrypt(first.encode())
    tampered = base64.urlsafe_b64decode(first)
    tampered = tampered[:30] + bytes([tampered[30] ^ 1]) + tampered[31:]
    with pytest.raises(InvalidToken):
        Fernet(key).decrypt(base64.urlsafe_b64encode(tampered))
    with pytest.raises(ValueError, match="32"):
        seal_many(base64.urlsafe_b64encode(b"short"), [b"x"])
    assert seal_many(key, []) == []


@pytest.mark.parametrize("size", [0, 16, 32, 64, 65, 80])
def test_keyed_hash_is_hmac_sha256(size):
    key = bytes(range(size))
    for message in (b"", b"440605198503030011", b"x" * 200):
        assert _Hmac(key).digest(message) == hmac.new(key, message, hashlib.sha256).digest()


def test_key_and_seal():
    vault = Vault(b"s" * 32, Fernet.generate_key())
    ids = [f"44060519850303{i:04d}" for i in range(40)]
    names = ["张小明", "欧阳娜娜", "李", "Ａｌｉ"] * 10
    phones = ["13812345678", ""] * 20
    keys, tokens = vault.key_and_seal(ids, names, phones)
    assert keys == [hmac.new(b"s" * 32, i.encode(), hashlib.sha256).hexdigest() for i in ids]
    assert keys[0] == vault.person_key(ids[0])
    assert vault.tag("client", "10.0.0.1") == hmac.new(b"s" * 32, b"client:10.0.0.1", hashlib.sha256).hexdigest()[:32]
    # sealed without dates of birth (as before issue 21): three fields, opened with an empty birth
    assert [vault.open(t) for t in tokens] == [{"id_number": i, "name": n, "phone": p, "birth": ""}
                                               for i, n, p in zip(ids, names, phones, strict=True)]
    # a record without an ID number keeps the date of birth it gave (when it gave one); an identified one has none
    some_ids, births = [""] * 20 + ids[20:], ["1990-01-02", ""] * 10 + [""] * 20
    _, tokens = vault.key_and_seal(some_ids, names, phones, births)
    assert [vault.open(t) for t in tokens] == [{"id_number": i, "name": n, "phone": p, "birth": b}
                                               for i, n, p, b in zip(some_ids, names, phones, births, strict=True)]


def test_open_many_reads_what_fernet_and_seal_many_made_of_every_length():
    key = Fernet.generate_key()
    texts = ["", "桂城街道", "a" * 15, "b" * 16, "c" * 17, "广东省佛山市南海区桂城街道南桂东路12号3栋1402" * 3]
    tokens = [Fernet(key).encrypt(t.encode()).decode() for t in texts] + seal_many(key, [t.encode() for t in texts])
    assert open_many(key, tokens) == texts + texts
    assert open_many(key, []) == []


@pytest.mark.parametrize("spoil", ["flip a cipher byte", "flip the version", "cut the tag", "another key", "garbage"])
def test_open_many_refuses_a_token_fernet_would_refuse(spoil):
    key = Fernet.generate_key()
    good = Fernet(key).encrypt("南海大道1号".encode()).decode()
    body = bytearray(base64.urlsafe_b64decode(good))
    if spoil == "flip a cipher byte":
        body[30] ^= 1
    elif spoil == "flip the version":
        body[0] = 0x81
    elif spoil == "cut the tag":
        body = body[:-16]
    token = base64.urlsafe_b64encode(bytes(body)).decode()
    if spoil == "another key":
        token = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    elif spoil == "garbage":
        token = "not a token at all"
    with pytest.raises(InvalidToken):
        Fernet(key).decrypt(token)
    with pytest.raises(InvalidToken):
        open_many(key, [good, token])
