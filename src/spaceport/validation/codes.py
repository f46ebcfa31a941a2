"""The stable codes of a validation report. Callers (the Lambda, the web client) match on them: never rename one."""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """Why an input, or one file in it, was rejected or only tolerated."""

    # The input as a whole.
    NOT_FOUND = "NOT_FOUND"
    TOO_FEW_IMAGES = "TOO_FEW_IMAGES"
    TOO_MANY_IMAGES = "TOO_MANY_IMAGES"
    TOO_MANY_FILES = "TOO_MANY_FILES"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    # Archives.
    UNSAFE_ARCHIVE = "UNSAFE_ARCHIVE"
    ARCHIVE_TOO_LARGE = "ARCHIVE_TOO_LARGE"
    ENCRYPTED_ARCHIVE = "ENCRYPTED_ARCHIVE"
    CORRUPT_ARCHIVE = "CORRUPT_ARCHIVE"
    NESTED_ARCHIVE = "NESTED_ARCHIVE"
    # One file.
    UNREADABLE_IMAGE = "UNREADABLE_IMAGE"
    UNSUPPORTED_FILE = "UNSUPPORTED_FILE"
    IMAGE_TOO_SMALL = "IMAGE_TOO_SMALL"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    DUPLICATE_IMAGES = "DUPLICATE_IMAGES"
    SYMLINK_OUTSIDE = "SYMLINK_OUTSIDE"
    # Tolerated, never a reason to reject.
    MISLABELLED_FILE = "MISLABELLED_FILE"
    JUNK_FILE = "JUNK_FILE"
    SYMLINK_SKIPPED = "SYMLINK_SKIPPED"
    UNREADABLE_FOLDER = "UNREADABLE_FOLDER"
    BAD_METADATA = "BAD_METADATA"
