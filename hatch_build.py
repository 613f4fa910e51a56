"""The package's long description: the README, with its links into the repository made absolute.

A package index shows the README away from the repository, where a relative link (``docs/images/x.png``,
``docs/security.md``) leads nowhere. With the repository's address (``[tool.hatch.metadata.hooks.custom]
repository`` in pyproject.toml, or ``MAGICVIDEO_REPOSITORY`` for a fork's build), every relative link and
image becomes absolute at the release's tag (``v<version>``): images to the raw file, other links to the page,
in GitHub's URL scheme. Without an address the README is taken as it is, and the build says so.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface

# Markdown links and images, and the README's <img src="...">: a target without a scheme is in the repository.
_MARKDOWN = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")
_IMG_SRC = re.compile(r'(<img\s[^>]*?src=")(?P<target>[^"]+)(")')
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|#|/)", re.IGNORECASE)


def absolute_links(text: str, repository: str, ref: str) -> str:
    """``text`` with every repository-relative link and image made absolute."""
    base = repository.rstrip("/")

    def url(target: str, image: bool) -> str:
        if _EXTERNAL.match(target):
            return target
        return f"{base}/{'raw' if image else 'blob'}/{ref}/{target.removeprefix('./')}"

    text = _MARKDOWN.sub(lambda m: f"{m['bang']}[{m['text']}]({url(m['target'], bool(m['bang']))})", text)
    return _IMG_SRC.sub(lambda m: f"{m[1]}{url(m['target'], True)}{m[3]}", text)


class ReadmeHook(MetadataHookInterface):
    """Sets the dynamic ``readme`` (see the module docstring)."""

    PLUGIN_NAME = "custom"

    def update(self, metadata: dict[str, Any]) -> None:
        text = (Path(self.root) / "README.md").read_text(encoding="utf-8")
        repository = os.environ.get("MAGICVIDEO_REPOSITORY") or self.config.get("repository") or ""
        if repository:
            text = absolute_links(text, repository, f"v{metadata['version']}")
        else:
            print("hatch_build.py: no repository address ([tool.hatch.metadata.hooks.custom] repository or "
                  "MAGICVIDEO_REPOSITORY): the description keeps the README's relative links", file=sys.stderr)
        metadata["readme"] = {"content-type": "text/markdown", "text": text}
