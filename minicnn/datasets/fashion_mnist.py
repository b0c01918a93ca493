"""Fashion-MNIST: Zalando's 28x28 grayscale images of clothes, in 10 classes.

    from minicnn.datasets import fashion_mnist
    (train_X, train_Y), (test_X, test_Y) = fashion_mnist.load_data()

The data comes as four gzip-compressed IDX files. ``load_data`` looks for a folder holding all four, in
this order, and uses the first one it finds:

1. the ``path`` argument, if given (then only that folder is used);
2. ``$MINICNN_DATA/fashion-mnist``, if the environment variable ``MINICNN_DATA`` is set;
3. the cache, ``~/.minicnn/datasets/fashion-mnist``;
4. ``/usr/share/datasets/fashion-mnist``, filled by Debian's package ``dataset-fashion-mnist``;

and only then downloads the files from the dataset's official address into the cache.

Every file is checked when it is read: gzip stream, IDX header (magic number, dimensions), data length,
and the SHA-256 of the decompressed bytes. Problems raise ``DatasetError`` (a ``ValueError``);
"no data anywhere, and the download failed" raises ``DatasetNotFoundError``, which is both a
``DatasetError`` and a ``FileNotFoundError``.
"""
import gzip
import hashlib
import http.client
import os
import struct
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from minicnn.utils.files import atomic_write

__all__ = [
    "load_data", "read_idx", "download", "find_data_dir", "search_dirs", "cache_dir",
    "DatasetError", "DatasetNotFoundError", "CLASS_NAMES", "FILES",
]

# --- Where to look --------------------------------------------------------------------------------
DATASET_NAME = "fashion-mnist"
ENV_VAR = "MINICNN_DATA"                                      # $MINICNN_DATA/fashion-mnist
CACHE_SUBDIR = Path(".minicnn") / "datasets" / DATASET_NAME   # under the home folder
SYSTEM_DIR = Path("/usr/share/datasets") / DATASET_NAME       # apt-get install dataset-fashion-mnist
# The official address (zalandoresearch/fashion-mnist README). It is an S3 *website* endpoint, which
# serves plain HTTP only; the SHA-256 check below is what guarantees the bytes are the right ones.
BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DOWNLOAD_TIMEOUT_S = 60                                       # per network operation, not in total
DOWNLOAD_CHUNK_BYTES = 1 << 20                                # read the response 1 MiB at a time

# --- What the files hold --------------------------------------------------------------------------
NUM_TRAIN = 60000
NUM_TEST = 10000
IMAGE_ROWS = 28
IMAGE_COLS = 28

# IDX magic number, a big-endian int32 laid out as bytes 0, 0, type, ndim.
UBYTE_TYPE_CODE = 0x08        # the 'type' byte for unsigned 8-bit data, the only type used here
IMAGE_MAGIC = 2051            # 0x00000803: unsigned bytes, 3 dimensions (count, rows, cols)
LABEL_MAGIC = 2049            # 0x00000801: unsigned bytes, 1 dimension (count)
MAGIC_FOR_NDIM = {3: IMAGE_MAGIC, 1: LABEL_MAGIC}
MAGIC_BYTES = 4
DIM_BYTES = 4                 # each dimension is a big-endian 32-bit integer
GZIP_MAGIC = b"\x1f\x8b"      # the first two bytes of every gzip file

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"

# File name -> (SHA-256 of the *decompressed* bytes, array shape). Tests replace this table to serve
# small files of their own; load_data and the download read it at call time.
FILES = {
    TRAIN_IMAGES: ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                   (NUM_TRAIN, IMAGE_ROWS, IMAGE_COLS)),
    TRAIN_LABELS: ("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", (NUM_TRAIN,)),
    TEST_IMAGES: ("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                  (NUM_TEST, IMAGE_ROWS, IMAGE_COLS)),
    TEST_LABELS: ("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", (NUM_TEST,)),
}

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

HOW_TO_GET_IT = ("To get the data without the network: `apt-get install dataset-fashion-mnist` "
                 f"(installs {SYSTEM_DIR}), or download the four files yourself and call "
                 "fashion_mnist.load_data(path='folder/holding/them').")


class DatasetError(ValueError):
    """A dataset file is damaged or is not the file expected (gzip, header, length or checksum)."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The data is in none of the places searched, and downloading it failed (or was not allowed)."""


# --- Reading --------------------------------------------------------------------------------------
def read_idx(source, expected_magic=None, expected_shape=None, sha256=None, *, name=None):
    """Read one IDX file of unsigned bytes (gzip-compressed or not) into a uint8 array.

    source: a path, or a binary file object. Gzip is recognised by a '.gz' name or by its first bytes.
    expected_magic, expected_shape, sha256: when given, the header's magic number, the array shape and
    the SHA-256 (hex) of the decompressed bytes must match, else DatasetError. name: the file's name in
    error messages (default: the path, or the file object's name).
    Returns a writable uint8 array of the shape the header gives, e.g. (count, rows, cols).
    """
    if isinstance(source, (str, os.PathLike)):
        name = name or str(source)
        raw = Path(source).read_bytes()
    else:
        name = name or getattr(source, "name", "<file object>")
        raw = source.read()

    # 1. Decompress.
    if str(name).endswith(".gz") or raw.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:   # bad header / cut short / bad deflate data
            raise DatasetError(f"{name}: not a valid gzip file ({exc}); the file is damaged "
                               "or incomplete, delete it and get it again") from None
    else:
        data = raw

    # 2. Header: magic number = bytes 0, 0, type, ndim; then ndim sizes, all big-endian.
    if len(data) < MAGIC_BYTES:
        raise DatasetError(f"{name}: truncated: expected an IDX header of at least {MAGIC_BYTES} bytes, "
                           f"got {len(data)} bytes")
    (magic,) = struct.unpack_from(">i", data, 0)
    if expected_magic is not None and magic != expected_magic:
        raise DatasetError(f"{name}: wrong magic number: expected {expected_magic}, got {magic}")
    zero_a, zero_b, type_code, ndim = data[:MAGIC_BYTES]
    if zero_a != 0 or zero_b != 0 or type_code != UBYTE_TYPE_CODE:
        raise DatasetError(f"{name}: not an IDX file of unsigned bytes: magic number {magic} "
                           f"(expected bytes 0, 0, {UBYTE_TYPE_CODE:#04x}, ndim)")
    header_bytes = MAGIC_BYTES + DIM_BYTES * ndim
    if len(data) < header_bytes:
        raise DatasetError(f"{name}: truncated: expected an IDX header of {header_bytes} bytes "
                           f"for {ndim} dimensions, got {len(data)} bytes")
    shape = struct.unpack_from(f">{ndim}I", data, MAGIC_BYTES)
    if expected_shape is not None and shape != tuple(expected_shape):
        raise DatasetError(f"{name}: wrong dimensions: expected {tuple(expected_shape)}, "
                           f"header says {shape}")

    # 3. Data: exactly one byte per element, nothing missing, nothing extra.
    data_bytes = int(np.prod(shape, dtype=np.int64))
    got_bytes = len(data) - header_bytes
    if got_bytes < data_bytes:
        raise DatasetError(f"{name}: truncated: header {shape} needs {data_bytes} data bytes, "
                           f"got {got_bytes}")
    if got_bytes > data_bytes:
        raise DatasetError(f"{name}: trailing bytes: header {shape} needs {data_bytes} data bytes, "
                           f"got {got_bytes} ({got_bytes - data_bytes} extra)")

    # 4. Checksum of the decompressed bytes (header included), last: the checks above say more.
    if sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256.lower():
            raise DatasetError(f"{name}: wrong SHA-256 of the decompressed contents: expected {sha256}, "
                               f"got {digest}; the file is damaged or is not the expected file")

    # np.frombuffer over bytes is read-only; copy so that users may edit their arrays.
    return np.frombuffer(data, dtype=np.uint8, count=data_bytes, offset=header_bytes).reshape(shape).copy()


def _magic_for(shape):
    """The IDX magic number of an unsigned-byte image or label array of this shape, else None."""
    return None if shape is None else MAGIC_FOR_NDIM.get(len(shape))


def _read_member(folder, filename):
    """Read and verify one of the four files in `folder` against the FILES table."""
    sha256, shape = FILES[filename]
    return read_idx(Path(folder) / filename, expected_magic=_magic_for(shape),
                    expected_shape=shape, sha256=sha256)


# --- Finding --------------------------------------------------------------------------------------
def cache_dir():
    """The download cache, ~/.minicnn/datasets/fashion-mnist (read at call time, so $HOME counts)."""
    return Path.home() / CACHE_SUBDIR


def search_dirs():
    """The folders searched when no path is given, in order: $MINICNN_DATA, cache, system."""
    dirs = []
    if os.environ.get(ENV_VAR):
        dirs.append(Path(os.environ[ENV_VAR]).expanduser() / DATASET_NAME)
    dirs.append(cache_dir())
    dirs.append(SYSTEM_DIR)
    return dirs


def _missing_files(folder):
    """The names in FILES that `folder` lacks (all of them when the folder does not exist)."""
    return [filename for filename in FILES if not (Path(folder) / filename).is_file()]


def find_data_dir(path=None):
    """The first folder holding all four files, or None when no folder does.

    With `path`, only that folder is considered, and missing files raise DatasetNotFoundError.
    """
    if path is not None:
        folder = Path(path).expanduser()
        missing = _missing_files(folder)
        if missing:
            raise DatasetNotFoundError(f"load_data(path={str(path)!r}): the folder {folder} lacks "
                                       f"{', '.join(missing)}. {HOW_TO_GET_IT}")
        return folder
    for folder in search_dirs():
        if not _missing_files(folder):
            return folder
    return None


# --- Downloading ----------------------------------------------------------------------------------
def open_url(url):
    """Open `url` for reading with urllib, with a timeout. The default opener of download()."""
    return urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S)


def download(url, dest, *, expected_shape=None, sha256=None, opener=None):
    """Download `url` to the file `dest`, check it with read_idx, then move it into place.

    The bytes go to a temporary file beside `dest`, which replaces `dest` (atomically) only once it has
    passed read_idx's checks (gzip, header, length, SHA-256). On any failure the temporary file is
    removed and DatasetError is raised; `dest` is never left half-written.
    opener(url) returns a binary file-like response (context manager with .read(size)); None means
    open_url (urllib). Tests pass fakes.
    """
    opener = opener or open_url
    dest = Path(dest)
    try:
        with atomic_write(dest) as out, opener(url) as response:
            headers = getattr(response, "headers", None)
            announced = headers.get("Content-Length") if headers is not None else None
            received = 0
            while chunk := response.read(DOWNLOAD_CHUNK_BYTES):
                out.write(chunk)
                received += len(chunk)
            if announced is not None and received != int(announced):
                raise DatasetError(f"download of {url} cut short: expected {announced} bytes, got {received}")
            out.flush()
            read_idx(out.name, expected_magic=_magic_for(expected_shape), expected_shape=expected_shape,
                     sha256=sha256, name=f"{url} (downloaded)")
    except DatasetError:                      # cut short, or failed read_idx's checks
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:   # URLError, HTTPError, timeout ...
        raise DatasetError(f"could not download {url} to {dest}: {exc}") from exc
    return dest


def _download_to_cache(opener):
    """Download the files the cache lacks from BASE_URL; return the cache folder."""
    folder = cache_dir()
    for filename in _missing_files(folder):
        sha256, shape = FILES[filename]
        download(BASE_URL + filename, folder / filename, expected_shape=shape, sha256=sha256,
                 opener=opener)
    return folder


# --- The entry point ------------------------------------------------------------------------------
def load_data(path=None, *, opener=None):
    """Load Fashion-MNIST as ``(train_X, train_Y), (test_X, test_Y)``, all uint8.

    Shapes: train_X (60000, 28, 28), train_Y (60000,), test_X (10000, 28, 28), test_Y (10000,); labels
    0-9 index CLASS_NAMES. path: a folder holding the four .gz files (then nothing else is searched).
    Otherwise: $MINICNN_DATA/fashion-mnist, the cache, SYSTEM_DIR, then a download into the cache
    with `opener` (see download). Raises DatasetNotFoundError when all of that fails, DatasetError when
    a file found is damaged.
    """
    folder = find_data_dir(path)
    if folder is None:
        try:
            folder = _download_to_cache(opener)
        except DatasetError as exc:
            searched = "\n".join(f"  {d}" for d in search_dirs())
            raise DatasetNotFoundError(
                f"Fashion-MNIST is not in any of these folders:\n{searched}\n"
                f"and downloading it from {BASE_URL} failed: {exc}\n{HOW_TO_GET_IT}") from exc

    train_X, train_Y = _read_member(folder, TRAIN_IMAGES), _read_member(folder, TRAIN_LABELS)
    test_X, test_Y = _read_member(folder, TEST_IMAGES), _read_member(folder, TEST_LABELS)
    for images, labels, images_name, labels_name in [(train_X, train_Y, TRAIN_IMAGES, TRAIN_LABELS),
                                                     (test_X, test_Y, TEST_IMAGES, TEST_LABELS)]:
        if len(labels) != len(images):
            raise DatasetError(f"{folder}: {labels_name} holds {len(labels)} labels but {images_name} "
                               f"holds {len(images)} images; expected one label per image")
        if labels.size and labels.max() >= len(CLASS_NAMES):
            raise DatasetError(f"{folder / labels_name}: labels must be 0-{len(CLASS_NAMES) - 1}, "
                               f"got {labels.max()}")
    return (train_X, train_Y), (test_X, test_Y)
