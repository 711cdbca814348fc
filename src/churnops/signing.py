"""Signatures of the caches churnops reads back: the reference profiles and the column classifications.

A cache file is only a faster way to what the reference says. Its format is checked when it is
read, but a well-formed file can still be rewritten - counts, values, the identifiers chosen - and
a run that trusted it would call a drifted batch "OK". So each cache file is written with a
keyed signature beside it (``<file>.sig``: BLAKE2b of its bytes, keyed), and a file whose
signature is missing or does not match is not used: the profile is built again from the reference.

The key lives outside the workspace and the shared cache: ``CHURNOPS_CACHE_KEY`` when set (the
same value on every runner that shares ``storage.profile_cache_url``), else a random key made once
per user in ``$XDG_CONFIG_HOME/churnops/cache.key`` (``~/.config/churnops/cache.key``, mode 0600).
Whoever can write the cache folder or the bucket but cannot read that key cannot make a cache
file churnops uses. Without any key (no home folder), nothing is cached.

This module imports nothing from churnops.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

KEY_ENV = "CHURNOPS_CACHE_KEY"
KEY_FILE = "cache.key"
SUFFIX = ".sig"
MAX_KEY_FILE_BYTES = 4096
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def key_file() -> Path:
    """Where this user's key is kept when ``CHURNOPS_CACHE_KEY`` is not set."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "churnops" / KEY_FILE


_SAID: list[str] = []
"""What this process said about its key already (once is enough)."""
MIN_KEY_CHARS = 16
"""``CHURNOPS_CACHE_KEY`` shorter than this (a space, a word) is no key: anyone could sign with it."""


def cache_key() -> bytes | None:
    """The key that signs the caches: from ``CHURNOPS_CACHE_KEY``, else this user's key file
    (made on first use); None when neither can be had, or the variable is too short to be one."""
    given = os.environ.get(KEY_ENV)
    if given is not None and given != "":
        if len(given.strip()) < MIN_KEY_CHARS:
            if not _SAID:
                import logging

                _SAID.append(KEY_ENV)
                logging.getLogger("churnops").warning(
                    "%s holds fewer than %d characters: not used as a key, nothing is cached", KEY_ENV, MIN_KEY_CHARS
                )
            return None
        return hashlib.sha256(given.encode("utf-8")).digest()
    path = key_file()
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    except OSError:
        return None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    except FileExistsError:  # made meanwhile by another run
        try:
            return _read_key(path)
        except OSError:
            return None
    except OSError:
        return None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    try:
        return _read_key(path)
    except OSError:
        return None


def _read_key(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        text = handle.read(MAX_KEY_FILE_BYTES).strip()
    if len(text) < 32:
        raise OSError(f"{path} holds no key")
    return hashlib.sha256(text).digest()


def signature(data: bytes, key: bytes, name: str) -> str:
    """The signature of ``data`` kept under the file name ``name`` (which holds the cache's key:
    the reference's sha256 and the settings), under ``key`` (hex): a signed file copied under
    another cache entry's name does not match there.

    >>> k = b"k" * 32
    >>> signature(b"profile", k, "a.npz") == signature(b"profile", k, "a.npz") != signature(b"profil3", k, "a.npz")
    True
    >>> signature(b"profile", k, "a.npz") != signature(b"profile", k, "b.npz")
    True
    """
    digest = hashlib.blake2b(key=key[:64], digest_size=32)
    digest.update(name.encode("utf-8") + b"\0")
    digest.update(data)
    return digest.hexdigest()


def signature_file(path: Path) -> Path:
    """The signature beside the cache file ``path``."""
    return path.with_name(path.name + SUFFIX)


def verify(data: bytes, sig: bytes | None, key: bytes, name: str) -> bool:
    """Whether ``sig`` (a signature file's bytes) signs ``data`` kept as ``name`` under ``key``.

    >>> k = b"k" * 32
    >>> sig = signature(b"x", k, "a").encode()
    >>> verify(b"x", sig, k, "a"), verify(b"y", sig, k, "a"), verify(b"x", sig, k, "b"), verify(b"x", None, k, "a")
    (True, False, False, False)
    """
    if sig is None:
        return False
    return hmac.compare_digest(sig.strip(), signature(data, key, name).encode("ascii"))
