"""List the candidate files of a folder without ever leaving it.

Links are never followed out of the folder: a link to a file inside it is read through its resolved target,
a link pointing outside (or nowhere) is named and skipped, and links to folders are not entered at all
(they could loop, or repeat photos already counted).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from spaceport.validation.archive import JUNK_FOLDERS, is_junk
from spaceport.validation.codes import Code
from spaceport.validation.limits import Limits
from spaceport.validation.report import Issue


@dataclass
class FolderListing:
    """Files to inspect (relative name, path to read), files skipped, tolerated notes, and a fatal problem."""

    candidates: list[tuple[str, Path]] = field(default_factory=list)
    skipped: list[Issue] = field(default_factory=list)
    notes: list[Issue] = field(default_factory=list)
    problem: Issue | None = None


def list_folder(root: Path, limits: Limits) -> FolderListing:
    """Walk ``root`` (already resolved) in a stable order; stop with a problem past ``limits.max_files``."""
    listing = FolderListing()
    seen = 0

    def unreadable(error: OSError) -> None:
        relative = _relative(root, Path(error.filename or root))
        listing.notes.append(Issue(code=Code.UNREADABLE_FOLDER, path=relative, message="cannot be listed, skipped"))

    for folder, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        folder_path = Path(folder)
        dirnames.sort()
        _prune_folders(root, folder_path, dirnames, listing)
        for name in sorted(filenames):
            seen += 1
            if seen > limits.max_files:
                listing.problem = Issue(
                    code=Code.TOO_MANY_FILES, path="", message=f"more than {limits.max_files} files in the input"
                )
                return listing
            _add_file(root, folder_path / name, listing)
    # Walk order visits a folder's files before its subfolders'; a plain sort is what people expect to read.
    listing.candidates.sort()
    return listing


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _prune_folders(root: Path, folder: Path, dirnames: list[str], listing: FolderListing) -> None:
    """Drop junk folders and links to folders from the walk (in place, as os.walk expects), noting each."""
    for name in list(dirnames):
        path = folder / name
        if name in JUNK_FOLDERS:
            relative = _relative(root, path) + "/"
            listing.notes.append(Issue(code=Code.JUNK_FILE, path=relative, message="operating-system metadata folder"))
            dirnames.remove(name)
        elif path.is_symlink():
            listing.notes.append(
                Issue(code=Code.SYMLINK_SKIPPED, path=_relative(root, path), message="a link to a folder, not followed")
            )
            dirnames.remove(name)


def _add_file(root: Path, path: Path, listing: FolderListing) -> None:
    relative = _relative(root, path)
    if is_junk(Path(relative).parts):
        listing.notes.append(Issue(code=Code.JUNK_FILE, path=relative, message="operating-system metadata, skipped"))
        return
    try:
        mode = path.lstat().st_mode
    except OSError as error:
        listing.skipped.append(Issue(code=Code.UNREADABLE_IMAGE, path=relative, message=f"cannot be read: {error}"))
        return
    if stat.S_ISLNK(mode):
        target = _link_target_inside(root, path)
        if target is None:
            listing.skipped.append(
                Issue(code=Code.SYMLINK_OUTSIDE, path=relative, message="a link to outside the folder (or to nothing)")
            )
            return
        path = target
    listing.candidates.append((relative, path))


def _link_target_inside(root: Path, link: Path) -> Path | None:
    """The link's final target when it exists inside ``root``; None otherwise (nothing outside is touched)."""
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return target if target.is_relative_to(root) else None


@dataclass
class NameListing:
    """``list_folder``'s answer for a flat list of names: the names to inspect, notes and a fatal problem."""

    names: list[str] = field(default_factory=list)
    notes: list[Issue] = field(default_factory=list)
    problem: Issue | None = None


@dataclass
class _Folder:
    files: list[str] = field(default_factory=list)
    folders: dict[str, _Folder] = field(default_factory=dict)


def list_names(names: list[str], limits: Limits) -> NameListing:
    """Walk relative file names (an object store's keys under a prefix) exactly as ``list_folder`` walks a folder
    holding those files: junk folders and files skipped with the same notes, in the same order, and the same
    ``max_files`` stop, so a folder uploaded file by file gets the verdict it gets on disk."""
    root = _Folder()
    for name in names:
        parts = name.split("/")
        folder = root
        for part in parts[:-1]:
            folder = folder.folders.setdefault(part, _Folder())
        folder.files.append(parts[-1])
    listing = NameListing()
    _walk_names(root, "", limits, listing, [0])
    listing.names.sort()
    return listing


def _walk_names(folder: _Folder, prefix: str, limits: Limits, listing: NameListing, seen: list[int]) -> bool:
    """Visit ``folder`` as os.walk does (its junk subfolders noted, its files, then each subfolder in name order);
    False once ``max_files`` is passed."""
    kept = []
    for name in sorted(folder.folders):
        if name in JUNK_FOLDERS:
            listing.notes.append(
                Issue(code=Code.JUNK_FILE, path=f"{prefix}{name}/", message="operating-system metadata folder")
            )
        else:
            kept.append(name)
    for name in sorted(folder.files):
        seen[0] += 1
        if seen[0] > limits.max_files:
            listing.problem = Issue(
                code=Code.TOO_MANY_FILES, path="", message=f"more than {limits.max_files} files in the input"
            )
            return False
        relative = prefix + name
        if is_junk(tuple(relative.split("/"))):
            listing.notes.append(
                Issue(code=Code.JUNK_FILE, path=relative, message="operating-system metadata, skipped")
            )
        else:
            listing.names.append(relative)
    return all(_walk_names(folder.folders[name], f"{prefix}{name}/", limits, listing, seen) for name in kept)
