"""Cache files rewritten by a test, signed as churnops signs them: so that what is tried is the
check of their content (as if a bug of churnops had written them), not their signature."""

from __future__ import annotations

from pathlib import Path


def resign(path: Path) -> None:
    """Write the signature of ``path`` with the tests' key (see conftest: ``XDG_CONFIG_HOME``)."""
    from churnops.signing import cache_key, signature, signature_file

    key = cache_key()
    assert key is not None, "the tests' configuration folder holds no key"
    signature_file(path).write_text(signature(path.read_bytes(), key, path.name) + "\n")
