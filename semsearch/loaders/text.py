"""Plain text and source code: the file is the text."""

from __future__ import annotations

from pathlib import Path

from .base import Document, decode

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
    return Document(decode(data), format="text")


def read_code(data: bytes, path: Path) -> Document:
    return Document(decode(data), format="code", code=True)
