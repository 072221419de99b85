"""The source model's own answers (:mod:`stack.reference`, which the zoo runner uses too)."""

from __future__ import annotations

from stack.reference import source_answers

__all__ = ["source_answers"]
