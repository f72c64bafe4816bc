"""Bytes of a web page -> text, read as browsers read it (BOM, HTTP charset, <meta>, UTF-8, then detection)."""

from __future__ import annotations

import codecs
import re

from embedgui.engine.tables import ENCODING_ALIASES  # the one alias table, shared with the table reader

_META_CHARSET = re.compile(rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.IGNORECASE)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.IGNORECASE)


def _codec(label: str | None) -> str | None:
    """Python codec name for an encoding label, or None when the label is unknown."""
    if not label:
        return None
    label = label.strip().lower()
    name = ENCODING_ALIASES.get(label, label)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_html(body: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Decode a page: BOM, then the Content-Type charset, then <meta>, then UTF-8, then detection. (text, codec)."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                      (codecs.BOM_UTF16_BE, "utf-16-be")):
        if body.startswith(bom):
            return body[len(bom):].decode(name, errors="replace"), name
    declared = []
    if content_type:
        match = _HEADER_CHARSET.search(content_type)
        declared.append(_codec(match.group(1)) if match else None)
    match = _META_CHARSET.search(body[:8192])
    meta = _codec(match.group(1).decode("ascii")) if match else None
    # A page whose <meta> says utf-16 was readable as ASCII to find that tag, so it cannot be UTF-16 (WHATWG rule).
    declared.append("utf-8" if meta and meta.startswith("utf-16") else meta)
    for name in [d for d in declared if d] + ["utf-8"]:
        try:
            return body.decode(name), name
        except UnicodeDecodeError:
            continue  # the declaration is wrong; try the next clue instead of producing mojibake
    from charset_normalizer import from_bytes

    best = from_bytes(body).best()
    if best is not None:
        name = _codec(best.encoding) or best.encoding
        return body.decode(name, errors="replace"), name
    fallback = next((d for d in declared if d), "utf-8")
    return body.decode(fallback, errors="replace"), fallback
