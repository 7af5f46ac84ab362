"""Static files: hashed names and precompressed copies (brotli and gzip) after ``collectstatic``, which
WhiteNoise serves with ``Cache-Control: max-age=315360000, public, immutable``.

``make demo`` runs ``collectstatic``; a deployment runs it once per release. Without it (a fresh
checkout, ``runserver``, most tests), or for a file changed since the last ``collectstatic``, the
plain name is used instead of an error page: WhiteNoise serves the source file from the finders
(``WHITENOISE_USE_FINDERS``) with a short cache. DEBUG uses plain names anyway (Django's rule).
"""
from __future__ import annotations

import os
from typing import Any

from django.contrib.staticfiles import finders
from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's compressed manifest storage that falls back to the plain name for an uncollected file."""

    def load_manifest(self) -> tuple[dict[str, Any], str]:
        """The manifest's entries, less those whose source changed after it was written (stale copies)."""
        hashed, manifest_hash = super().load_manifest()
        if not hashed:
            return hashed, manifest_hash
        try:
            written = os.stat(self.path(self.manifest_name)).st_mtime
        except (OSError, NotImplementedError):
            return hashed, manifest_hash
        fresh = {}
        for name, hashed_name in hashed.items():
            source = finders.find(name)
            if isinstance(source, str) and os.stat(source).st_mtime > written:
                continue
            fresh[name] = hashed_name
        return fresh, manifest_hash

    def stored_name(self, name: str) -> str:
        try:
            return super().stored_name(name)
        except ValueError:  # not in the manifest: not collected yet, or changed since
            return name
