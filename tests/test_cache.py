"""The pyramid cache: what it writes, what it trusts, and two processes building it at once."""

import multiprocessing as mp
import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import saccade
from saccade.data.cache import PyramidCache
from tests.helpers import read_only


def make_tree(root, n=3, side=200, seed=0):
    rng = np.random.default_rng(seed)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a = rng.integers(0, 256, (side, side + 8 * i, 3), dtype=np.uint8)
            Image.fromarray(a).save(root / c / f"{i}.png")
    return root


def folder(root, **kw):
    return saccade.make_dataset("folder", root=root, size=256, proxy_size=16, holdout=0.4, **kw)


def entries(ds):
    return sorted(ds.pyramid_cache.directory.rglob("meta.json"))


def test_first_read_writes_later_reads_map_and_agree(tmp_path):
    root = make_tree(tmp_path / "d")
    plain = folder(root, cache=False)
    cached = folder(root, cache_dir=tmp_path / "cache")
    first = [cached[i] for i in range(len(cached))]
    assert len(entries(cached)) == len(cached)
    for i, s in enumerate(first):
        again = cached[i]
        assert isinstance(again["image"], np.memmap) and not again["image"].flags.writeable
        lv = again["pyramid"].levels
        assert all(isinstance(x, np.memmap) for x in lv)
        ref = plain[i]
        assert np.array_equal(again["image"], ref["image"])
        assert np.array_equal(again["proxy"], ref["proxy"])
        assert np.array_equal(s["proxy"], ref["proxy"])
        full = saccade.Pyramid(ref["image"])
        assert all(np.array_equal(a, b) for a, b in zip(lv, full.levels, strict=True))
    # the default cache dir: beside the data, ignored as a class
    beside = folder(root)
    beside[0]
    assert (root / ".saccade-cache").is_dir() and beside.class_names == ["a", "b"]


def test_levels_from_keeps_only_what_crops_read(tmp_path):
    root = make_tree(tmp_path / "d")
    ds = folder(root, cache_dir=tmp_path / "c", levels_from=2)
    ds[0]
    s = ds[0]
    assert "image" not in s and s["pyramid"].levels[:2] == [None, None]
    z = torch.tensor([[1.0, 0.1, -0.2]])  # 0.3 * 256 / 8 = 9.6 px apart: levels 3 and 4
    want = saccade.glimpse(saccade.Pyramid(folder(root, cache=False)[0]["image"]), z, 8)
    assert torch.allclose(saccade.glimpse(s["pyramid"], z, 8), want)
    footprint = ds.pyramid_cache.nbytes()
    full = folder(root, cache_dir=tmp_path / "c2")
    full[0]
    assert footprint < full.pyramid_cache.nbytes() / 10  # level 0 and 1 are 15/16 of the pyramid


def test_a_changed_file_is_cached_again(tmp_path):
    root = make_tree(tmp_path / "d")
    ds = folder(root, cache_dir=tmp_path / "c")
    path, _ = ds.items[0]
    before = ds[0]["image"].copy()
    ds[0]
    a = np.zeros((200, 200, 3), np.uint8)
    a[50:150, 50:150] = 255
    Image.fromarray(a).save(path)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # mtime surely moves
    after = ds[0]["image"]
    assert not np.array_equal(after, before)
    assert np.array_equal(after, folder(root, cache=False)[0]["image"])
    assert isinstance(ds[0]["image"], np.memmap)  # and the new entry is used


@pytest.mark.parametrize("damage", ["truncate", "shape", "proxy", "meta"])
def test_a_corrupt_entry_is_rebuilt_never_trusted(tmp_path, damage):
    root = make_tree(tmp_path / "d")
    ds = folder(root, cache_dir=tmp_path / "c")
    ref = folder(root, cache=False)[0]
    ds[0]
    (entry,) = [m.parent for m in entries(ds)]
    if damage == "truncate":
        f = entry / "level0.npy"
        f.write_bytes(f.read_bytes()[:1000])
    elif damage == "shape":
        np.save(entry / "level1.npy", np.zeros((10, 10, 3), np.uint8))
    elif damage == "proxy":
        p = np.load(entry / "proxy.npy")
        np.save(entry / "proxy.npy", p[::-1].copy())  # right shape, wrong content
    else:
        (entry / "meta.json").write_text("{not json")
    assert ds.pyramid_cache.load(ds.items[0][0].relative_to(ds.root).as_posix(),
                          os.stat(ds.items[0][0]), 0) is None  # fmt: skip
    s = ds[0]  # rebuilt from the file
    assert np.array_equal(s["image"], ref["image"]) and np.array_equal(s["proxy"], ref["proxy"])
    s = ds[0]  # and the rebuilt entry is good
    assert isinstance(s["image"], np.memmap) and np.array_equal(s["image"], ref["image"])


def test_an_unwritable_cache_dir_falls_back_with_one_warning(tmp_path):
    root = make_tree(tmp_path / "d")
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache's parent folder should be")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = folder(root, cache_dir=blocker / "cache")
        samples = [ds[i] for i in range(len(ds))]
    ours = [w for w in caught if "cannot be written" in str(w.message)]
    assert len(ours) == 1 and "without a cache" in str(ours[0].message)
    assert np.array_equal(samples[0]["image"], folder(root, cache=False)[0]["image"])
    # a folder that exists but is read-only (chmod, and chattr +i where root ignores the
    # mode bits): the probe write fails, and the cache is off for this dataset only
    with read_only(tmp_path / "ro") as ro:
        with pytest.warns(RuntimeWarning, match="cannot be written") as caught:
            ds = folder(root, cache_dir=ro)
            samples = [ds[i] for i in range(len(ds))]
        assert len([w for w in caught if "cannot be written" in str(w.message)]) == 1
        assert not ds.pyramid_cache.enabled and list(ro.iterdir()) == []
    assert np.array_equal(samples[0]["image"], folder(root, cache=False)[0]["image"])
    assert folder(root, cache_dir=tmp_path / "ro").pyramid_cache.enabled  # writable again


def _build(root, cache_dir, barrier, rounds):
    ds = folder(root, cache_dir=cache_dir)
    for _ in range(rounds):
        barrier.wait()
        for i in range(len(ds)):
            ds[i]


@pytest.mark.slow
def test_two_processes_building_one_cache_do_not_corrupt_it(tmp_path):
    """Two real processes read every image in the same order, three rounds each started
    together at a barrier (the first round both build every entry at once, the later ones
    read what the other may still be writing); each entry then loads, equals the uncached
    data, and no temporary file is left."""
    root = make_tree(tmp_path / "d", n=4, side=300)
    cache_dir = tmp_path / "c"
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_build, args=(root, cache_dir, barrier, 3)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    ds = folder(root, cache_dir=cache_dir)
    ref = folder(root, cache=False)
    assert len(entries(ds)) == len(ds)
    assert not [p for p in cache_dir.rglob("*") if ".tmp-" in p.name]
    for i in range(len(ds)):
        hit = ds.pyramid_cache.load(ds.items[i][0].relative_to(ds.root).as_posix(),
                             os.stat(ds.items[i][0]), 0)  # fmt: skip
        assert hit is not None
        assert np.array_equal(hit[1][0], ref[i]["image"]) and np.array_equal(
            hit[0], ref[i]["proxy"]
        )


def test_cache_key_depends_on_the_options(tmp_path):
    a = PyramidCache(tmp_path, {"size": 256, "channels": 3})
    b = PyramidCache(tmp_path, {"size": 512, "channels": 3})
    assert a.entry("x/1.png") != b.entry("x/1.png") != a.entry("x/2.png")


def test_a_cached_pyramid_travels_between_processes_as_file_names(tmp_path):
    """What a DataLoader worker sends (``collate``): the coarse levels of a cached sample
    pickle as file names (a few hundred bytes, not the pixels) and map again on arrival."""
    import pickle

    from saccade.train.loop import collate

    root = make_tree(tmp_path / "d", side=600)
    ds = folder(root, cache_dir=tmp_path / "c")
    ds[0], ds[1]  # the first reads build the entries
    batch = collate([ds[0], ds[1]], first_level=1)
    data = pickle.dumps(batch["image"])
    assert len(data) < 2000
    back = pickle.loads(data)
    assert isinstance(back[0].levels[1], np.memmap) and back[0].levels[0] is None
    z = torch.tensor([[0.5, 0.0, 0.0], [1.0, 0.3, 0.3]])
    ref = [saccade.Pyramid(folder(root, cache=False)[i]["image"]) for i in (0, 1)]
    assert torch.allclose(saccade.glimpse(back, z, 16), saccade.glimpse(ref, z, 16))
