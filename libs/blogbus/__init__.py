"""Shared event plumbing of the blog services (plumbing only, never domain models)."""
