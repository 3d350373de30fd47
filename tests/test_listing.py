"""The server's slide listing (``saccade.data.browse.scan_images``, ``python app.py --images
DIR``): what it refuses is counted with its reason (a link out of DIR, not an image or slide,
unreadable), and ``follow_links`` (``--images-follow-links``) offers links out of DIR."""

import numpy as np
import pytest
from PIL import Image

from saccade.data import browse
from saccade.data.slide import write_slide


@pytest.fixture
def folders(tmp_path):
    """DIR with a slide, an image, a link to a slide out of DIR, a link to a folder of slides
    out of DIR, a link inside DIR, a text file, a file of another format and an empty one."""
    outside, served = tmp_path / "elsewhere", tmp_path / "served"
    (outside / "more").mkdir(parents=True)
    served.mkdir()
    rng = np.random.default_rng(0)
    write_slide(served / "own.tif", rng.integers(0, 255, (300, 400), np.uint8), tile=64)
    write_slide(outside / "linked.tif", rng.integers(0, 255, (256, 320), np.uint8), tile=64)
    write_slide(outside / "more" / "deep.tif", rng.integers(0, 255, (200, 200), np.uint8), tile=64)
    Image.fromarray(np.zeros((50, 60), np.uint8)).save(served / "photo.png")
    (served / "linked.tif").symlink_to(outside / "linked.tif")
    (served / "cohort").symlink_to(outside / "more", target_is_directory=True)
    (served / "same.png").symlink_to(served / "photo.png")  # inside DIR: offered
    (served / "labels.csv").write_text("slide,label\nown,a\n")
    (served / "fake.svs").write_bytes(b"not a slide at all, just bytes" * 10)
    (served / "empty.tif").write_bytes(b"")
    (served / ".hidden.png").write_bytes(b"")  # hidden: neither offered nor counted
    return served, outside


def test_refused_files_are_counted_with_their_reason(folders):
    served, _ = folders
    listing = browse.scan_images(served)
    assert [f.name for f in listing.files] == ["own.tif", "photo.png", "same.png"]
    assert dict(listing.refused) == {
        "cohort": browse.LINK_OUT,
        "linked.tif": browse.LINK_OUT,
        "labels.csv": browse.NOT_IMAGE,
        "fake.svs": browse.NOT_IMAGE,
        "empty.tif": browse.UNREADABLE,
    }
    assert listing.counts() == {browse.LINK_OUT: 2, browse.NOT_IMAGE: 2, browse.UNREADABLE: 1}
    note = listing.note()
    assert note.startswith("5 files under DIR were refused: ")
    assert "a link out of DIR: 2 (e.g. 'cohort'; offered with --images-follow-links)" in note
    assert "unreadable: 1 (e.g. 'empty.tif')" in note
    # a chosen link out is refused, saying how the administrator can offer it
    with pytest.raises(browse.Refused, match="--images-follow-links") as info:
        browse.describe(served, "linked.tif")
    assert info.value.reason == browse.LINK_OUT
    assert browse.list_images(served) == listing.files  # the listing the app shows


def test_follow_links_offers_links_out_of_dir(folders):
    served, outside = folders
    listing = browse.scan_images(served, follow_links=True)
    names = [f.name for f in listing.files]
    assert names == ["cohort/deep.tif", "linked.tif", "own.tif", "photo.png", "same.png"]
    linked = browse.describe(served, "linked.tif", follow_links=True)
    assert (linked.width, linked.height, linked.slide) == (320, 256, True)
    assert linked.path == (outside / "linked.tif").resolve()
    assert browse.LINK_OUT not in listing.counts()
    # still refused with the opt-in: a name that climbs, an absolute one
    for bad, message in (("../elsewhere/linked.tif", "'..'"), ("/etc/passwd", "absolute")):
        with pytest.raises(browse.Refused, match=message):
            browse.describe(served, bad, follow_links=True)


def test_nothing_refused_says_nothing(tmp_path):
    Image.fromarray(np.zeros((50, 60), np.uint8)).save(tmp_path / "a.png")
    listing = browse.scan_images(tmp_path)
    assert listing.refused == [] and listing.note() == ""
    assert browse.scan_images(tmp_path / "missing").files == []


def test_the_app_says_what_it_refused_at_start_up_and_in_the_listing(folders, monkeypatch, capsys):
    from saccade.app import demo

    served, _ = folders
    made = []

    class Recorded(demo.App):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    # the server itself is not started: build_demo, warm-up and launch are stubbed
    monkeypatch.setattr(demo, "App", Recorded)
    monkeypatch.setattr(demo, "build_demo", lambda app: None)
    monkeypatch.setattr(demo, "launch", lambda *args, **kwargs: None)
    monkeypatch.setattr(demo.ExploreTab, "warm", lambda self: None)
    demo.main(["--images", str(served), "--no-train"])
    out = capsys.readouterr().out
    assert f"--images {served}: 3 files offered. 5 files under DIR were refused: " in out
    assert "offered with --images-follow-links" in out
    state = made[-1].state
    assert not state.images_follow_links
    info = state.server_info()
    assert info.startswith("The server's own slides") and "5 files under DIR were refused" in info
    assert made[-1].explore.server_list()["info"] == info  # a page load's listing says it too
    demo.main(["--images", str(served), "--images-follow-links", "--no-train"])
    out = capsys.readouterr().out
    assert "5 files offered. 3 files under DIR were refused" in out and "link out" not in out
    state = made[-1].state
    assert state.images_follow_links
    assert "linked.tif" in [name for _, name in state.server_choices()]
    assert state.server_image("linked.tif").slide  # a choice of it is accepted
