"""Which Latin-script codepage a non-UTF-8 text was written in, judged by how it reads.

The Windows codepages for Western, Central European, Turkish and Baltic languages agree
on ASCII and on typographic punctuation (’ “ ” – € at 0x80–0x9F) and differ in the
accented letters. Decoded with the wrong one, a text still decodes, but reads wrong:
symbols inside words (Polish "Za¿ó³æ"), lone accents ("˙"), words of accented letters
only (Cyrillic or Chinese read as Latin: "Ïðèâåò"), or letters no single language writes
together (Czech "Dìkuji, pøijdu" has the Italian ì and the Danish ø). Each candidate is
decoded and scored by those signs; the codepage whose text reads most like one language
wins, the more widely used one on a tie. A text that reads badly in all of them is
left to the statistical detector, which knows Cyrillic, Greek and the CJK encodings.

Short texts can be honestly ambiguous: a note whose only non-ASCII letter is the Turkish
ı reads as well as Czech or Icelandic ý, and then the more common codepage is chosen.
"""

from __future__ import annotations

import re
import unicodedata

# Letters beyond ASCII that each language writes in everyday text, then those it writes
# only in a few words or names, by the codepages that serve it (ISO 8859-2 places the
# Central European letters differently and serves the same languages as Windows-1250).
_CENTRAL = {
    "polish": ("ąćęłńóśźż", ""),
    "czech": ("áčďéěíňóřšťúůýž", ""),
    "slovak": ("áäčďéíĺľňóôŕšťúýž", ""),
    "hungarian": ("áéíóöőúüű", ""),
    "slovene, croatian": ("čćđšž", ""),
    "romanian": ("ăâîşţ", ""),
    "albanian": ("çë", ""),
    "german": ("äöüß", "é"),
}
_LANGUAGES: dict[str, dict[str, tuple[str, str]]] = {
    "cp1252": {
        "german": ("äöüß", "éàç"),
        "french": ("àâçéèêëîïôùûüœ", "æÿ"),
        "spanish": ("áéíñóúü", ""),
        "portuguese": ("áâãàçéêíóôõú", ""),
        "italian": ("àèéìòù", "íîóú"),
        "catalan": ("àçèéíïòóúü", ""),
        "dutch": ("éëïö", "èáóü"),
        "danish, norwegian": ("æøå", "éó"),
        "swedish, finnish": ("åäö", "éüšž"),
        "icelandic": ("áðéíóúýþæö", ""),
    },
    "cp1250": _CENTRAL,
    "iso8859_2": _CENTRAL,
    "cp1254": {"turkish": ("çğıöşüi̇", "âîû")},
    "cp1257": {
        "estonian": ("äõöüšž", ""),
        "latvian": ("āčēģīķļņšūž", ""),
        "lithuanian": ("ąčęėįšųūž", ""),
    },
}
CODEPAGES = list(_LANGUAGES)  # in order of use: the first wins a tie

_TOKEN = re.compile(r"\S+")
_PUNCTUATION = ".,;:!?\"'()[]{}<>«»“”„‘’‚‹›-–—…*_/¡¿"
# Between two letters only these fit: apostrophes (’ and the ´ some keyboards give), the
# Catalan middle dot, and dashes ("London–Paris").
_INNER = set("’‘´`ʼ·‐‑–—")
_SAMPLE = 64 * 1024


def best_codepage(data: bytes) -> tuple[str, str] | None:
    """(codepage, text) for the Latin-script codepage `data` reads best in, or None when
    it reads like none of them."""
    best: tuple[float, str, str] | None = None
    for codepage in CODEPAGES:
        try:
            text = data.decode(codepage)
        except UnicodeDecodeError:
            continue
        score = implausibility(text[:_SAMPLE], _LANGUAGES[codepage])
        if score is not None and (best is None or score < best[0]):
            best = (score, codepage, text)
    return (best[1], best[2]) if best else None


def implausibility(text: str, languages: dict[str, tuple[str, str]]) -> float | None:
    """How badly `text` reads as one of `languages`: 0 when every character beyond ASCII
    is in place, higher per out-of-place one; None when it cannot be text in them at all."""
    letters: dict[str, int] = {}
    odd = 0.0
    mixed = foreign = 0
    beyond_ascii = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token.isascii():
            continue
        beyond_ascii += sum(1 for c in token if not c.isascii())
        core = token.strip(_PUNCTUATION)
        has_letter = False
        for i, c in enumerate(core):
            if c.isascii():
                continue
            if c.isalpha():
                letters[c.lower()] = letters.get(c.lower(), 0) + 1
                has_letter = True
            elif 0 < i < len(core) - 1 and core[i - 1].isalpha() and core[i + 1].isalpha() and c not in _INNER:
                return None  # a symbol inside a word: a letter of another codepage
            elif unicodedata.category(c) in ("Sk", "Cc", "Co", "Cn"):
                odd += 1  # a lone accent or a control character: never written on purpose
        if has_letter:
            if any(c.isascii() and c.isalpha() for c in core):
                mixed += 1
            else:
                foreign += 1
    if foreign > mixed:
        return None  # words of accented letters only: another script read as Latin
    unexplained = min(
        (sum(count * _cost(letter, common, rare) for letter, count in letters.items())
         for common, rare in languages.values()),
        default=0.0,
    )
    return (unexplained + odd) / max(beyond_ascii, 1)


def _cost(letter: str, common: str, rare: str) -> float:
    if letter in common:
        return 0.0
    return 0.5 if letter in rare else 1.0
