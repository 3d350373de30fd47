"""DICOM WSI folders (saccade.data.dicom): a DICOM whole-slide image made here from a
generated SVS-like pyramid with wsidicomizer (which needs Debian's libturbojpeg0), opened as
a Slide through OpenSlide, and folders with two series or missing instances refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pydicom")
wsidicomizer = pytest.importorskip("wsidicomizer")

import saccade  # noqa: E402
from saccade.data import slide_writer  # noqa: E402
from saccade.data.slide import Slide, is_slide  # noqa: E402

pytestmark = pytest.mark.slow  # converts a slide (a few seconds)

MPP = 0.499


def write_svs(path, image: np.ndarray, mpp: float = MPP):
    """``image`` as an Aperio-style pyramid whose ImageDescription carries ``MPP = mpp``, the
    scale wsidicomizer carries into DICOM (``saccade.data.slide_writer.write_svs``)."""
    return slide_writer.write_svs(path, image, mpp)


def glass_slide(seed: int) -> np.ndarray:
    """A 2048 x 3072 RGB slide: bright glass around a textured block of tissue."""
    rng = np.random.default_rng(seed)
    image = np.full((2048, 3072, 3), 240, np.uint8)
    image[500:1500, 800:2200] = rng.integers(0, 200, (1000, 1400, 3), dtype=np.uint8)
    return cv2.GaussianBlur(image, (5, 5), 0)


def dicomize(source, folder) -> list:
    folder.mkdir()
    return wsidicomizer.WsiDicomizer.convert(
        source,
        folder,
        tile_size=256,
        include_label=False,
        include_overview=False,
        include_thumbnail=False,
        workers=1,
    )


@pytest.fixture(scope="module")
def dicom_wsi(tmp_path_factory):
    """(the SVS source, the DICOM folder made from it)."""
    root = tmp_path_factory.mktemp("dicom")
    write_svs(root / "source.svs", glass_slide(0))
    dicomize(root / "source.svs", root / "wsi")
    return root / "source.svs", root / "wsi"


@pytest.mark.parametrize("backend", ["auto", "openslide"])
def test_a_dicom_folder_opens_as_a_slide_with_its_levels(dicom_wsi, backend):
    source, folder = dicom_wsi
    assert len(list(folder.glob("*.dcm"))) == 5 and is_slide(folder)
    with Slide(folder, backend=backend) as slide, Slide(source) as svs:
        assert slide.backend == ("wsidicom" if backend == "auto" else backend)
        assert svs.backend == "tifffile"
        assert [(lv.width, lv.height) for lv in slide.levels] == [
            (lv.width, lv.height) for lv in svs.levels
        ]
        assert slide.shape == (2048, 3072) and slide.channels == 3
        np.testing.assert_allclose(slide.mpp, (MPP, MPP), rtol=1e-6)
        np.testing.assert_allclose(slide.background, (240, 240, 240), atol=1)
        # the JPEG tiles travel into DICOM as they are: the same pixels
        for level in (0, 2):
            a = slide.read_region(level, 100, 50, 700, 300)
            b = svs.read_region(level, 100, 50, 700, 300)
            assert np.abs(a.astype(int) - b).mean() < 1.0
        # one frame a tile (256 px): the background's coarsest level, 4 x 2 and 3 x 2 tiles
        assert slide.tiles_decoded == 1 + 4 * 2 + 3 * 2


def test_predict_on_a_dicom_folder_equals_its_source(dicom_wsi):
    source, folder = dicom_wsi
    model = saccade.load("checkpoints/cluttered-sum-learnt")
    a = saccade.predict(model, folder, slide_cache_dir=False)
    b = saccade.predict(model, str(source), slide_cache_dir=False)
    assert a.label == b.label and a.image_shape == b.image_shape == (2048, 3072)
    np.testing.assert_allclose(a.probs, b.probs, atol=0.02)
    assert a.slide == str(folder)


def test_a_folder_with_two_series_is_refused(dicom_wsi, tmp_path):
    source, folder = dicom_wsi
    both = tmp_path / "both"
    shutil.copytree(folder, both)
    write_svs(tmp_path / "other.svs", glass_slide(1))
    for path in dicomize(tmp_path / "other.svs", tmp_path / "other"):
        shutil.copy(path, both)
    with pytest.raises(ValueError, match=r"'.*both' holds 2 DICOM series.*one series per folder"):
        Slide(both)


def test_a_folder_missing_its_full_resolution_instance_is_refused(dicom_wsi, tmp_path):
    import pydicom

    source, folder = dicom_wsi
    partial = tmp_path / "partial"
    shutil.copytree(folder, partial)
    for path in partial.glob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if ds.TotalPixelMatrixColumns == 3072:
            path.unlink()  # the scan itself; the resampled levels stay
    assert len(list(partial.glob("*.dcm"))) == 4
    with pytest.raises(ValueError, match=r"missing instances.*full-resolution level"):
        Slide(partial)


def test_a_concatenation_with_a_part_missing_is_refused(dicom_wsi, tmp_path):
    import pydicom

    source, folder = dicom_wsi
    partial = tmp_path / "concatenated"
    shutil.copytree(folder, partial)
    for path in partial.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        if ds.TotalPixelMatrixColumns == 3072:  # level 0 as part 1 of 2, part 2 absent
            ds.ConcatenationUID = pydicom.uid.generate_uid()
            ds.InConcatenationNumber = 1
            ds.InConcatenationTotalNumber = 2
            ds.save_as(path)
    with pytest.raises(ValueError, match=r"missing instances: level 3072x2048.*1 are here"):
        Slide(partial)


def test_a_folder_without_dicom_is_not_a_slide(tmp_path):
    (tmp_path / "notes.txt").write_text("no slide here")
    assert not is_slide(tmp_path)
    with pytest.raises(ValueError, match="does not exist or is not a file"):
        Slide(tmp_path)
    (tmp_path / "x.dcm").write_bytes(b"not dicom at all")
    with pytest.raises(ValueError, match="not readable DICOM"):
        Slide(tmp_path)


def test_a_training_folder_lists_a_dicom_folder_as_one_slide(dicom_wsi, tmp_path):
    """ROOT/CLASS/case/*.dcm is one sample, read as a slide like the TIFFs beside it (its
    instances are not listed one by one), and the loader crops it."""
    source, folder = dicom_wsi
    root = tmp_path / "cohort"
    for split in ("train", "test"):
        shutil.copytree(folder, root / split / "tissue" / "case-1")
        (root / split / "glass").mkdir(parents=True)
        shutil.copy(source, root / split / "glass" / "blank.svs")
    train = saccade.make_dataset("folder", root=root, split="train", cache=False)
    assert train.class_names == ["glass", "tissue"]
    assert sorted((Path(p).name, label) for p, label in train.items) == [
        ("blank.svs", 0),
        ("case-1", 1),
    ]
    dicom_index = [Path(p).name for p, _ in train.items].index("case-1")
    sample = train[dicom_index]
    assert sample["label"] == 1 and sample["proxy"].shape[-2:] == (train.proxy_size,) * 2
    assert sample["proxy"].max() > 0  # the tissue, read from the DICOM instances
