"""Source code: the file is the text; top-level definitions (and Python methods) are sections.

A definition as a section gives the chunker a boundary to cut at (so a chunk tends to hold
whole functions) and gives each hit a location a person recognises: "store.py › class
Store › def add". Only what a line-based look can tell is recognised; a language it does
not know still reads as plain code, cut at blank lines.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DocumentError
from .base import Document, Section, decode

CODE_EXTENSIONS = {
    ".py", ".pyi", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".java", ".kt", ".kts", ".scala",
    ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".cs", ".go", ".rs", ".rb", ".php", ".swift",
    ".m", ".mm", ".r", ".jl", ".lua", ".pl", ".pm", ".sh", ".bash", ".zsh", ".fish", ".ps1",
    ".sql", ".css", ".scss", ".vue", ".svelte", ".ex", ".exs", ".erl", ".hs", ".ml", ".clj",
    ".dart", ".groovy", ".gradle", ".tf", ".proto", ".yaml", ".yml", ".toml", ".ini", ".cfg",
    ".conf", ".xml", ".mk", ".cmake", ".dockerfile",
}

# Files known by name rather than extension.
CODE_NAMES = {"Makefile", "Dockerfile", "CMakeLists.txt", "Rakefile", "Gemfile", "Justfile"}

_PYTHON = {".py", ".pyi"}
_PYTHON_DEFINITION = re.compile(r"^( *)(?:async\s+)?(def|class)\s+(\w+)")
# A definition keyword, then the name (Go methods have a receiver in between).
_DEFINITION = re.compile(
    r"^(?:export\s+(?:default\s+)?)?(?:(?:pub(?:\(\w+\))?|public|private|protected|internal|static|abstract|"
    r"final|sealed|open|async|unsafe|extern)\s+)*"
    r"(def|class|function|func|fn|struct|enum|trait|interface|impl|module|object|record|sub|type|defmodule|defp?)"
    r"\s+(?:\([^)]*\)\s*)?([\w.$:<>]+)"
)


# Minified bundles and generated blobs (a Sphinx searchindex.js is one 3 MB line) are not
# code anyone reads; hand-written code keeps its lines short.
_LONGEST_LINE = 5000


def read_code(data: bytes, path: Path) -> Document:
    text = decode(data)
    if len(text) > _LONGEST_LINE and max(map(len, text.splitlines()), default=0) > _LONGEST_LINE:
        raise DocumentError("minified or generated code")
    if path.suffix.lower() in _PYTHON:
        sections = _python_sections(text)
    else:
        sections = _top_level_sections(text)
    return Document(text, format="code", sections=sections, code=True)


def _lines(text: str):
    offset = 0
    for line in text.splitlines(keepends=True):
        yield offset, line
        offset += len(line)


def _python_sections(text: str) -> list[Section]:
    """Top-level functions and classes, and the methods directly inside those classes;
    a definition starts at its first decorator."""
    sections: list[Section] = []
    class_indent: int | None = None  # indentation of the current top-level class's body
    decorated_at: int | None = None
    for offset, line in _lines(text):
        stripped = line.strip()
        if stripped.startswith("@"):
            if decorated_at is None:
                decorated_at = offset
            continue
        match = _PYTHON_DEFINITION.match(line)
        start, decorated_at = (decorated_at if decorated_at is not None else offset), None
        if match:
            indent, keyword, name = len(match.group(1)), match.group(2), match.group(3)
            if indent == 0:
                sections.append(Section(start, 1, f"{keyword} {name}"))
                class_indent = -1 if keyword == "class" else None
            elif class_indent is not None and class_indent in (-1, indent):
                class_indent = indent
                sections.append(Section(start, 2, f"{keyword} {name}"))
            continue
        if stripped and not stripped.startswith("#") and not line[:1].isspace():
            class_indent = None  # other top-level code ends the class
    return sections


def _top_level_sections(text: str) -> list[Section]:
    """Definitions that start at column 0, in braces-and-keywords languages."""
    sections = []
    for offset, line in _lines(text):
        if line[:1].isspace():
            continue
        match = _DEFINITION.match(line)
        if match:
            sections.append(Section(offset, 1, f"{match.group(1)} {match.group(2)}"))
    return sections
