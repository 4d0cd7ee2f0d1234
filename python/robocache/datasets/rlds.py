"""RLDS / TFDS TFRecord datasets (Open X-Embodiment), read without TensorFlow.

An RLDS dataset folder (``<name>/<version>/``) holds ``features.json`` (the TFDS feature tree),
``dataset_info.json`` (splits and shard counts) and TFRecord shards. Each record is one episode:
a ``tf.train.Example`` whose keys flatten the tree (``steps/observation/state``,
``episode_metadata/file_path``), each step feature holding all of the episode's steps.

Reading: TFRecord framing with checksums (CRC32C of the length and of the payload), then a small
protobuf-free parser of ``tf.train.Example``; ``features.json`` gives dtypes and shapes. Steps
become streams (``observation.state``, ``action``, ``observation.image_0``, ...); JPEG/PNG images
stay encoded until used, then DALI's ``fn.decoders.image`` decodes them (``device="mixed"`` on a
GPU). RLDS stores no timestamps: they are ``k / rate`` with the rate from ``rate=`` or a table of
known Open X-Embodiment control rates, and ``timestamps_derived`` is set.

For DALI pipelines, :meth:`RLDSDataset.dali_reader_kwargs` writes DALI index files (the format of
DALI's ``tfrecord2idx``) and returns the arguments of ``fn.readers.tfrecord`` for the numeric step
features. DALI's reader cannot return lists of strings, so images and text come from this parser.
"""

from __future__ import annotations

import bisect
import dataclasses
import struct
from pathlib import Path
from typing import Any

import numpy as np

from . import (
    CorruptDatasetError,
    Dataset,
    DatasetNotFoundError,
    Episode,
    EpisodeMetadata,
    Stream,
    derived_timestamps,
)
from .lerobot import read_json
from .video import decode_images

# Control rates (Hz) of Open X-Embodiment datasets whose papers state them.
KNOWN_RATES = {"bridge_dataset": 5.0, "bridge": 5.0, "fractal20220817_data": 3.0}


# --------------------------------------------------------------------------------------- CRC32C
def _crc_table() -> list:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli) of ``data``; C speed with ``google-crc32c``, pure Python without.

    Args:
        data: bytes.

    Returns:
        int: the checksum.
    """
    try:
        import google_crc32c  # noqa: PLC0415

        return int(google_crc32c.value(bytes(data)))
    except ImportError:
        crc = 0xFFFFFFFF
        for b in bytes(data):
            crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC32C.

    Args:
        data: bytes.

    Returns:
        int: ``((crc >> 15) | (crc << 17)) + 0xa282ead8`` modulo 2**32.
    """
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def scan_tfrecord(path: Path) -> list:
    """Offsets and sizes of a TFRecord file's records, checking each length's checksum.

    Args:
        path: TFRecord file.

    Returns:
        list: ``[(offset, size), ...]`` with ``size`` covering header, payload and footer (the
        format of DALI's ``tfrecord2idx``).

    Raises:
        DatasetNotFoundError: when the file is missing.
        CorruptDatasetError: on a bad length checksum or a truncated record.
    """
    out = []
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: TFRecord shard is missing") from None
    with f:
        total = f.seek(0, 2)
        off = 0
        while off < total:
            f.seek(off)
            head = f.read(12)
            if len(head) < 12:
                raise CorruptDatasetError(
                    f"{path}: record {len(out)} at byte {off}: truncated "
                    f"header ({len(head)} of 12 bytes)"
                )
            (length,) = struct.unpack("<Q", head[:8])
            if struct.unpack("<I", head[8:])[0] != masked_crc(head[:8]):
                raise CorruptDatasetError(
                    f"{path}: record {len(out)} at byte {off}: length "
                    f"checksum mismatch (not a TFRecord file, or corrupt)"
                )
            size = 12 + length + 4
            if off + size > total:
                raise CorruptDatasetError(
                    f"{path}: record {len(out)} at byte {off}: truncated "
                    f"({total - off} of {size} bytes)"
                )
            out.append((off, size))
            off += size
    return out


# --------------------------------------------------------------------------------------- protobuf
class _ProtoError(Exception):
    pass


def _varint(buf: memoryview, pos: int) -> tuple:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _ProtoError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise _ProtoError("varint too long")


def _fields(buf: memoryview):
    """Yield ``(field_number, wire_type, value)``; LEN values are memoryviews."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1:
            val, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            ln, pos = _varint(buf, pos)
            if pos + ln > n:
                raise _ProtoError(f"field {field} overruns the message")
            val, pos = buf[pos : pos + ln], pos + ln
        elif wire == 5:
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise _ProtoError(f"unsupported wire type {wire}")
        if pos > n:
            raise _ProtoError("truncated field")
        yield field, wire, val


def _int64s(field_iter) -> np.ndarray:
    vals = []
    for _, wire, v in field_iter:
        if wire == 2:  # packed
            p = 0
            while p < len(v):
                x, p = _varint(v, p)
                vals.append(x)
        elif wire == 0:
            vals.append(v)
    a = np.array(vals, dtype=np.uint64)
    return a.view(np.int64)


def parse_example(data: bytes) -> dict:
    """Parse a serialized ``tf.train.Example`` without protobuf.

    Args:
        data: serialized message.

    Returns:
        dict: ``{key: list of bytes | float32 array | int64 array}``.

    Raises:
        CorruptDatasetError: (via the caller) on malformed input; raises ``_ProtoError`` here.
    """
    out: dict = {}
    for f1, w1, features in _fields(memoryview(data)):
        if f1 != 1 or w1 != 2:
            continue
        for f2, w2, entry in _fields(features):
            if f2 != 1 or w2 != 2:
                continue
            key, feat = None, None
            for f3, _, v in _fields(entry):
                if f3 == 1:
                    key = bytes(v).decode("utf-8")
                elif f3 == 2:
                    feat = v
            if key is None:
                raise _ProtoError("feature map entry without a key")
            value: Any = []
            for kind, _, lst in _fields(feat if feat is not None else memoryview(b"")):
                items = list(_fields(lst))
                if kind == 1:
                    value = [bytes(v) for f, _, v in items if f == 1]
                elif kind == 2:
                    value = np.concatenate(
                        [np.frombuffer(v, "<f4") for f, _, v in items if f == 1]
                        or [np.zeros(0, np.float32)]
                    ).astype(np.float32)
                elif kind == 3:
                    value = _int64s(items)
            out[key] = value
    return out


# --------------------------------------------------------------------------------------- features
@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """One leaf of the TFDS feature tree.

    Attributes:
        key: flat Example key (``steps/observation/state``).
        kind: ``"tensor"``, ``"image"`` or ``"text"``.
        dtype: numpy dtype name.
        shape: per-step shape.
        encoding: TFDS tensor encoding or image format.
        description: TFDS description.
    """

    key: str
    kind: str
    dtype: str
    shape: tuple
    encoding: str = "none"
    description: str = ""


def parse_features(tree: dict, prefix: str = "") -> list:
    """Flatten a ``features.json`` tree into :class:`FeatureSpec` leaves.

    Args:
        tree: a TFDS feature node.
        prefix: key prefix of the node.

    Returns:
        list: the leaves, in file order.
    """
    out: list = []
    if "featuresDict" in tree:
        for name, sub in tree["featuresDict"].get("features", {}).items():
            out += parse_features(sub, f"{prefix}{name}/")
        return out
    if "sequence" in tree:
        return parse_features(tree["sequence"].get("feature", {}), prefix)
    key = prefix.rstrip("/")
    desc = tree.get("description", "")
    if "image" in tree:
        img = tree["image"]
        dims = tuple(int(d) for d in img.get("shape", {}).get("dimensions", []))
        return [
            FeatureSpec(
                key,
                "image",
                img.get("dtype", "uint8"),
                dims,
                img.get("encodingFormat", "jpeg"),
                desc,
            )
        ]
    if "text" in tree:
        return [FeatureSpec(key, "text", "object", (), "utf-8", desc)]
    if "tensor" in tree:
        t = tree["tensor"]
        dims = tuple(int(d) for d in t.get("shape", {}).get("dimensions", []))
        return [
            FeatureSpec(
                key, "tensor", t.get("dtype", "float32"), dims, t.get("encoding", "none"), desc
            )
        ]
    return []


class RLDSDataset(Dataset):
    """An RLDS/TFDS dataset version folder (or a folder above one).

    Args:
        path: folder holding ``features.json`` (searched up to two levels down), or that file.
        split: TFDS split, ``"train"`` by default.
        rate: control rate in Hz; default from :data:`KNOWN_RATES` by dataset name.
        image_device: DALI device for JPEG decoding: ``"auto"``, ``"mixed"`` or ``"cpu"``.

    Raises:
        DatasetNotFoundError: when ``features.json`` or a shard is missing.
        CorruptDatasetError: when metadata is unreadable.
        ValueError: when the dataset's rate is unknown and ``rate`` is not given.
    """

    format = "rlds"

    def __init__(
        self,
        path: str | Path,
        split: str = "train",
        rate: float | None = None,
        image_device: str = "auto",
    ) -> None:
        p = Path(path)
        if p.is_file():
            p = p.parent
        if not (p / "features.json").is_file():
            found = sorted(p.glob("*/features.json")) + sorted(p.glob("*/*/features.json"))
            if not found:
                raise DatasetNotFoundError(f"{p}: no features.json (RLDS/TFDS dataset folder)")
            p = found[-1].parent  # the latest version
        super().__init__(p)
        self.split = split
        self.image_device = image_device
        tree = read_json(p / "features.json", "RLDS datasets need TFDS's features.json")
        self.specs = parse_features(tree)
        self.step_specs = [s for s in self.specs if s.key.startswith("steps/")]
        if not self.step_specs:
            raise CorruptDatasetError(f"{p / 'features.json'}: no 'steps' features; not RLDS")
        info = read_json(p / "dataset_info.json") if (p / "dataset_info.json").is_file() else {}
        self.name = info.get("name") or p.parent.name
        self.declared_rate = float(rate) if rate is not None else KNOWN_RATES.get(self.name)
        if self.declared_rate is None:
            raise ValueError(
                f"{p}: RLDS stores no timestamps and the control rate of dataset "
                f"{self.name!r} is not known; pass rate=HZ (CLI: --source-rate HZ)"
            )
        self.shards, counts = self._find_shards(info)
        self._index: dict = {}
        if counts is None:
            counts = [len(self._shard_index(k)) for k in range(len(self.shards))]
        self._starts = list(np.cumsum([0] + list(counts)))
        self.episode_indices = list(range(int(self._starts[-1])))
        self.declared_episodes = len(self.episode_indices)

    def _find_shards(self, info: dict) -> tuple:
        splits = {s.get("name"): s for s in info.get("splits", [])}
        if splits and self.split not in splits:
            raise DatasetNotFoundError(
                f"{self.path}: no split {self.split!r}; splits: " f"{', '.join(splits)}"
            )
        if self.split in splits:
            s = splits[self.split]
            counts = [int(n) for n in s.get("shardLengths", [])]
            tmpl = s.get("filepathTemplate", "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}")
            files = [
                self.path
                / tmpl.format(
                    DATASET=self.name,
                    SPLIT=self.split,
                    FILEFORMAT=info.get("fileFormat", "tfrecord"),
                    SHARD_X_OF_Y=f"{k:05d}-of-{len(counts):05d}",
                    SHARD_INDEX=f"{k:05d}",
                    NUM_SHARDS=f"{len(counts):05d}",
                )
                for k in range(len(counts))
            ]
            for f in files:
                if not f.is_file():
                    raise DatasetNotFoundError(
                        f"{f}: TFRecord shard of split {self.split!r} is " f"missing"
                    )
            return files, counts
        files = sorted(self.path.glob(f"*-{self.split}.tfrecord*"))
        if not files:
            raise DatasetNotFoundError(f"{self.path}: no TFRecord shards for split {self.split!r}")
        return files, None

    def _shard_index(self, k: int) -> list:
        if k not in self._index:
            self._index[k] = scan_tfrecord(self.shards[k])
        return self._index[k]

    def _record(self, index: int) -> tuple:
        k = bisect.bisect_right(self._starts, index) - 1
        local = index - int(self._starts[k])
        idx = self._shard_index(k)
        if local >= len(idx):
            raise CorruptDatasetError(
                f"{self.shards[k]}: episode {index}: shard has {len(idx)} "
                f"records but dataset_info.json says "
                f"{int(self._starts[k + 1] - self._starts[k])}"
            )
        off, size = idx[local]
        with open(self.shards[k], "rb") as f:
            f.seek(off)
            raw = f.read(size)
        payload, footer = raw[12:-4], raw[-4:]
        if struct.unpack("<I", footer)[0] != masked_crc(payload):
            raise CorruptDatasetError(
                f"{self.shards[k]}: episode {index} (record {local} at byte "
                f"{off}): payload checksum mismatch"
            )
        return self.shards[k], local, payload

    def _load_episode(self, index: int) -> Episode:
        shard, local, payload = self._record(index)
        ctx = f"{shard}: episode {index}"
        try:
            ex = parse_example(payload)
        except _ProtoError as e:
            raise CorruptDatasetError(f"{ctx}: not a tf.train.Example: {e}") from None
        n = self._num_steps(ex, ctx)
        ts = derived_timestamps(n, self.declared_rate)  # type: ignore[arg-type]
        streams: dict = {}
        language: list = []
        for spec in self.step_specs:
            if spec.key not in ex:
                raise CorruptDatasetError(
                    f"{ctx}: features.json declares {spec.key!r} but the "
                    f"record has no such feature"
                )
            name = spec.key[len("steps/") :].replace("/", ".")
            val = ex[spec.key]
            common = dict(
                rate=self.declared_rate,
                timestamps_derived=True,
                attrs={"description": spec.description, "rlds_key": spec.key},
            )
            if spec.kind == "image":
                if len(val) != n:
                    raise CorruptDatasetError(
                        f"{ctx}: {spec.key!r} has {len(val)} images for " f"{n} steps"
                    )
                shape = spec.shape if len(spec.shape) == 3 else spec.shape + (3,)
                streams[name] = Stream(
                    name,
                    ts,
                    "image",
                    shape,
                    np.uint8,
                    loader=_image_loader(val, self.image_device, f"{ctx} camera {name!r}"),
                    **common,
                )
            elif spec.kind == "text":
                texts = np.array([b.decode("utf-8", "replace") for b in val], object)
                if len(texts) != n:
                    raise CorruptDatasetError(
                        f"{ctx}: {spec.key!r} has {len(texts)} strings for " f"{n} steps"
                    )
                streams[name] = Stream.from_array(name, ts, texts, kind="text", **common)
                language += [t for t in dict.fromkeys(texts) if t]
            else:
                streams[name] = Stream.from_array(
                    name, ts, self._tensor(spec, val, n, ctx), **common
                )
        meta = {}
        for spec in self.specs:
            if spec.key.startswith("episode_metadata/") and spec.key in ex:
                v = ex[spec.key]
                if spec.kind == "text":
                    v = v[0].decode("utf-8", "replace") if v else ""
                else:
                    v = self._tensor(spec, v, 1, ctx)[0]
                    v = v.item() if np.ndim(v) == 0 else v.tolist()
                meta[spec.key[len("episode_metadata/") :]] = v
        md = EpisodeMetadata(
            format=self.format,
            source=str(shard),
            robot=None,
            task=language[0] if language else None,
            language=language,
            declared_rate=self.declared_rate,
            timestamps_derived=True,
            attrs={"episode_metadata": meta, "record": local, "dataset": self.name},
        )
        return Episode(index, streams, md)

    def _num_steps(self, ex: dict, ctx: str) -> int:
        for key in ("steps/is_first", "steps/is_last"):
            if key in ex:
                return len(ex[key])
        for spec in self.step_specs:
            if spec.key in ex and spec.kind in ("image", "text"):
                return len(ex[spec.key])
        for spec in self.step_specs:
            if spec.key in ex and spec.kind == "tensor" and spec.encoding == "none":
                return len(ex[spec.key]) // max(int(np.prod(spec.shape)), 1)
        raise CorruptDatasetError(f"{ctx}: cannot tell the number of steps")

    @staticmethod
    def _tensor(spec: FeatureSpec, val: Any, n: int, ctx: str) -> np.ndarray:
        dtype = np.dtype("bool" if spec.dtype == "bool" else spec.dtype)
        if isinstance(val, list):  # encoding "bytes"/"zlib": raw buffers
            if spec.encoding == "zlib":
                import zlib  # noqa: PLC0415

                val = [zlib.decompress(b) for b in val]
            arr = (
                np.frombuffer(b"".join(val), dtype=dtype)
                if dtype.kind != "O"
                else np.array(val, object)
            )
        else:
            arr = np.asarray(val)
        per = int(np.prod(spec.shape)) if spec.shape else 1
        if arr.size != n * per:
            raise CorruptDatasetError(
                f"{ctx}: {spec.key!r} has {arr.size} values, expected " f"{n} steps x {per}"
            )
        return arr.astype(dtype, copy=False).reshape((n,) + spec.shape)

    def dali_reader_kwargs(self, index_dir: str | Path) -> dict:
        """Arguments of ``fn.readers.tfrecord`` for this split's numeric step features.

        Writes one DALI index file per shard (``offset size`` per record, as ``tfrecord2idx``
        does) into ``index_dir``, since dataset folders are often read-only.

        Args:
            index_dir: folder for the index files (created).

        Returns:
            dict: ``path``, ``index_path`` and ``features`` (``VarLenFeature`` per numeric
            ``steps/...`` tensor: all steps concatenated, reshape to ``[T, *shape]``).
        """
        import nvidia.dali.tfrecord as tfrec  # noqa: PLC0415

        d = Path(index_dir)
        d.mkdir(parents=True, exist_ok=True)
        idx_files = []
        for k, shard in enumerate(self.shards):
            f = d / (shard.name + ".idx")
            f.write_text("".join(f"{o} {s}\n" for o, s in self._shard_index(k)))
            idx_files.append(str(f))
        feats = {}
        for s in self.step_specs:
            if s.kind == "tensor" and s.encoding == "none":
                kind = tfrec.float32 if s.dtype.startswith("float") else tfrec.int64
                feats[s.key] = tfrec.VarLenFeature(kind, 0.0 if kind == tfrec.float32 else 0)
        return {"path": [str(s) for s in self.shards], "index_path": idx_files, "features": feats}

    def describe(self) -> dict:
        """Dataset facts plus split, name and shard count.

        Returns:
            dict: see :meth:`Dataset.describe`.
        """
        d = super().describe()
        d.update(
            name=self.name,
            split=self.split,
            shards=len(self.shards),
            timestamps="derived from the declared rate",
        )
        return d


def _image_loader(encoded: list, device: str, context: str):
    def load(idx: np.ndarray | None) -> np.ndarray:
        sel = encoded if idx is None else [encoded[int(i)] for i in idx]
        return decode_images(sel, device, context)

    load.encoded = encoded  # the still-encoded images, for pipelines that decode them (RobotDataLoader)
    return load
