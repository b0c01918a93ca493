"""Tests for minicnn/datasets/fashion_mnist.py.

Almost every test writes small IDX files of its own into tmp_path, and points the search locations
(HOME, $MINICNN_DATA, SYSTEM_DIR, BASE_URL) and the FILES table at them. No test touches the internet:
downloads go to a fake opener or to an http.server on 127.0.0.1. One test reads the real data from
Debian's package, when it is installed.
"""
import functools
import gzip
import hashlib
import http.server
import io
import struct
import threading
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minicnn.datasets import fashion_mnist as fm

N_TRAIN, N_TEST = 6, 3                      # small stand-ins for 60000 / 10000
ROWS, COLS = fm.IMAGE_ROWS, fm.IMAGE_COLS
REAL_DIR = Path("/usr/share/datasets/fashion-mnist")


# --- Helpers: writing IDX files -------------------------------------------------------------------
def idx_bytes(array, magic=None):
    """The uncompressed IDX encoding of a uint8 array: magic (0, 0, 0x08, ndim), dims, data."""
    array = np.asarray(array, dtype=np.uint8)
    if magic is None:
        magic = (fm.UBYTE_TYPE_CODE << 8) | array.ndim
    return struct.pack(f">i{array.ndim}I", magic, *array.shape) + array.tobytes()


def write_gz(path, payload):
    """gzip `payload` (bytes) into `path`; return the path."""
    Path(path).write_bytes(gzip.compress(payload))
    return Path(path)


def small_arrays(label):
    """Four small arrays shaped like Fashion-MNIST's; every label equals `label` (to tell folders apart)."""
    rng = np.random.default_rng(label)
    return {
        fm.TRAIN_IMAGES: rng.integers(0, 256, (N_TRAIN, ROWS, COLS), dtype=np.uint8),
        fm.TRAIN_LABELS: np.full(N_TRAIN, label, dtype=np.uint8),
        fm.TEST_IMAGES: rng.integers(0, 256, (N_TEST, ROWS, COLS), dtype=np.uint8),
        fm.TEST_LABELS: np.full(N_TEST, label, dtype=np.uint8),
    }


def write_dataset(folder, label=0):
    """Write the four small files into `folder`; return the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = small_arrays(label)
    for filename, array in arrays.items():
        write_gz(folder / filename, idx_bytes(array))
    return arrays


def files_table(arrays):
    """A FILES table (name -> (sha256 of decompressed bytes, shape)) for these arrays."""
    return {name: (hashlib.sha256(idx_bytes(a)).hexdigest(), a.shape) for name, a in arrays.items()}


def no_network(url):
    raise AssertionError(f"this test must not open {url}")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Point every location at empty folders under tmp_path, and FILES at small shapes (no checksums)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(fm.ENV_VAR, raising=False)
    monkeypatch.setattr(fm, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(fm, "BASE_URL", "http://download.invalid/")
    monkeypatch.setattr(fm, "open_url", no_network)
    shapes = {name: (None, a.shape) for name, a in small_arrays(0).items()}
    monkeypatch.setattr(fm, "FILES", shapes)
    return tmp_path


def assert_loaded(result, arrays):
    (train_X, train_Y), (test_X, test_Y) = result
    for got, name in [(train_X, fm.TRAIN_IMAGES), (train_Y, fm.TRAIN_LABELS),
                      (test_X, fm.TEST_IMAGES), (test_Y, fm.TEST_LABELS)]:
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[name])


def leftovers(folder):
    """Temporary download files left in `folder` (there should be none)."""
    return sorted(p.name for p in Path(folder).glob("*.part")) if Path(folder).exists() else []


# --- read_idx: good files ------------------------------------------------------------------------
def test_read_idx_round_trip_images_and_labels(tmp_path):
    images = np.arange(2 * ROWS * COLS, dtype=np.uint32).astype(np.uint8).reshape(2, ROWS, COLS)
    labels = np.array([3, 9], dtype=np.uint8)
    image_path = write_gz(tmp_path / "images.gz", idx_bytes(images))
    label_path = write_gz(tmp_path / "labels.gz", idx_bytes(labels))

    got = fm.read_idx(image_path, expected_magic=fm.IMAGE_MAGIC, expected_shape=(2, ROWS, COLS),
                      sha256=hashlib.sha256(idx_bytes(images)).hexdigest())
    assert got.dtype == np.uint8 and got.shape == (2, ROWS, COLS)
    np.testing.assert_array_equal(got, images)
    got[0, 0, 0] = 7                                  # users may edit what they loaded
    np.testing.assert_array_equal(fm.read_idx(str(label_path), expected_magic=fm.LABEL_MAGIC), labels)


def test_read_idx_accepts_file_objects_compressed_or_not():
    labels = np.array([1, 2, 3], dtype=np.uint8)
    np.testing.assert_array_equal(fm.read_idx(io.BytesIO(idx_bytes(labels))), labels)
    np.testing.assert_array_equal(fm.read_idx(io.BytesIO(gzip.compress(idx_bytes(labels)))), labels)


def test_magic_constants_follow_the_idx_layout():
    assert fm.IMAGE_MAGIC == 0x0803 and fm.LABEL_MAGIC == 0x0801
    assert idx_bytes(np.zeros((1, 2, 2)))[:4] == struct.pack(">i", fm.IMAGE_MAGIC)


@settings(max_examples=40, deadline=None)
@given(array=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)),
       compress=st.booleans())
def test_read_idx_round_trips_any_small_array(array, compress):
    payload = idx_bytes(array)
    source = io.BytesIO(gzip.compress(payload) if compress else payload)
    got = fm.read_idx(source, expected_shape=array.shape, sha256=hashlib.sha256(payload).hexdigest())
    assert got.shape == array.shape
    np.testing.assert_array_equal(got, array)


# --- read_idx: damaged files ---------------------------------------------------------------------
LABELS = np.array([0, 1, 2, 3, 4], dtype=np.uint8)


def check_error(path, *words, **kwargs):
    """read_idx(path) raises DatasetError whose message names the file and holds `words`."""
    with pytest.raises(fm.DatasetError) as info:
        fm.read_idx(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message, message
    return message


def test_not_gzip_at_all(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(idx_bytes(LABELS))               # named .gz, but stored uncompressed
    check_error(path, "gzip")


def test_corrupt_gzip_data(tmp_path):
    compressed = bytearray(gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8))))
    for i in range(12, len(compressed) - 8):          # flip the deflate stream, leave the header
        compressed[i] ^= 0xFF
    path = tmp_path / "labels.gz"
    path.write_bytes(bytes(compressed))
    check_error(path, "gzip")


def test_gzip_stream_cut_short(tmp_path):
    compressed = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    path = tmp_path / "labels.gz"
    path.write_bytes(compressed[:len(compressed) // 2])
    check_error(path, "gzip")


def test_truncated_data(tmp_path):
    path = write_gz(tmp_path / "labels.gz", idx_bytes(LABELS)[:-2])
    check_error(path, "truncated", "5", "3")          # header promises 5 bytes, 3 came


def test_truncated_header(tmp_path):
    check_error(write_gz(tmp_path / "a.gz", b"\x00\x00"), "truncated")
    check_error(write_gz(tmp_path / "b.gz", idx_bytes(np.zeros((2, 2)))[:9]), "truncated", "12")


def test_trailing_bytes(tmp_path):
    path = write_gz(tmp_path / "labels.gz", idx_bytes(LABELS) + b"\x00\x00\x00")
    check_error(path, "trailing", "3 extra")


def test_wrong_magic(tmp_path):
    path = write_gz(tmp_path / "labels.gz", idx_bytes(LABELS))
    check_error(path, "magic", str(fm.IMAGE_MAGIC), str(fm.LABEL_MAGIC), expected_magic=fm.IMAGE_MAGIC)


def test_not_unsigned_bytes(tmp_path):
    float_magic = (0x0D << 8) | 1                      # IDX type 0x0D is float32
    path = write_gz(tmp_path / "labels.gz", idx_bytes(LABELS, magic=float_magic))
    check_error(path, "unsigned bytes", str(float_magic))


def test_wrong_dimensions(tmp_path):
    images = np.zeros((2, 27, 28), dtype=np.uint8)
    path = write_gz(tmp_path / "images.gz", idx_bytes(images))
    check_error(path, "dimensions", "(2, 28, 28)", "(2, 27, 28)", expected_shape=(2, 28, 28))


def test_wrong_checksum(tmp_path):
    path = write_gz(tmp_path / "labels.gz", idx_bytes(LABELS))
    wrong = hashlib.sha256(b"something else").hexdigest()
    right = hashlib.sha256(idx_bytes(LABELS)).hexdigest()
    check_error(path, "SHA-256", wrong, right, sha256=wrong)


def test_dataset_errors_are_value_errors():
    assert issubclass(fm.DatasetError, ValueError)
    assert issubclass(fm.DatasetNotFoundError, fm.DatasetError)
    assert issubclass(fm.DatasetNotFoundError, FileNotFoundError)


# --- load_data: where it looks ------------------------------------------------------------------
SOURCES = ["path", "env", "cache", "system"]           # highest priority first


@pytest.mark.parametrize("first_present", range(len(SOURCES)))
def test_search_order(isolated, monkeypatch, first_present):
    """Fill the sources from `first_present` down; load_data must pick that one (its labels say which)."""
    folders = {
        "path": isolated / "given",
        "env": isolated / "env" / fm.DATASET_NAME,
        "cache": Path.home() / ".minicnn" / "datasets" / "fashion-mnist",
        "system": fm.SYSTEM_DIR,
    }
    monkeypatch.setenv(fm.ENV_VAR, str(isolated / "env"))
    written = {source: write_dataset(folders[source], label=i)
               for i, source in enumerate(SOURCES) if i >= first_present}
    path = folders["path"] if first_present == 0 else None

    assert_loaded(fm.load_data(path, opener=no_network), written[SOURCES[first_present]])
    assert fm.find_data_dir(path) == folders[SOURCES[first_present]]


def test_cache_dir_follows_home(isolated):
    assert fm.cache_dir() == isolated / "home" / ".minicnn" / "datasets" / "fashion-mnist"
    assert fm.search_dirs() == [fm.cache_dir(), fm.SYSTEM_DIR]


def test_a_folder_missing_one_file_is_skipped(isolated):
    cache = fm.cache_dir()
    write_dataset(cache, label=1)
    (cache / fm.TEST_LABELS).unlink()
    arrays = write_dataset(fm.SYSTEM_DIR, label=2)
    assert_loaded(fm.load_data(opener=no_network), arrays)


def test_path_argument_is_the_only_place_looked(isolated):
    write_dataset(fm.SYSTEM_DIR)                       # data elsewhere must not be used
    given = isolated / "given"
    write_dataset(given)
    (given / fm.TRAIN_IMAGES).unlink()
    with pytest.raises(fm.DatasetNotFoundError) as info:
        fm.load_data(given, opener=no_network)
    message = str(info.value)
    assert str(given) in message and fm.TRAIN_IMAGES in message and fm.TEST_IMAGES not in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_nothing_anywhere_and_no_network(isolated, monkeypatch):
    monkeypatch.setenv(fm.ENV_VAR, str(isolated / "env"))

    def offline(url):
        raise urllib.error.URLError("Temporary failure in name resolution")

    with pytest.raises(FileNotFoundError) as info:     # DatasetNotFoundError is one
        fm.load_data(opener=offline)
    assert isinstance(info.value, fm.DatasetNotFoundError)
    message = str(info.value)
    for folder in fm.search_dirs():
        assert str(folder) in message
    assert "name resolution" in message and fm.BASE_URL in message
    assert "apt-get install dataset-fashion-mnist" in message and "path=" in message
    assert leftovers(fm.cache_dir()) == []


def test_label_count_must_match_image_count(isolated, monkeypatch):
    arrays = write_dataset(fm.cache_dir())
    short = arrays[fm.TEST_LABELS][:-1]
    write_gz(fm.cache_dir() / fm.TEST_LABELS, idx_bytes(short))
    monkeypatch.setitem(fm.FILES, fm.TEST_LABELS, (None, short.shape))
    with pytest.raises(fm.DatasetError, match="one label per image"):
        fm.load_data(opener=no_network)


def test_labels_must_name_a_class(isolated):
    write_dataset(fm.cache_dir(), label=len(fm.CLASS_NAMES))
    with pytest.raises(fm.DatasetError, match="labels must be 0-9"):
        fm.load_data(opener=no_network)


def test_damaged_file_found_is_an_error_not_a_download(isolated):
    write_dataset(fm.cache_dir())
    write_gz(fm.cache_dir() / fm.TRAIN_LABELS, idx_bytes(np.zeros(N_TRAIN - 1)))
    with pytest.raises(fm.DatasetError, match="dimensions") as info:
        fm.load_data(opener=no_network)
    assert fm.TRAIN_LABELS in str(info.value)


# --- Downloading, with a fake opener ------------------------------------------------------------
class FakeResponse(io.BytesIO):
    """What urlopen returns, as far as download() cares: .read(size), a context manager, headers."""

    def __init__(self, body, content_length=None):
        super().__init__(body)
        self.headers = {} if content_length is None else {"Content-Length": str(content_length)}


def serving(files, content_length=None):
    """A fake opener serving `files` (name -> gzip bytes) under BASE_URL; records the URLs opened."""
    def opener(url):
        opener.opened.append(url)
        name = url.rsplit("/", 1)[-1]
        if name not in files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        body = files[name]
        return FakeResponse(body, len(body) if content_length is None else content_length(body))
    opener.opened = []
    return opener


def gz_files(arrays):
    return {name: gzip.compress(idx_bytes(a)) for name, a in arrays.items()}


def test_download_with_fake_opener_fills_the_cache(isolated, monkeypatch):
    arrays = small_arrays(4)
    monkeypatch.setattr(fm, "FILES", files_table(arrays))
    opener = serving(gz_files(arrays))

    assert_loaded(fm.load_data(opener=opener), arrays)
    assert sorted(opener.opened) == sorted(fm.BASE_URL + name for name in fm.FILES)
    assert sorted(p.name for p in fm.cache_dir().iterdir()) == sorted(fm.FILES)

    assert_loaded(fm.load_data(opener=no_network), arrays)   # second time: from the cache


def test_download_fetches_only_what_the_cache_lacks(isolated, monkeypatch):
    arrays = small_arrays(4)
    monkeypatch.setattr(fm, "FILES", files_table(arrays))
    cache = fm.cache_dir()
    write_dataset(cache, label=4)
    (cache / fm.TEST_IMAGES).unlink()
    opener = serving(gz_files(arrays))
    assert_loaded(fm.load_data(opener=opener), arrays)
    assert opener.opened == [fm.BASE_URL + fm.TEST_IMAGES]


def test_download_cut_short_leaves_nothing(isolated, monkeypatch):
    arrays = small_arrays(4)
    monkeypatch.setattr(fm, "FILES", files_table(arrays))
    body = gzip.compress(idx_bytes(arrays[fm.TRAIN_LABELS]))
    opener = serving({fm.TRAIN_LABELS: body[:-10]}, content_length=lambda _: len(body))
    dest = isolated / "dl" / fm.TRAIN_LABELS
    with pytest.raises(fm.DatasetError, match="cut short"):
        fm.download(fm.BASE_URL + fm.TRAIN_LABELS, dest, opener=opener)
    assert list(dest.parent.iterdir()) == []


def test_download_with_bad_checksum_leaves_nothing(isolated, monkeypatch):
    arrays = small_arrays(4)
    monkeypatch.setattr(fm, "FILES", files_table(arrays))
    impostor = gz_files(small_arrays(5))                # right shapes, wrong bytes
    with pytest.raises(fm.DatasetNotFoundError, match="SHA-256"):
        fm.load_data(opener=serving(impostor))
    cache = fm.cache_dir()
    assert not any((cache / name).exists() for name in fm.FILES)
    assert leftovers(cache) == []


def test_download_failure_midway_keeps_verified_files_only(isolated, monkeypatch):
    arrays = small_arrays(4)
    monkeypatch.setattr(fm, "FILES", files_table(arrays))
    files = gz_files(arrays)
    del files[fm.TEST_IMAGES]
    with pytest.raises(fm.DatasetNotFoundError, match="404"):
        fm.load_data(opener=serving(files))
    cache = fm.cache_dir()
    assert not (cache / fm.TEST_IMAGES).exists()
    assert leftovers(cache) == []
    assert not (cache / fm.TEST_LABELS).exists()        # after the failure, nothing more was fetched
    for name in [fm.TRAIN_IMAGES, fm.TRAIN_LABELS]:     # those that came before it are whole and checked
        np.testing.assert_array_equal(fm.read_idx(cache / name, sha256=fm.FILES[name][0]), arrays[name])


def test_download_replaces_an_existing_file_atomically(tmp_path):
    labels = np.array([1, 2], dtype=np.uint8)
    dest = tmp_path / "labels.gz"
    dest.write_bytes(b"old")
    fm.download("http://x/labels.gz", dest, expected_shape=(2,),
                opener=serving({"labels.gz": gzip.compress(idx_bytes(labels))}))
    np.testing.assert_array_equal(fm.read_idx(dest), labels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.gz"]


# --- Downloading, from a real HTTP server on 127.0.0.1 -------------------------------------------
class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """Serve tmp_path/served on 127.0.0.1 (a free port) and point BASE_URL at it."""
    root = tmp_path / "served"
    root.mkdir()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    monkeypatch.setattr(fm, "BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/")
    yield root
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def real_opener(monkeypatch):
    """Undo the `isolated` fixture's no-network guard: use urllib (only ever against 127.0.0.1)."""
    def local_only(url):
        assert url.startswith("http://127.0.0.1:"), url
        return fm.urllib.request.urlopen(url, timeout=10)
    monkeypatch.setattr(fm, "open_url", local_only)


def test_download_over_http(isolated, http_root, real_opener, monkeypatch):
    arrays = write_dataset(http_root, label=7)
    monkeypatch.setattr(fm, "FILES", files_table(arrays))
    assert_loaded(fm.load_data(), arrays)
    assert sorted(p.name for p in fm.cache_dir().iterdir()) == sorted(fm.FILES)


def test_download_over_http_404_leaves_no_file(isolated, http_root, real_opener, monkeypatch):
    arrays = write_dataset(http_root, label=7)
    monkeypatch.setattr(fm, "FILES", files_table(arrays))
    (http_root / fm.TRAIN_LABELS).unlink()
    with pytest.raises(fm.DatasetNotFoundError, match="404") as info:
        fm.load_data()
    assert fm.TRAIN_LABELS in str(info.value)
    assert not (fm.cache_dir() / fm.TRAIN_LABELS).exists()
    assert leftovers(fm.cache_dir()) == []


def test_download_over_http_bad_checksum_leaves_no_file(isolated, http_root, real_opener, monkeypatch):
    arrays = write_dataset(http_root, label=7)
    monkeypatch.setattr(fm, "FILES", files_table(small_arrays(8)))   # expects other bytes
    with pytest.raises(fm.DatasetNotFoundError, match="SHA-256"):
        fm.load_data()
    cache = fm.cache_dir()
    assert not any((cache / name).exists() for name in arrays)
    assert leftovers(cache) == []


# --- The real data (Debian's dataset-fashion-mnist) -----------------------------------------------
@pytest.mark.skipif(not REAL_DIR.is_dir(), reason=f"{REAL_DIR} absent: apt-get install dataset-fashion-mnist")
def test_real_data_from_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))           # empty cache: the system folder is found
    monkeypatch.delenv(fm.ENV_VAR, raising=False)
    monkeypatch.setattr(fm, "SYSTEM_DIR", REAL_DIR)
    assert fm.find_data_dir() == REAL_DIR

    (train_X, train_Y), (test_X, test_Y) = fm.load_data(opener=no_network)

    assert (train_X.shape, train_Y.shape) == ((60000, 28, 28), (60000,))
    assert (test_X.shape, test_Y.shape) == ((10000, 28, 28), (10000,))
    assert {a.dtype for a in (train_X, train_Y, test_X, test_Y)} == {np.dtype(np.uint8)}
    assert train_Y.min() == 0 and train_Y.max() == 9 and test_Y.min() == 0 and test_Y.max() == 9
    assert np.bincount(train_Y).tolist() == [6000] * 10   # balanced classes
    assert np.bincount(test_Y).tolist() == [1000] * 10
    assert fm.CLASS_NAMES[train_Y[0]] == "Ankle boot"


def test_class_names():
    assert len(fm.CLASS_NAMES) == 10
    assert fm.CLASS_NAMES[0] == "T-shirt/top" and fm.CLASS_NAMES[9] == "Ankle boot"
