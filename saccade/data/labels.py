"""Labels from a CSV (``make_dataset("folder", root=ROOT, labels="labels.csv")``): the layout
pathology datasets come in (CLAM's ``slide_id,label``), a flat folder of slides, or a folder
of folders, and one table naming each slide's class and, optionally, its split or fold.

    slide,label,split            slide,label,fold
    case-01.svs,tumour,train     case-01,tumour,0
    case-02.svs,normal,test      case-02,normal,1

Columns (names case-insensitive): ``slide`` (or ``slide_id``), ``label``, and optionally
``split`` (``train`` or ``test``) or ``fold`` (an integer; ``fold=K`` holds fold K out as the
test split, every other fold trains). Without either, the folder dataset's seeded hold-out
fraction of each class is the test split. A ``slide`` names a file under ROOT by its path
relative to ROOT (``a/b.svs``), its file name (``b.svs``) or its name without the suffix
(``b``, CLAM's slide_id); nothing outside the files found under ROOT is ever opened. Class
names are the sorted distinct labels of the rows used.

What does not fit is reported, never fatal while something is left (``LabelTable.problems``,
which the folder dataset emits as one warning): a slide listed but not found under ROOT, a
file found but not listed, a name that matches several files, a row without a label, an
unknown split value, a fold that is not an integer, a slide listed twice. A missing column,
a missing CSV, ``fold`` given without a fold column (or a fold column without ``fold``), a
fold K that no row has, and a table with no usable row are ValueErrors naming the input.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

#: the split values accepted in a ``split`` column (case-insensitive)
SPLITS = ("train", "test")
#: how many names a problem lists before "... and N more"
SHOWN = 8


@dataclass
class LabelTable:
    """The rows of a labels CSV matched to the files under ROOT.

    ``entries``: (path, class name, split) with split "train", "test", or None when the
    table has neither a split nor a fold column (the caller's hold-out decides);
    ``problems``: one sentence per kind of row or file left out."""

    entries: list[tuple[Path, str, str | None]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def class_names(self) -> list[str]:
        return sorted({label for _, label, _ in self.entries})


def _listing(values: list[str]) -> str:
    shown = ", ".join(repr(v) for v in values[:SHOWN])
    return shown + (f" and {len(values) - SHOWN} more" if len(values) > SHOWN else "")


def _read_rows(path: Path) -> tuple[list[dict[str, str]], set[str]]:
    """The CSV's rows as dicts keyed by lower-case column name, and the columns."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's BOM
            reader = csv.DictReader(f)
            columns = {(c or "").strip().lower() for c in reader.fieldnames or []}
            rows = [
                {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k}
                for row in reader
            ]
    except UnicodeDecodeError:
        raise ValueError(f"labels={str(path)!r} is not a UTF-8 text CSV") from None
    except csv.Error as e:
        raise ValueError(f"labels={str(path)!r} is not a valid CSV ({e})") from None
    return rows, columns


def _index(files: list[Path], root: Path) -> dict[str, list[Path]]:
    """Every name a file may be listed by: its path relative to ROOT, its file name and its
    name without the suffix."""
    index: dict[str, list[Path]] = {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        for key in {rel, path.name, path.stem, rel.rsplit(".", 1)[0]}:
            index.setdefault(key, []).append(path)
    return index


def read_labels(
    labels: str | os.PathLike, root: Path, files: list[Path], fold: int | None = None
) -> LabelTable:
    """Match the rows of the CSV ``labels`` to ``files`` (the candidate files under ``root``).

    Args:
        labels: the CSV's path (module docstring).
        root: the dataset's root; ``files`` are under it.
        files: every candidate image file under ``root``.
        fold: hold fold K out as the test split (the table must have a ``fold`` column).

    Returns:
        The ``LabelTable``; ValueError for what the module docstring names.
    """
    path = Path(labels).expanduser()
    if not path.is_file():
        raise ValueError(f"labels={str(labels)!r} is not a file (a CSV with slide,label columns)")
    rows, columns = _read_rows(path)
    slide_col = "slide" if "slide" in columns else "slide_id" if "slide_id" in columns else None
    if slide_col is None or "label" not in columns:
        raise ValueError(
            f"labels={str(labels)!r} has columns {sorted(columns)}; needed: slide (or "
            "slide_id) and label, optionally split or fold"
        )
    if fold is not None and "fold" not in columns:
        raise ValueError(f"fold={fold!r}, but labels={str(labels)!r} has no fold column")
    if fold is None and "fold" in columns and "split" not in columns:
        raise ValueError(
            f"labels={str(labels)!r} has a fold column: pass fold=K (--fold K) to hold fold K "
            "out as the test split"
        )
    by_fold = fold is not None
    by_split = not by_fold and "split" in columns
    index = _index(files, root)
    table = LabelTable()
    missing, ambiguous, unlabelled, duplicated = [], [], [], []
    bad_split: dict[str, int] = {}
    bad_fold: dict[str, int] = {}
    folds: set[int] = set()
    used: set[Path] = set()
    for row in rows:
        name, label = row.get(slide_col, ""), row.get("label", "")
        if not name and not label:
            continue  # a blank line
        matches = index.get(name, [])
        split: str | None = None
        if by_split:
            split = row.get("split", "").lower()
            if split not in SPLITS:
                bad_split[row.get("split", "")] = bad_split.get(row.get("split", ""), 0) + 1
                continue
        if by_fold:
            try:
                k = int(row.get("fold", ""))
            except ValueError:
                bad_fold[row.get("fold", "")] = bad_fold.get(row.get("fold", ""), 0) + 1
                continue
            folds.add(k)
            split = "test" if k == fold else "train"
        if not label:
            unlabelled.append(name)
        elif not matches:
            missing.append(name)
        elif len(matches) > 1:
            ambiguous.append(
                f"{name} ({', '.join(p.relative_to(root).as_posix() for p in matches)})"
            )
        elif matches[0] in used:
            duplicated.append(name)
        else:
            used.add(matches[0])
            table.entries.append((matches[0], label, split))
    if by_fold and fold not in folds:
        raise ValueError(f"fold={fold!r}: labels={str(labels)!r} has folds {sorted(folds)}")
    unlisted = [p.relative_to(root).as_posix() for p in files if p not in used]
    # names from the CSV are shown quoted: they are the user's text, not paths opened
    notes = [
        (missing, "listed in {csv} but not found under {root}"),
        (ambiguous, "listed in {csv} match several files (list them by relative path)"),
        (duplicated, "listed in {csv} more than once (the first row kept)"),
        (unlabelled, "listed in {csv} have no label"),
        (unlisted, "under {root} are not listed in {csv} (not used)"),
    ]
    for names, what in notes:
        if names:
            text = what.format(csv=path.name, root=root)
            table.problems.append(f"{len(names)} slide(s) {text}: {_listing(names)}")
    for counts, column, accepted in (
        (bad_split, "split", "train, test"),
        (bad_fold, "fold", "an integer"),
    ):
        if counts:
            values = ", ".join(f"{v!r} ({n} rows)" for v, n in sorted(counts.items()))
            table.problems.append(
                f"{sum(counts.values())} row(s) of {path.name} have an unknown {column} value "
                f"(accepted: {accepted}), skipped: {values}"
            )
    if not table.entries:
        raise ValueError(
            f"no row of labels={str(labels)!r} names a readable file under {root}: "
            + ("; ".join(table.problems) or "the table is empty")
        )
    return table
