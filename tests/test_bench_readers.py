"""``python -m saccade.bench --suite readers`` (saccade.bench.readers): saccade.Slide,
tiffslide and OpenSlide read the same regions of the same generated files, and the suite's
rows and targets."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tiffslide")
pytest.importorskip("openslide")

from saccade.bench import readers  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return readers.write_files(tmp_path_factory.mktemp("readers"), side=768, predict=False)


def test_the_three_readers_decode_the_same_pixels(files):
    for name, path in files.items():
        opened = {r: readers.Reader(r, str(path)) for r in readers.READERS}
        assert {r: h.shape() for r, h in opened.items()} == dict.fromkeys(opened, (768, 768))
        for size in readers.SIZES:
            for x, y in readers.locations((768, 768), size, 3):
                got = {r: h.read(x, y, size) for r, h in opened.items()}
                ours = got.pop("saccade")
                assert ours.shape == (size, size, 3) and ours.dtype == np.uint8
                assert ours.std() > 5  # on the tissue, not only glass
                for other, region in got.items():
                    if name == "deflate":  # lossless: the same pixels, whoever decodes
                        np.testing.assert_array_equal(ours, region, err_msg=f"{other} {x} {y}")
                    else:  # JPEG: the same libjpeg-turbo here, but decoders may differ
                        assert np.abs(ours.astype(int) - region).mean() < 2, (name, other)
        for h in opened.values():
            h.close()


def test_rows_have_their_fields_and_the_summary_checks_the_target(files):
    got = readers.measure_reads(str(files["deflate"]), repeats=2, workers=1, passes=2)
    rows = [{"phase": "read_region", "file": "deflate"} | r for r in got]
    assert len(rows) == 3 * len(readers.SIZES) * 4
    for r in rows:
        assert r["procs"] in ("1 process", "1 worker") and r["mode"] in ("cold", "warm")
        assert r["s"] > 0 and r["regions"] == 2 and r["passes"] == 2
        assert r["spread_s"][0] <= r["s"] <= r["spread_s"][1] and r["open_s"] > 0
        assert ("workers_start_s" in r) == (r["procs"] == "1 worker" and r["mode"] == "cold")
        assert r["regions_per_s"] == pytest.approx(2 / r["s"])
        assert r["mb_per_s"] == pytest.approx(2 * r["size"] ** 2 * 3 / 1e6 / r["s"])
    # the regions each reader decoded (their SHA-1) are the same pixels
    for size in readers.SIZES:
        assert len({r["sha1"] for r in rows if r["size"] == size}) == 1
    summary = readers.readers_summary(rows)
    assert "deflate: the readers' regions are the same pixels" in summary
    assert any(line.startswith("deflate: saccade.Slide's time") for line in summary)
    # the target: Slide's time against the faster of the two, in every condition
    fast: dict[tuple, float] = {}
    for r in rows:
        if r["reader"] != "saccade.Slide":
            key = (r["size"], r["mode"], r["procs"])
            fast[key] = min(fast.get(key, np.inf), r["s"])
    for r in rows:
        if r["reader"] == "saccade.Slide":
            r["s"] = 1.3 * fast[(r["size"], r["mode"], r["procs"])]
    (line,) = [x for x in readers.readers_summary(rows) if "saccade.Slide's time" in x]
    assert "1.30-1.30x over 8 conditions" in line and "missed in 256² cold 1 process 1.300x" in line
    print(readers.readers_table(rows))


@pytest.mark.slow  # starts an S3 and an HTTP server, and a dozen processes
def test_the_suite_from_the_command_line(tmp_path, capsys):
    from saccade.bench.cli import main

    out = tmp_path / "readers.json"
    main(
        ["--suite", "readers", "--sides", "512", "--repeats", "2", "--slides-dir", str(tmp_path)]
        + ["--json", str(out)]
    )
    rows = json.loads(out.read_text())
    reads = [r for r in rows if r["phase"] == "read_region"]
    assert len(reads) == len(readers.FILES) * len(readers.READERS) * len(readers.SIZES) * 4
    assert {(r["file"], r["reader"]) for r in reads} == {
        (f, shown) for f in readers.FILES for shown in readers.READERS.values()
    }
    predict = {r["where"]: r for r in rows if r["phase"] == "predict"}
    assert sorted(predict) == ["http", "local", "s3"]
    # the same slide over the network predicts what it predicts from disk, every time
    assert len({r["label"] for r in predict.values()}) == 1
    assert all(r["same_as_cold"] and 0 < r["warm_s"] and 0 < r["cold_s"] for r in predict.values())
    epochs = [r for r in rows if r["phase"] == "epoch"]
    assert sorted((r["where"], r["epoch"]) for r in epochs) == [
        ("local", 1),
        ("local", 2),
        ("s3", 1),
        ("s3", 2),
    ]
    assert all(r["per_image_ms"] == pytest.approx(1e3 * r["epoch_s"] / 32) for r in epochs)
    captured = capsys.readouterr()
    said = captured.out
    assert "| predict from | cold s | warm s | label |" in said
    for where in ("http", "s3"):
        assert f"predict over {where}: warm" in said
    assert "deflate: the readers' regions are the same pixels" in said
    assert "training from s3, epoch 2:" in said
    assert "127.0.0.1 - -" not in captured.err  # the S3 server logs no line per request
