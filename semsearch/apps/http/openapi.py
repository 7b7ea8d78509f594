"""The API's OpenAPI description, served at /openapi.json. The objects are those the
library's `to_dict` methods give (tests hold the two to the same fields)."""

from __future__ import annotations

from typing import Any

from ... import __version__
from ...search import MODES
from .settings import ServeSettings


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


STRING = {"type": "string"}
# A character that is not white space, to JSON Schema's patterns and to Python's str.strip alike.
NOT_BLANK = "[^\\s\\x1c-\\x1f\\x85]"
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
OBJECT = {"type": "object", "additionalProperties": True}

LINE = {
    "type": "object",
    "required": ["number", "text", "hit"],
    "properties": {"number": INTEGER, "text": STRING, "hit": {"type": "boolean"}},
    "additionalProperties": False,
}

SEARCH_RESULT = {
    "type": "object",
    "description": "One passage, as `semsearch search --json` prints it.",
    "required": ["path", "score", "text", "start_line", "end_line", "chunk_id"],
    "properties": {
        "path": {"type": "string", "description": "The document's path (or a record's id)."},
        "score": NUMBER,
        "text": {"type": "string", "description": "The chunk's text."},
        "start_line": INTEGER,
        "end_line": INTEGER,
        "chunk_id": {"type": "integer", "description": "For /api/passage/{chunk_id}."},
        "title": _nullable(STRING),
        "section": _nullable({"type": "string", "description": "The heading path, e.g. \"Install › Linux\"."}),
        "page": _nullable(INTEGER),
        "start_char": INTEGER,
        "end_char": INTEGER,
        "metadata": _nullable(OBJECT),
        "format": _nullable(STRING),
        "explain": _nullable(OBJECT),
        "snippet": _nullable({"type": "string", "description": "The sentence or two that best answer the query."}),
        "reranked": _nullable({"type": "boolean", "description": "Whether the order is the reranker's blend (null: reranking was not asked for)."}),
        "highlights": _nullable({
            "type": "array", "description": "[start, end] offsets of the query's words in `text`.",
            "items": {"type": "array", "items": INTEGER, "minItems": 2, "maxItems": 2},
        }),
    },
    "additionalProperties": False,
}

SEARCH_RESPONSE = {
    "type": "object",
    "required": ["query", "mode", "results", "notes"],
    "properties": {
        "query": STRING,
        "mode": {"type": "string", "enum": list(MODES)},
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/SearchResult"}},
        "notes": {"type": "array", "items": STRING, "description": "What the search did that a caller should know."},
        "waiting": {"type": "integer", "description": "Chunks still waiting for their vectors (found by keywords alone until then)."},
    },
    "additionalProperties": False,
}

STATUS = {
    "type": "object",
    "required": ["path", "model", "documents", "chunks", "roots", "server"],
    "properties": {
        "path": STRING,
        "model": STRING,
        "dimensions": _nullable(INTEGER),
        "documents": INTEGER,
        "chunks": INTEGER,
        "vectors": INTEGER,
        "roots": {"type": "array", "items": STRING},
        "disk_bytes": INTEGER,
        "index_type": STRING,
        "chunking": OBJECT,
        "skipped": {"type": "array", "items": {"type": "object", "properties": {"path": STRING, "reason": STRING}}},
        "skipped_by_reason": {"type": "object", "additionalProperties": INTEGER},
        "index_vectors": INTEGER,
        "index_layout": OBJECT,
        "index_memory_bytes": INTEGER,
        "index_disk_bytes": INTEGER,
        "last_indexed": _nullable({"type": "string", "description": "When an indexing run last finished (UTC)."}),
        "waiting_chunks": {"type": "integer", "description": "Chunks written but waiting for their vectors: the backlog."},
        "waiting_texts": {"type": "integer", "description": "The distinct texts those chunks wait for."},
        "server": {
            "type": "object",
            "required": ["version", "read_only", "editor_url"],
            "properties": {"version": STRING, "read_only": {"type": "boolean"}, "editor_url": STRING},
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}

PASSAGE = {
    "type": "object",
    "required": ["chunk_id", "path", "start_line", "end_line", "text", "lines", "notes"],
    "properties": {
        "chunk_id": INTEGER,
        "path": STRING,
        "start_line": INTEGER,
        "end_line": INTEGER,
        "text": STRING,
        "lines": {"type": "array", "items": {"$ref": "#/components/schemas/Line"}},
        "title": _nullable(STRING),
        "section": _nullable(STRING),
        "page": _nullable(INTEGER),
        "format": _nullable(STRING),
        "total_lines": _nullable(INTEGER),
        "notes": {"type": "array", "items": STRING},
    },
    "additionalProperties": False,
}

DOCUMENT = {
    "type": "object",
    "required": ["path", "start_line", "end_line", "total_lines", "lines", "notes"],
    "properties": {
        "path": STRING,
        "start_line": INTEGER,
        "end_line": INTEGER,
        "total_lines": INTEGER,
        "lines": {"type": "array", "items": {"$ref": "#/components/schemas/Line"}},
        "title": _nullable(STRING),
        "format": _nullable(STRING),
        "notes": {"type": "array", "items": STRING},
    },
    "additionalProperties": False,
}

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": STRING, "message": STRING, "hint": _nullable(STRING)},
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}


def _query(name: str, schema: dict[str, Any], description: str, *, required: bool = False, repeated: bool = False) -> dict:
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": required, "description": description}
    if repeated:
        parameter.update(schema={"type": "array", "items": schema}, style="form", explode=True)
    else:
        parameter["schema"] = schema
    return parameter


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "The parameters are wrong (the message says which).", 401: "The token is missing or wrong.",
        403: "Refused: a write on a read-only server, or a request from another site's page.",
        404: "Not in the index.", 409: "Another process is writing to the index.", 413: "The request body is too large.",
        414: "The query or the request target is too long.", 415: "The body must be JSON.",
        421: "The Host header names another server.", 500: "The server failed.", 502: "The embedding model failed.",
        503: "The index cannot be read just now.",
    }
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {str(status): {"description": reasons[status], **error} for status in statuses}


def _ok(schema: str, description: str) -> dict[str, Any]:
    return {"200": {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}}


def description(settings: ServeSettings) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the API as `settings` serve it."""
    common = (400, 401, 414, 421, 500, 502, 503)
    paths: dict[str, Any] = {
        "/api/search": {"get": {
            "operationId": "search",
            "summary": "The passages that answer a query, best first (the options of `semsearch search`).",
            "parameters": [
                _query("q", {"type": "string", "minLength": 1, "maxLength": settings.max_query_chars, "pattern": NOT_BLANK}, "What to look for.", required=True),
                _query("mode", {"type": "string", "enum": list(MODES), "default": "hybrid"}, "Meaning and keywords, meaning, or keywords (BM25)."),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 10}, "The most results."),
                _query("per_file", {"type": "integer", "minimum": 0, "maximum": 10_000, "default": 2}, "The most results from one file (0: no cap)."),
                _query("path", {"type": "string"}, "Only documents matching this glob (gitignore-style; repeatable).", repeated=True),
                _query("ext", {"type": "string"}, "Only these extensions (md,pdf; repeatable).", repeated=True),
                _query("after", {"type": "string", "format": "date"}, "Only files modified on or after this date (YYYY-MM-DD; a time may follow, YYYY-MM-DDTHH:MM)."),
                _query("before", {"type": "string", "format": "date"}, "Only files modified before this date (YYYY-MM-DD; a time may follow)."),
                _query("explain", {"type": "boolean", "default": False}, "Each hit's dense and keyword ranks and scores."),
                _query("rerank", {"type": "boolean"}, "Rerank the best candidates through the endpoint's rerank model (default: when SEMSEARCH_RERANK_MODEL is set)."),
            ],
            "responses": {**_ok("SearchResponse", "The results."), **_errors(*common)},
        }},
        "/api/status": {"get": {
            "operationId": "status", "summary": "The index: model, documents, chunks, folders, when last indexed.",
            "responses": {**_ok("Status", "The index's status."), **_errors(401, 421, 500, 503)},
        }},
        "/api/passage/{chunk_id}": {"get": {
            "operationId": "passage", "summary": "A hit's chunk in the lines around it, its own lines marked.",
            "parameters": [
                {"name": "chunk_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}, "description": "A result's chunk_id."},
                _query("context", {"type": "integer", "minimum": 0, "maximum": 200, "default": 3}, "Lines on each side."),
            ],
            "responses": {**_ok("Passage", "The passage."), **_errors(400, 401, 404, 414, 421, 500, 503)},
        }},
        "/api/document": {"get": {
            "operationId": "document", "summary": "Lines of a document in the index (at most 2,000 at once); no other file.",
            "parameters": [
                _query("path", {"type": "string", "minLength": 1, "maxLength": 4096}, "As results name it, or relative to an indexed folder.", required=True),
                _query("start", {"type": "integer", "minimum": 1, "maximum": 2**62, "default": 1}, "The first line (from 1)."),
                _query("end", {"type": "integer", "minimum": 1, "maximum": 2**62}, "The last line (not before start: 400)."),
            ],
            "responses": {**_ok("DocumentLines", "The lines."), **_errors(400, 401, 404, 414, 421, 500, 503)},
        }},
        "/api/index": {"post": {
            "operationId": "update",
            "summary": "Bring every indexed folder up to date (only on a server started with --allow-write).",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "maxProperties": 0}}}},
            "responses": {
                "200": {"description": "What the run did.", "content": {"application/json": {"schema": OBJECT}}},
                **_errors(400, 401, 403, 409, 413, 415, 421, 500, 502, 503),
            },
        }},
    }
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "semsearch", "version": __version__,
            "description": "Semantic search over the documents of one index. Read-only unless started with --allow-write.",
        },
        "paths": paths,
        "components": {"schemas": {
            "SearchResult": SEARCH_RESULT, "SearchResponse": SEARCH_RESPONSE, "Status": STATUS, "Line": LINE,
            "Passage": PASSAGE, "DocumentLines": DOCUMENT, "Error": ERROR,
        }},
    }
    if settings.token:
        document["components"]["securitySchemes"] = {"token": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"token": []}]
    return document
