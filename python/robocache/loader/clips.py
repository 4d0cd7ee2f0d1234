"""The group of pictures (GOP) holding one frame of a video file, cut out as a tiny IVF stream for
``fn.decoders.video``.

DALI 2.4's video decoder, given a whole file in memory, decodes from the file's first frame up to
the one asked for (measured: the cost grows linearly with the frame index), so a frame deep in an
episode costs tens of decodes. Handing it only the GOP that holds the frame bounds that to the GOP
length (LeRobot encodes with GOP 2). The GOP's packets are copied as they are (no re-encode) into
an IVF container (32-byte header, 12-byte frame headers carrying the presentation times), which
FFmpeg, and so DALI, demuxes for VP8, VP9 and H.264 (FFmpeg's IVF demuxer has no HEVC tag: HEVC
files go in whole); H.264 packets are rewritten from the MP4/Matroska length-prefixed form to
Annex B (start codes, the same bytes otherwise) with the parameter sets of the file's ``avcC``
record in front of each keyframe, the form NVDEC parses without a bitstream filter. One demux pass per file (PyAV) builds the table; a clip is built
once per GOP and kept.

Assumes closed GOPs (no frame displayed after a keyframe refers to a frame before it), which is
what LeRobot's and FFmpeg's default encodes give; :func:`clip_codec` says which codecs take this
path; the others are fed as whole files.
"""

from __future__ import annotations

import struct
import threading
from fractions import Fraction

import numpy as np

# IVF codec tags FFmpeg's IVF demuxer maps (it has none for HEVC: HEVC files go in whole)
FOURCC = {"h264": b"H264", "vp9": b"VP90", "vp8": b"VP80"}


def clip_codec(codec: str) -> bool:
    """Whether frames of this (canonical) codec are fed to DALI as GOP clips."""
    return codec in FOURCC


def _parameter_sets(extra: bytes) -> tuple:
    """``(Annex-B SPS/PPS, NAL length size)`` from an H.264 ``avcC`` record; an Annex-B extradata
    (start code first) is returned as it is with length size 0 (packets already Annex B)."""
    sc = b"\x00\x00\x00\x01"
    if not extra:
        return b"", 4
    if extra[:3] == b"\x00\x00\x01" or extra[:4] == sc:
        return bytes(extra), 0
    out, n_len = [], (extra[4] & 3) + 1
    p, n = 6, extra[5] & 0x1F
    for group in range(2):  # SPS (count in byte 5), then PPS (count in the byte after the SPS)
        if group == 1:
            n, p = extra[p], p + 1
        for _ in range(n):
            ln = struct.unpack(">H", extra[p:p + 2])[0]
            out.append(sc + extra[p + 2:p + 2 + ln])
            p += 2 + ln
    return b"".join(out), n_len


def _annexb(data: bytes, n_len: int) -> bytes:
    """Length-prefixed NAL units -> start-code-prefixed ones."""
    if n_len == 0:
        return data
    out, p, n = [], 0, len(data)
    while p + n_len <= n:
        ln = int.from_bytes(data[p:p + n_len], "big")
        p += n_len
        out.append(b"\x00\x00\x00\x01" + data[p:p + ln])
        p += ln
    return b"".join(out)


class ClipIndex:
    """A video file's packets grouped by GOP, and the GOP clip of any displayed frame.

    Args:
        path: video file.
        context: text naming the dataset/episode, for error messages.

    Raises:
        CorruptDatasetError: when the file cannot be demuxed or holds no keyframe.
    """

    def __init__(self, path: str, context: str = "") -> None:
        import av  # noqa: PLC0415

        from ..datasets import CorruptDatasetError  # noqa: PLC0415
        from ..datasets.video import canonical_codec  # noqa: PLC0415

        self.path = path
        try:
            with av.open(path) as c:
                s = c.streams.video[0]
                self.codec = canonical_codec(s.codec_context.name)
                tb = s.time_base or Fraction(1, 1)
                self.width, self.height = s.codec_context.width or s.width, s.codec_context.height or s.height
                extra = bytes(s.codec_context.extradata or b"")
                pkts = [(bytes(p), p.pts if p.pts is not None else p.dts, bool(p.is_keyframe)) for p in c.demux(s) if p.size]
        except av.error.FFmpegError as e:
            if isinstance(e, FileNotFoundError):
                raise
            raise CorruptDatasetError(f"{context}video file {path} cannot be demuxed ({e}); it was readable when the loader "
                                      f"was built") from None
        if not pkts or any(t is None for _, t, _ in pkts) or not pkts[0][2]:
            raise CorruptDatasetError(f"{context}{path}: no timestamps, or the first packet is not a keyframe")
        self.tb = Fraction(tb)
        params, n_len = _parameter_sets(extra) if self.codec == "h264" else (b"", 0)
        data = []
        for d, _, key in pkts:
            if self.codec == "h264":
                d = (params if key else b"") + _annexb(d, n_len)
            data.append(d)
        self.data = data
        self.pts = np.array([t for _, t, _ in pkts], np.int64)
        keys = np.flatnonzero([k for _, _, k in pkts])
        self.gop_start = keys  # decode-order index of each GOP's keyframe
        self.gop_of = np.searchsorted(keys, np.arange(len(pkts)), side="right") - 1  # GOP of each packet
        order = np.argsort(self.pts, kind="stable")
        self.display_pts = self.pts[order]
        self.display_packet = order  # display rank -> decode-order packet
        self.nbytes = sum(len(d) for d in data)
        self._clips: dict = {}
        self._lock = threading.Lock()
        # IVF header: signature, version, header size, fourcc, width, height, time base (denominator,
        # numerator), frame count (set per clip), unused
        self._header = struct.pack("<4sHH4sHHIIII", b"DKIF", 0, 32, FOURCC[self.codec], int(self.width), int(self.height),
                                   int(self.tb.denominator), int(self.tb.numerator), 0, 0)

    def frame_at(self, seconds: np.ndarray, tolerance: float) -> np.ndarray:
        """Display rank of the frame shown at each time (seconds in the file), -1 where no frame is
        within ``tolerance``."""
        t = self.display_pts * float(self.tb)
        s = np.asarray(seconds, np.float64)
        j = np.searchsorted(t, s)
        lo, hi = np.clip(j - 1, 0, len(t) - 1), np.clip(j, 0, len(t) - 1)
        pick = np.where(np.abs(t[lo] - s) <= np.abs(t[hi] - s), lo, hi)
        return np.where(np.abs(t[pick] - s) <= tolerance, pick, -1)

    def clip(self, rank: int) -> tuple:
        """``(IVF bytes as a uint8 array, index of the frame in the clip)`` for display rank ``rank``."""
        d = int(self.display_packet[rank])
        g = int(self.gop_of[d])
        with self._lock:
            got = self._clips.get(g)
        if got is None:
            a = int(self.gop_start[g])
            b = int(self.gop_start[g + 1]) if g + 1 < len(self.gop_start) else len(self.data)
            pts = self.pts[a:b]
            base = int(pts.min())
            parts = [self._header[:24] + struct.pack("<I", b - a) + self._header[28:]]
            for k in range(a, b):
                parts.append(struct.pack("<IQ", len(self.data[k]), int(self.pts[k]) - base))
                parts.append(self.data[k])
            arr = np.frombuffer(b"".join(parts), np.uint8)
            sorted_pts = np.sort(pts)
            got = (arr, {int(p): i for i, p in enumerate(sorted_pts.tolist())})
            with self._lock:
                self._clips[g] = got
        arr, rank_in = got
        return arr, rank_in[int(self.pts[d])]
