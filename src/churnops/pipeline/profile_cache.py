"""On-disk cache of reference profiles, keyed by the reference's sha256 and the settings.

A profile file is a NumPy ``.npz`` archive holding plain arrays and a JSON manifest; it is
read with ``allow_pickle=False``, so a tampered cache file cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from churnops.data.io import atomic_path
from churnops.monitor.profile import PROFILE_FORMAT, ReferenceProfile
from churnops.monitor.settings import MonitorSettings

logger = logging.getLogger(__name__)
MANIFEST_KEY = "__manifest__"


def profile_key(
    reference_sha256: str,
    row_range: tuple[int, int] | None,
    settings: MonitorSettings,
    dialect: tuple[str, ...] = (",", ".", "utf-8"),
) -> str:
    """Cache key: what the profile depends on - the reference bytes and how they are read, the row
    window and the column roles."""
    material = json.dumps(
        {
            "format": PROFILE_FORMAT,
            "sha256": reference_sha256,
            "rows": list(row_range) if row_range else None,
            "declared": sorted(settings.declared_types.items()),
            "dialect": list(dialect),
            "row_order": settings.row_order_key(),  # which columns keep their rows' order (TVD)
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def save_profile(profile: ReferenceProfile, path: Path, meta: dict[str, Any] | None = None) -> None:
    """Write a profile atomically."""
    manifest, arrays = profile.to_payload()
    manifest["meta"] = meta or {}
    encoded = np.frombuffer(json.dumps(manifest).encode("utf-8"), dtype=np.uint8)
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.savez(handle, **{MANIFEST_KEY: encoded}, **arrays)


def load_profile(path: Path) -> tuple[ReferenceProfile, dict[str, Any]] | None:
    """Read a profile; None (and a log line) when the file is missing or unusable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            manifest = json.loads(bytes(archive[MANIFEST_KEY]).decode("utf-8"))
            arrays = {name: archive[name] for name in archive.files if name != MANIFEST_KEY}
        return ReferenceProfile.from_payload(manifest, arrays), manifest.get("meta", {})
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        logger.warning("ignoring unusable profile cache %s: %s", path, exc)
        return None
