"""Embedding through an OpenAI-compatible service: the client, its pacing and what it learns about endpoints."""
