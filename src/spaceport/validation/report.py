"""The validation report: the one shape all three doors (CLI, sfm stage, Lambda) return."""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from spaceport.validation.codes import Code


class Issue(BaseModel):
    """One finding. ``path`` is relative to the folder or archive, or the input itself for input-wide findings."""

    code: Code
    path: str
    message: str


class ValidationReport(BaseModel):
    """The verdict on one input.

    ``images`` is the count of usable images, ``image_paths`` lists them (relative, POSIX separators).
    ``problems`` explain a rejection and are empty when accepted; ``warnings`` are defects that were tolerated.
    """

    accepted: bool
    images: int = 0
    problems: list[Issue] = Field(default_factory=list)
    warnings: list[Issue] = Field(default_factory=list)
    image_paths: list[str] = Field(default_factory=list)

    def to_json(self) -> str:
        """One JSON object on one line; ASCII-only so it prints under any locale."""
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=True)

    def summary(self) -> str:
        """A few human-readable lines: the verdict, then each problem and warning."""
        verdict = "ACCEPTED" if self.accepted else "REJECTED"
        lines = [f"{verdict}: {self.images} usable image(s)"]
        lines += [f"  problem {issue.code} {issue.path}: {issue.message}" for issue in self.problems]
        lines += [f"  warning {issue.code} {issue.path}: {issue.message}" for issue in self.warnings]
        return "\n".join(lines)
