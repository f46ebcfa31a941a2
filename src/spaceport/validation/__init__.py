"""Input validation: the one check of a folder or .zip of photos, shared by the CLI, the sfm stage and the
validate Lambda. Import from here; the submodules are an implementation detail."""

from spaceport.validation.archive import Extraction, safe_extract_zip
from spaceport.validation.codes import Code
from spaceport.validation.core import (
    ImageReceiver,
    ValidatedInput,
    new_buffer,
    validate_archive,
    validate_files,
    validate_path,
    validated_input,
)
from spaceport.validation.images import ImageInfo
from spaceport.validation.limits import Limits, LimitsError
from spaceport.validation.report import Issue, ValidationReport

__all__ = [
    "Code",
    "Extraction",
    "ImageInfo",
    "ImageReceiver",
    "Issue",
    "Limits",
    "LimitsError",
    "ValidatedInput",
    "ValidationReport",
    "new_buffer",
    "safe_extract_zip",
    "validate_archive",
    "validate_files",
    "validate_path",
    "validated_input",
]
