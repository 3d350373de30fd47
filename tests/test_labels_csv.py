"""Labels from a CSV over a flat folder or a folder of folders (``saccade.data.labels``):
splits, folds, a slide listed but missing, a file present but not listed, unknown split values,
the errors, and a short training run through the command line's config."""

import json
import warnings

import numpy as np
import pytest
from PIL import Image

import saccade
from saccade.data import dataset_from_spec


def flat_folder(root, names, seed=0):
    """root/NAME.png for each name: small random RGB images of different sizes."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        side = 40 + 8 * i
        Image.fromarray(rng.integers(0, 256, (side, side + 4, 3), np.uint8)).save(path)
    return root


def write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")
    return path


def make(root, labels, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = saccade.make_dataset("folder", root=root, labels=labels, cache=False, **options)
    return ds, [str(w.message) for w in caught if "labels" in str(w.message)]


def test_split_column_with_a_missing_and_an_unlisted_slide(tmp_path):
    root = flat_folder(tmp_path / "slides", [f"case-{i}.png" for i in range(6)])
    csv = write_csv(
        tmp_path / "labels.csv",
        ["slide", "label", "split"],
        [
            ("case-0", "tumour", "train"),  # CLAM's slide_id: the name without suffix
            ("case-1.png", "normal", "train"),  # the file name
            ("case-2", "tumour", "test"),
            ("case-3", "normal", "Test"),  # case-insensitive
            ("case-4", "normal", "train"),
            ("case-9", "tumour", "train"),  # listed, no such file
            # case-5.png is present but not listed
        ],
    )
    train, notes = make(root, csv, split="train")
    test, _ = make(root, csv, split="test")
    assert train.class_names == ["normal", "tumour"]
    assert sorted(p.name for p, _ in train.items) == ["case-0.png", "case-1.png", "case-4.png"]
    assert {p.name: y for p, y in test.items} == {"case-2.png": 1, "case-3.png": 0}
    assert [y for p, y in train.items if p.name == "case-0.png"] == [1]
    assert len(notes) == 1  # one warning, naming both problems
    assert "1 slide(s) listed in labels.csv but not found under" in notes[0]
    assert "'case-9'" in notes[0]
    assert "1 slide(s) under" in notes[0] and "'case-5.png'" in notes[0]
    assert "case-5" not in {p.stem for p, _ in train.items + test.items}
    # the spec keeps the CSV: a checkpoint's spec rebuilds the same split
    spec = json.loads(json.dumps(test.spec.to_dict()))
    assert spec["labels"] == str(csv) and spec["fold"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rebuilt = dataset_from_spec(spec)
    assert rebuilt.items == test.items and rebuilt.class_names == test.class_names


def test_folds_a_folder_of_folders_and_unknown_values(tmp_path):
    names = [f"patient-{i // 2}/slide-{i}.png" for i in range(8)]
    root = flat_folder(tmp_path / "cohort", names)
    rows = [(f"patient-{i // 2}/slide-{i}.png", "ab"[i % 2], i // 2) for i in range(8)]
    rows += [("patient-0/slide-0.png", "b", 1)]  # listed twice: the first row kept
    rows += [("patient-1/slide-3.png", "a", "x")]  # not an integer fold
    csv = write_csv(tmp_path / "folds.csv", ["Slide", "Label", "Fold"], rows)
    for k in range(4):
        test, notes = make(root, csv, split="test", fold=k)
        train, _ = make(root, csv, split="train", fold=k)
        assert sorted(p.name for p, _ in test.items) == [
            f"slide-{2 * k}.png",
            f"slide-{2 * k + 1}.png",
        ]
        assert len(train) == 6 and not {p for p, _ in train.items} & {p for p, _ in test.items}
    assert "listed in folds.csv more than once" in notes[0]
    assert "1 row(s) of folds.csv have an unknown fold value (accepted: an integer)" in notes[0]
    # slide-0 keeps its first row's label, a
    assert [y for p, y in train.items if p.name == "slide-0.png"] == [0]
    with pytest.raises(ValueError, match=r"fold=7: .* has folds \[0, 1, 2, 3\]"):
        make(root, csv, fold=7)
    with pytest.raises(ValueError, match="has a fold column: pass fold=K"):
        make(root, csv)
    with pytest.raises(ValueError, match="needs labels=CSV"):
        saccade.make_dataset("folder", root=root, fold=0)


def test_unknown_split_values_are_skipped_and_nothing_left_is_an_error(tmp_path):
    root = flat_folder(tmp_path / "s", [f"{i}.png" for i in range(6)])
    rows = [(f"{i}.png", "ab"[i % 2], "train" if i < 4 else "test") for i in range(6)]
    # every training row of class b has an unknown split: nothing of b is left to train on
    bad_b = [(n, y, "val" if y == "b" and s == "train" else s) for n, y, s in rows]
    csv = write_csv(tmp_path / "l.csv", ["slide", "label", "split"], bad_b)
    with pytest.raises(ValueError, match="class 'b' has no readable image for split 'train'"):
        make(root, csv)
    rows.append(("2.png", "a", "validation"))
    csv = write_csv(tmp_path / "l.csv", ["slide", "label", "split"], rows)
    train, notes = make(root, csv)
    assert len(train) == 4
    assert "have an unknown split value (accepted: train, test), skipped: 'validation'" in notes[0]
    # no row names a file: a clear error, not an empty dataset
    empty = write_csv(tmp_path / "none.csv", ["slide", "label"], [("x.png", "a"), ("y", "b")])
    with pytest.raises(ValueError, match="no row of labels=.* names a readable file"):
        make(root, empty)
    bad = write_csv(tmp_path / "bad.csv", ["file", "class"], [("0.png", "a")])
    with pytest.raises(ValueError, match=r"has columns \['class', 'file'\]; needed: slide"):
        make(root, bad)
    with pytest.raises(ValueError, match="is not a file"):
        make(root, tmp_path / "missing.csv")
    one = write_csv(tmp_path / "one.csv", ["slide", "label"], [(f"{i}.png", "a") for i in range(6)])
    with pytest.raises(ValueError, match="name one class"):
        make(root, one)


def test_holdout_without_split_column_and_spreadsheet_bom(tmp_path):
    root = flat_folder(tmp_path / "s", [f"{i}.png" for i in range(10)])
    text = "slide_id,label\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(10))
    csv = tmp_path / "l.csv"
    csv.write_bytes(b"\xef\xbb\xbf" + text.encode())  # the BOM a spreadsheet writes
    train, notes = make(root, csv)
    test, _ = make(root, csv, split="test")
    assert notes == []
    assert len(test) == 2 and len(train) == 8  # ceil(0.2 * 5) per class
    assert not {p for p, _ in train.items} & {p for p, _ in test.items}


@pytest.mark.slow
def test_training_with_labels_and_fold_from_the_command_line(tmp_path):
    from saccade.evaluate.cli import main as evaluate_main
    from saccade.train.cli import parse_args
    from saccade.train.loop import fit

    root = flat_folder(tmp_path / "slides", [f"s{i}.png" for i in range(8)])
    rows = [(f"s{i}", "ab"[i % 2], i // 2) for i in range(8)]  # folds 0..3, an a and a b each
    csv = write_csv(tmp_path / "labels.csv", ["slide", "label", "fold"], rows + [("gone", "a", 0)])
    out = tmp_path / "ck" / "m"
    cfg, _ = parse_args(
        ["--dataset", "folder", "--root", str(root), "--labels", str(csv), "--fold", "2"]
        + ["--size", "64", "--steps", "2", "--batch-size", "4", "--workers", "0"]
        + ["--val-n", "4", "--test-n", "4", "--out", str(out)]
    )
    with pytest.warns(RuntimeWarning, match="'gone'"):
        result = fit(cfg, command="test")
    assert result["steps"] == 2
    model = saccade.load(out)
    assert model.config.dataset["labels"] == str(csv) and model.config.dataset["fold"] == 2
    assert model.config.class_names == ["a", "b"]
    preds = tmp_path / "preds.csv"
    with pytest.warns(RuntimeWarning, match="'gone'"):
        evaluate_main([str(out), "--noise", "0", "--predictions", str(preds)])
    paths = sorted(line.split(",")[1] for line in preds.read_text().splitlines()[1:])
    assert paths == [str(root / "s4.png"), str(root / "s5.png")]  # fold 2: s4 and s5


def test_a_table_with_both_split_and_fold(tmp_path):
    root = flat_folder(tmp_path / "s", [f"{i}.png" for i in range(8)])
    rows = [(f"{i}", "ab"[i % 2], "test" if i < 2 else "train", i // 4) for i in range(8)]
    csv = write_csv(tmp_path / "l.csv", ["slide", "label", "split", "fold"], rows)
    by_split, _ = make(root, csv, split="test")  # no fold given: the split column decides
    assert sorted(p.name for p, _ in by_split.items) == ["0.png", "1.png"]
    by_fold, _ = make(root, csv, split="test", fold=1)  # a fold given: the fold decides
    assert sorted(p.name for p, _ in by_fold.items) == ["4.png", "5.png", "6.png", "7.png"]
