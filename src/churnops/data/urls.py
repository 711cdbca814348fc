"""Whether a table is named by a URL, and which local file a ``file://`` URL names.

Kept apart from :mod:`churnops.data.remote` (the object-storage client) so that a run on local
files never loads the client.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

URL = re.compile(r"(s3|gs|gcs|az|abfs|file)://", re.IGNORECASE)


def is_url(value: object) -> bool:
    """Whether ``value`` is an object-storage or file URL rather than a plain path.

    >>> is_url("s3://bank/batch.parquet"), is_url("data/batch.csv"), is_url("C://x")
    (True, False, False)
    """
    return isinstance(value, str | os.PathLike) and URL.match(os.fspath(value)) is not None


def in_object_storage(value: object) -> bool:
    """Whether ``value`` is an object-storage URL (a ``file://`` URL names a local file).

    >>> in_object_storage("s3://bank/x.csv"), in_object_storage("file:///tmp/x.csv"), in_object_storage("x.csv")
    (True, False, False)
    """
    return is_url(value) and not os.fspath(value).lower().startswith("file://")  # type: ignore[arg-type]


def local_path(value: str) -> str:
    """The local path a ``file://`` URL names; anything else as it is.

    >>> local_path("file:///tmp/my%20batch.csv"), local_path("data/batch.csv")
    ('/tmp/my batch.csv', 'data/batch.csv')
    """
    if value.lower().startswith("file://"):
        from urllib.parse import unquote

        parts = urlsplit(value)
        if parts.netloc.lower() not in ("", "localhost"):
            from churnops.errors import InputDataError
            from churnops.redact import redact

            raise InputDataError(
                f"{redact(value)}: a file:// URL names a file of this machine - write it file:///path (no host, "
                "no user)"
            )
        return unquote(parts.path)
    return value
