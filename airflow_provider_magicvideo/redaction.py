"""Keep secrets out of text that reaches an exception, a trigger event or a log.

One job: given text built from anything a server sent (error bodies, header values, URLs) and the secrets the
process holds (the API key), return the text with every recognisable form of those secrets replaced by ``***``.

* :func:`redact` masks, for each secret of at least :data:`MIN_SECRET_LENGTH` characters: the raw value (any
  case, so ``Bearer <key>`` under any spacing is covered too), its URL-quoted forms (``quote``, ``quote_plus``),
  JSON-escaped forms (ASCII and not, ``\\/``, Go's ``\\u003c`` style), ``repr`` forms, HTML-escaped, and base64
  (standard and urlsafe, padded or not) of the value, of ``Bearer <value>`` and of ``:<value>`` / ``<value>:``
  as HTTP Basic auth would send it. Base64 is matched by alignment-independent *cores* (the groups of a
  base64 text that encode bytes of the secret only), so the secret is caught inside any base64 blob; the whole
  blob around a core is masked.
* :func:`strip_signature` drops presigned query strings (``X-Amz-*``, ``Signature``, ``Expires`` ...) from URLs.
* :func:`truncate` shortens a user value before it is echoed in a message (ellipsis + total length).
* :class:`SecretHeaders` is a read-only, case-insensitive header mapping for ``requests`` and ``aiohttp`` whose
  ``repr``/``str`` mask credential headers, so an object caching one never shows the key in ``repr``/``vars``.

Redact *before* truncating: a cut secret is no longer recognisable (``truncate(..., secrets=...)`` does both).
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "MIN_SECRET_LENGTH", "SENSITIVE_HEADERS", "SecretHeaders", "redact", "strip_signature",
           "truncate"]

MASK = "***"
#: Secrets shorter than this are not searched for: masking every occurrence of a 3-letter string would wreck
#: messages, and a base64 core of a shorter value is too short to be specific. Hooks should refuse API keys
#: shorter than this up front (a real key is far longer), so that no key is ever left unmasked.
MIN_SECRET_LENGTH = 8

_B64_CHAR = re.compile(r"[A-Za-z0-9+/_\-]|%2[BF]|%3D", re.IGNORECASE)
_B64_PAD = re.compile(r"(?:=|%3D){1,2}", re.IGNORECASE)
_WRAPPED = r"(?:\r?\n)?"


def _unwrap(text: str) -> str:
    return text.replace("\r", "").replace("\n", "")


def _text_forms(value: str) -> set[str]:
    """The value as it may appear after one layer of text encoding (URL, JSON, repr, HTML)."""
    as_json = json.dumps(value)[1:-1]
    go_json = (json.dumps(value, ensure_ascii=False)[1:-1].replace("<", "\\u003c").replace(">", "\\u003e")
               .replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    forms = {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        quote_plus(value, safe="/"),
        as_json,
        as_json.replace("/", "\\/"),
        json.dumps(value, ensure_ascii=False)[1:-1],
        go_json,
        repr(value)[1:-1],
        ascii(value)[1:-1],
        repr(as_json)[1:-1],  # the JSON-escaped value inside a repr'd body snippet
        html.escape(value),
    }
    return {form for form in forms if form}


def _b64_variants(data: bytes) -> set[str]:
    std = base64.b64encode(data).decode("ascii")
    url = base64.urlsafe_b64encode(data).decode("ascii")
    return {std, std.rstrip("="), url, url.rstrip("=")}


def _byte_forms(value: str) -> list[bytes]:
    encoded = [value.encode("utf-8", "surrogatepass")]
    try:
        latin = value.encode("latin-1")  # requests encodes Basic-auth credentials as latin-1
    except UnicodeEncodeError:
        pass
    else:
        if latin != encoded[0]:
            encoded.append(latin)
    return encoded


def _base64_forms(value: str) -> set[str]:
    """Whole base64 tokens for the usual wrappings, plus the alignment-independent cores."""
    tokens: set[str] = set()
    for raw in _byte_forms(value):
        for wrapped in (raw, b"Bearer " + raw, b"bearer " + raw, b":" + raw, raw + b":"):
            tokens |= _b64_variants(wrapped)
        for offset in range(3):  # the secret may start at any position of a 3-byte group
            chunk = raw[offset:]
            chunk = chunk[: len(chunk) // 3 * 3]
            if len(chunk) >= 3:
                tokens |= {t.rstrip("=") for t in _b64_variants(chunk)}
    forms: set[str] = set()
    for token in tokens:
        forms |= {token, quote(token, safe=""), quote_plus(token)}
    return forms


@functools.lru_cache(maxsize=32)
def _matcher(secrets: tuple[str, ...]) -> tuple[re.Pattern[str], frozenset[str]] | None:
    literal: set[str] = set()
    encoded: set[str] = set()
    for secret in secrets:
        for variant in {secret, secret.strip()}:
            if len(variant) >= MIN_SECRET_LENGTH:
                literal |= _text_forms(variant)
                encoded |= _base64_forms(variant)
    forms = literal | encoded
    if not forms:
        return None
    # Base64 text may be wrapped into lines (MIME, PEM: every 64 or 76 characters): a core may span them.
    alternation = "|".join(
        _WRAPPED.join(re.escape(ch) for ch in form) if form in encoded else re.escape(form)
        for form in sorted(forms, key=lambda f: (-len(f), f)))
    # A lookahead finds every (overlapping) start position, so overlapping forms are all masked.
    pattern = re.compile(f"(?=({alternation}))", re.IGNORECASE | re.DOTALL)
    return pattern, frozenset(_unwrap(form).casefold() for form in encoded - literal)


def _widen_b64(text: str, start: int, end: int) -> tuple[int, int]:
    """Grow a base64 core's span over the rest of its base64 token (so no fragment of it survives)."""
    while start > 0:
        for width in (3, 1):
            if start - width >= 0 and _B64_CHAR.fullmatch(text, start - width, start):
                start -= width
                break
        else:
            break
    while end < len(text):
        match = _B64_CHAR.match(text, end)
        if not match:
            break
        end = match.end()
    pad = _B64_PAD.match(text, end)
    return start, pad.end() if pad else end


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every known form of every secret replaced by ``***``.

    Secrets that are ``None``, not strings, or shorter than :data:`MIN_SECRET_LENGTH` are ignored. Matching
    is case-insensitive. Safe to call on any text; returns it unchanged when there is nothing to mask.
    """
    if not text:
        return text
    usable = tuple(sorted({s for s in secrets if isinstance(s, str) and len(s.strip()) >= MIN_SECRET_LENGTH}))
    matcher = _matcher(usable) if usable else None
    if matcher is None:
        return text
    pattern, encoded = matcher
    spans: list[tuple[int, int]] = []
    for match in pattern.finditer(text):
        start, end = match.start(1), match.end(1)
        if _unwrap(match.group(1)).casefold() in encoded:
            start, end = _widen_b64(text, start, end)
        spans.append((start, end))
    if not spans:
        return text
    pieces: list[str] = []
    position = 0
    for start, end in _merge(spans):
        pieces += [text[position:start], MASK]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _merge(spans: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    spans.sort()
    current_start, current_end = spans[0]
    for start, end in spans[1:]:
        if start <= current_end:
            current_end = max(current_end, end)
        else:
            yield current_start, current_end
            current_start, current_end = start, end
    yield current_start, current_end


# Query strings of presigned URLs: AWS SigV4/V2 (X-Amz-*, Signature, Expires, AWSAccessKeyId), GCS (X-Goog-*),
# Azure SAS (sig=), CloudFront (Signature, Key-Pair-Id, Policy). The whole query string goes, not one parameter.
_SIGNED_QUERY = re.compile(
    r"\?[^\s'\"<>`]*?(?:signature|x-amz-|x-goog-|expires=|awsaccesskeyid=|sig=|key-pair-id=|policy=|token=)"
    r"[^\s'\"<>`#]*",
    re.IGNORECASE,
)


def strip_signature(text: str) -> str:
    """``text`` with the query string of every presigned URL in it replaced by ``?<redacted>``.

    Works on a bare URL or on a message containing URLs; other query strings are left alone. Fragments after a
    signed query are kept (they are never sent to a server).
    """
    return _SIGNED_QUERY.sub("?<redacted>", text) if text else text


def truncate(value: object, limit: int = 200, *, secrets: Iterable[str | None] = ()) -> str:
    """A user value fit to echo in a message: at most ``limit`` characters, then ``… (N characters)``.

    Strings are shown as they are, bytes as ``repr`` with ``(N bytes)``, anything else as ``repr`` (so the
    string ``'None'`` and ``None`` stay distinguishable). ``secrets`` are redacted before cutting.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        shown = redact(repr(data), secrets)  # redact the whole value: a secret cut at ``limit`` is not found
        if len(data) <= limit:
            return shown
        head = repr(data[:limit])  # as much repr as ``limit`` bytes take, closed by its own quote
        return f"{shown[:len(head) - 1]}{head[-1]}… ({len(data)} bytes)"
    text = redact(value if isinstance(value, str) else repr(value), secrets)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})


class SecretHeaders(Mapping[str, str]):
    """Read-only, case-insensitive request headers whose ``repr``/``str`` never show credential values.

    Pass it as ``headers=`` to ``requests`` or ``aiohttp`` (both accept any ``Mapping``). It has no
    ``__dict__`` (``vars()`` of it raises ``TypeError``); an object that caches one shows
    ``SecretHeaders({'Authorization': '***', ...})`` in ``repr``/``vars``. ``dict(headers)`` and item access
    return the real values: that is what a client needs, so never log those.
    """

    __slots__ = ("_items",)
    _items: dict[str, tuple[str, str]]  # lower-case name -> (name as given, value)

    def __init__(self, headers: Mapping[str, str] | Iterable[tuple[str, str]] = (), /, **more: str) -> None:
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers) + list(more.items())
        items: dict[str, tuple[str, str]] = {}
        for name, value in pairs:
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(f"header names and values must be str, got {type(name).__name__} "
                                f"{type(value).__name__} for {truncate(name, 40)}")
            items[name.lower()] = (name, value)
        object.__setattr__(self, "_items", items)

    @classmethod
    def bearer(cls, api_key: str, /, headers: Mapping[str, str] | None = None) -> SecretHeaders:
        """``Authorization: Bearer <api_key>`` followed by ``headers``."""
        return cls([("Authorization", f"Bearer {api_key}"), *(headers or {}).items()])

    def with_headers(self, headers: Mapping[str, str] | None = None, /, **more: str) -> SecretHeaders:
        """A copy with ``headers``/``more`` added or replaced (the original is unchanged)."""
        return SecretHeaders([*self.items(), *(headers or {}).items(), *more.items()])

    def __getitem__(self, name: str) -> str:
        if not isinstance(name, str):
            raise KeyError(name)
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SecretHeaders is read-only")

    def __repr__(self) -> str:
        shown = {name: MASK if key in SENSITIVE_HEADERS else value for key, (name, value) in self._items.items()}
        return f"SecretHeaders({shown!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[type[SecretHeaders], tuple[list[tuple[str, str]]]]:
        return SecretHeaders, (list(self.items()),)
