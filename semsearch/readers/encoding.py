"""Turning file bytes into text: which encoding, and whether it is text at all.

Order of evidence, strongest first: a byte-order mark; the zero bytes of UTF-16 without
one; valid UTF-8 (nearly all text today); the Latin-script Windows codepage in which the
text reads most like one European language (see `latin`); then charset-normalizer's
guess, trusted only when the result reads like text. Detectors happily "decode" binary
junk and short Latin-1 notes into some exotic codepage, so every guess is checked against
what text looks like.
"""

from __future__ import annotations

import re

from ..errors import DocumentError
from ..text.scripts import WIDE
from .latin import best_codepage

_BOMS = [
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
]
_SAMPLE = 8192
# Control characters that never appear in text files (tab, newlines, form feed and escape do).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f-\x9f\ufffe\uffff]")
_LONE_CR = re.compile(r"\r(?!\n)")
_WIDE_RUN = re.compile(f"[{WIDE}]+")
# Among candidates a detector scores alike, the encodings people actually use win.
_PREFERRED = [
    "cp1252", "iso8859_15", "latin_1", "cp1250", "iso8859_2", "cp1251", "koi8_r", "iso8859_5", "cp1253",
    "iso8859_7", "cp1254", "iso8859_9", "cp1257", "iso8859_13", "cp1255", "iso8859_8", "cp1256", "cp874",
    "cp932", "shift_jis", "euc_jp", "gb18030", "gb2312", "gbk", "big5", "cp949", "euc_kr",
]


def decode(data: bytes, declared: str | None = None) -> str:
    """Decode file bytes as text, detecting the encoding.

    `declared` is an encoding the file names itself (an HTML meta charset); it is used
    when the bytes are not UTF-8. Raises DocumentError("binary file") for data that is
    not text and DocumentError("unknown text encoding") for text it cannot decode safely.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(encoding)
            except UnicodeDecodeError:
                raise DocumentError(f"not valid {encoding.upper()[:6]} text") from None
    wide = _utf16_without_bom(data[:_SAMPLE])
    if wide:
        try:
            return data.decode(wide)
        except UnicodeDecodeError:
            pass
    if b"\x00" in data[:_SAMPLE]:
        raise DocumentError("binary file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        guess = _mostly_utf8(data)
        if guess is None and declared:
            guess = _declared(data, declared)
        if guess is None:
            found = best_codepage(data)
            guess = found[1] if found else None
        failure: DocumentError | None = None
        if guess is None:
            try:
                guess = _detected(data)
            except DocumentError as exc:
                failure = exc
        if guess is None or not _reads_as_written(guess):
            # A few stray bytes in ASCII text (a truncated UTF-8 character, junk) read as
            # symbols or lone capitals in any codepage: UTF-8 with the damage marked reads
            # better than the file in a codepage it was not written in.
            damaged = data.decode("utf-8", errors="replace")
            if damaged.count("\ufffd") - data.count("\ufffd".encode()) <= max(2, len(damaged) // 1000):
                guess = damaged
        if guess is None:
            raise failure or DocumentError("unknown text encoding") from None
        text = guess
    sample = text[:_SAMPLE]
    if len(_CONTROL.findall(sample)) > len(sample) / 100:
        raise DocumentError("binary file")
    if "\r" in text:
        # A lone CR ends a line (classic Mac OS files), as in editors. LF in its place keeps
        # every offset and lets the chunker see the lines and paragraphs; CRLF stays as is.
        text = _LONE_CR.sub("\n", text)
    return text


def _utf16_without_bom(sample: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when every other byte is zero, as in mostly-ASCII UTF-16."""
    if len(sample) < 16:
        return None
    even, odd = sample[0::2], sample[1::2]
    zero_even, zero_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if zero_odd > 0.4 and zero_even < 0.05:
        return "utf-16-le"
    if zero_even > 0.4 and zero_odd < 0.05:
        return "utf-16-be"
    return None


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 with a few damaged bytes (a truncated file, one stray byte) reads as UTF-8,
    the damage shown as U+FFFD, rather than the whole file as mojibake."""
    text = data.decode("utf-8", errors="replace")
    damaged = text.count("\ufffd") - data.count("\ufffd".encode())
    multibyte = sum(1 for c in text if ord(c) > 0x7F and c != "\ufffd")
    # Real UTF-8 shows valid multibyte characters and very few errors.
    if damaged <= max(2, len(text) // 1000) and multibyte >= damaged:
        return text
    return None


# Characters beyond ASCII that a Latin-codepage text holds outside words: typographic
# punctuation (dashes, quotes, ellipsis), currency signs, the no-break space.
_PUNCTUATION = {"Pd", "Pi", "Pf", "Po", "Ps", "Pe", "Sc", "Zs", "No"}


def _reads_as_written(text: str) -> bool:
    """Whether every character beyond ASCII is a letter inside a word (or a lower-case one
    standing alone: French "à", Portuguese "é"), or typographic punctuation."""
    import unicodedata

    for match in _NON_ASCII.finditer(text):
        char, at = match.group(), match.start()
        if char.isalpha():
            before = text[at - 1] if at else " "
            after = text[at + 1] if at + 1 < len(text) else " "
            if before.isalpha() or after.isalpha() or char.islower():
                continue
            return False
        if unicodedata.category(char) not in _PUNCTUATION:
            return False
    return True


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _declared(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        return None


def _detected(data: bytes) -> str:
    from charset_normalizer import from_bytes

    candidates = list(from_bytes(data[: 64 * 1024]))
    if not candidates:
        raise DocumentError("binary file")
    best = candidates[0]
    close = [c for c in candidates if c.chaos <= best.chaos + 0.01 and c.coherence >= best.coherence - 0.05]
    close.sort(key=lambda c: _PREFERRED.index(c.encoding) if c.encoding in _PREFERRED else len(_PREFERRED))
    encoding = close[0].encoding
    try:
        text = data.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        raise DocumentError("unknown text encoding") from None
    if best.chaos > 0.2 or not _reads_like_text(text) or _stray_wide(text):
        raise DocumentError("unknown text encoding")
    return text


def _stray_wide(text: str) -> bool:
    """CJK characters only one at a time, each right after an ASCII letter: a two-byte codec
    pairing a stray high byte with the letter after it ("I’m" in Windows-1252 read as
    Shift-JIS gives "I知"). Chinese and Japanese write CJK characters in runs."""
    runs = list(_WIDE_RUN.finditer(text[:_SAMPLE]))
    before = [text[run.start() - 1] if run.start() else " " for run in runs]
    return bool(runs) and all(
        len(run.group()) == 1 and c.isascii() and c.isalpha() for run, c in zip(runs, before)
    )


def _reads_like_text(text: str) -> bool:
    """Mostly letters and digits, with some real words: what a guessed codepage must give."""
    visible = [c for c in text[:_SAMPLE] if not c.isspace()]
    if not visible:
        return True
    alphanumeric = sum(1 for c in visible if c.isalnum())
    return alphanumeric / len(visible) >= 0.65 and re.search(r"\w{3,}", text[:_SAMPLE]) is not None
