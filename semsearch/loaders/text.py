"""Plain text and source code: the file is the text."""

from __future__ import annotations

from pathlib import Path

from .base import Document, decode
from .rst import underlined_sections

TEXT_EXTENSIONS = {".txt", ".text", ".log", ".csv", ".tsv", ".json", ".jsonl", ".org", ".tex"}

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


def read_text(data: bytes, path: Path) -> Document:
    text = decode(data)
    # Plain-text notes often underline their headings the way reStructuredText does.
    sections = underlined_sections(text) if path.suffix.lower() in {".txt", ".text", ""} else []
    title = sections[0].title if sections and sections[0].start == 0 else None
    return Document(text, format="text", title=title, sections=sections)


def read_code(data: bytes, path: Path) -> Document:
    return Document(decode(data), format="code", code=True)
