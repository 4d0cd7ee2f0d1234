"""ctypes view of the plugin's point-cloud C ABI (``dali_plugin/raw_points.cc``): drives the GPU
backend of voxel_downsample / voxelize / normalize on PyTorch tensors outside DALI, for the GPU
evidence script (poisoned outputs, CUPTI timing). Not a user API."""

from __future__ import annotations

import ctypes

import numpy as np

from . import load_plugin

_U64P = ctypes.POINTER(ctypes.c_ulonglong)
_I64P = ctypes.POINTER(ctypes.c_longlong)
_F32P = ctypes.POINTER(ctypes.c_float)


class RawPoints(ctypes.Structure):
    """Mirror of ``RcRawPoints``."""

    _fields_ = [
        ("kind", ctypes.c_char_p),
        ("mode", ctypes.c_char_p),
        ("anchor", ctypes.c_char_p),
        ("voxel_size", _F32P),
        ("voxel_len", ctypes.c_int),
        ("origin", _F32P),
        ("origin_len", ctypes.c_int),
        ("range", _F32P),
        ("range_len", ctypes.c_int),
        ("min_points", ctypes.c_longlong),
        ("max_points", ctypes.c_longlong),
        ("max_voxels", ctypes.c_longlong),
        ("return_counts", ctypes.c_int),
        ("batch", ctypes.c_int),
        ("cols", ctypes.c_longlong),
        ("data", _U64P),
        ("rows", _I64P),
        ("shapes", _I64P),
        ("outs", _U64P),
        ("host_scratch", ctypes.c_ulonglong),
        ("dev_scratch", ctypes.c_ulonglong),
        ("host_bytes", ctypes.c_ulonglong),
        ("dev_bytes", ctypes.c_ulonglong),
        ("stream", ctypes.c_ulonglong),
        ("known", ctypes.c_int),
        ("need_finish", ctypes.c_int),
        ("emulator", ctypes.c_ulonglong),
        ("pass_hint", ctypes.c_uint),
    ]


_lib = None


def _aligned(n):
    """A numpy byte buffer of n bytes filled with 0xA5 (scratch is never zeroed on the GPU either)
    and its 256-byte aligned address (emulation scratch)."""
    buf = np.full(n + 256, 0xA5, np.uint8)
    addr = buf.ctypes.data
    return buf, addr + (-addr) % 256


def _library():
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(load_plugin())
        _lib.robocache_points_raw.argtypes = [ctypes.POINTER(RawPoints), ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        _lib.robocache_points_raw.restype = ctypes.c_int
    return _lib


def _f32(xs):
    xs = [float(x) for x in np.atleast_1d(xs)] if xs is not None else []
    return (ctypes.c_float * max(1, len(xs)))(*xs), len(xs)


_OUT_TYPES = {
    "voxel_downsample": lambda a: ["f32"] + (["i32"] if a["return_counts"] else []) + (["i32"] if a["max_points"] else []),
    "voxelize": lambda a: (["i32", "f32", "i32"] + (["i32"] if a["max_points"] else [])) if a["mode"] == "sparse" else [{"occupancy": "u8", "count": "i32", "mean": "f32"}[a["mode"] or "occupancy"]],
    "normalize": lambda a: ["f32", "f32", "f32"],
}


class PointsBatch:
    """One GPU run of a point-cloud operator on a batch of CUDA float32 tensors ``[N, C]``.

    Args:
        kind: ``"voxel_downsample"``, ``"voxelize"`` or ``"normalize"``.
        points: list of CUDA torch float32 tensors ``[N, C]`` (same C).
        stream: the CUDA stream (``torch.cuda.current_stream().cuda_stream``).
        poison: byte value outputs are filled with before each run.
        voxel_size, origin, anchor, range, mode, min_points, max_points, max_voxels, return_counts:
            as the operators' arguments.
        emulator: address of ``emulate_points`` in a CPU build of the kernels
            (``tests/emulate/points_emulator.cc``): then ``points`` are numpy arrays, every buffer is
            host memory and no GPU (nor torch) is needed.
        pass_hint: voxel_downsample's radix-pass launches to start from (0: none learned; the
            object's runs act as one operator instance's batches and raise it, see ``pass_hint``).

    Raises:
        RuntimeError: with the operator's error message.
    """

    def __init__(self, kind, points, *, stream=0, poison=0xFF, voxel_size=None, origin=None, anchor="origin", range=None, mode="", min_points=1, max_points=0, max_voxels=0, return_counts=False, emulator=0, pass_hint=0):
        self.emulated = bool(emulator)
        if not self.emulated:
            import torch

            self.torch = torch
        self.points = points
        self.kind = kind
        self.poison = poison
        self._types = _OUT_TYPES[kind](dict(return_counts=return_counts, max_points=max_points, mode=mode))
        r = self.r = RawPoints()
        self._keep = [kind.encode(), mode.encode(), anchor.encode()]
        r.kind, r.mode, r.anchor = self._keep
        self._v, r.voxel_len = _f32(voxel_size)
        self._o, r.origin_len = _f32(origin)
        self._r, r.range_len = _f32(range)
        r.voxel_size, r.origin, r.range = self._v, self._o, self._r
        r.min_points, r.max_points, r.max_voxels, r.return_counts = min_points, max_points, max_voxels, int(return_counts)
        b = len(points)
        r.batch = b
        r.cols = int(points[0].shape[1]) if b else 3
        ptr = (lambda t: t.ctypes.data) if self.emulated else (lambda t: t.data_ptr())
        self._data = (ctypes.c_ulonglong * max(1, b))(*[ptr(t) for t in points])
        self._rows = (ctypes.c_longlong * max(1, b))(*[int(t.shape[0]) for t in points])
        self._shapes = (ctypes.c_longlong * max(1, b * 16))()
        self._outs = (ctypes.c_ulonglong * max(1, b * 4))()
        r.data, r.rows, r.shapes, r.outs = self._data, self._rows, self._shapes, self._outs
        r.stream = stream
        r.emulator = emulator
        r.pass_hint = pass_hint
        self._call(-1)
        if self.emulated:
            self.host, r.host_scratch = _aligned(max(64, r.host_bytes))
            self.dev, r.dev_scratch = _aligned(max(64, r.dev_bytes))
        else:
            self.host = self.torch.empty(max(64, r.host_bytes), dtype=self.torch.uint8, pin_memory=True)
            self.dev = self.torch.empty(max(64, r.dev_bytes), dtype=self.torch.uint8, device="cuda")
            r.host_scratch, r.dev_scratch = self.host.data_ptr(), self.dev.data_ptr()
        self.known = bool(r.known)
        self.out: list[list] = []
        if self.known:
            self._allocate()

    def _call(self, phase: int) -> None:
        err = ctypes.create_string_buffer(4096)
        if _library().robocache_points_raw(ctypes.byref(self.r), phase, err, 4096) != 0:
            raise RuntimeError(err.value.decode())

    def _shape(self, i, k, ndim):
        return tuple(int(self._shapes[(i * 4 + k) * 4 + d]) for d in range(ndim))

    def _allocate(self) -> None:
        if self.emulated:
            dt = {"f32": np.float32, "i32": np.int32, "u8": np.uint8}
        else:
            dt = {"f32": self.torch.float32, "i32": self.torch.int32, "u8": self.torch.uint8}
        nd = {"voxel_downsample": [2, 1, 0] if len(self._types) == 3 else ([2, 1] if self.r.return_counts else [2, 0]), "normalize": [2, 1, 0]}
        if self.kind == "voxelize":
            dims = [2, 2, 1, 0] if len(self._types) >= 3 else [3 if self._types[0] != "f32" else 4]
        else:
            dims = nd[self.kind]
        b = self.r.batch
        if self.emulated:
            self.out = [[np.empty(self._shape(i, k, dims[k]), dtype=dt[ty]) for i in range(b)] for k, ty in enumerate(self._types)]
        else:
            self.out = [[self.torch.empty(self._shape(i, k, dims[k]), dtype=dt[ty], device="cuda") for i in range(b)] for k, ty in enumerate(self._types)]
        for i in range(b):
            for k in range(len(self._types)):
                x = self.out[k][i]
                self._outs[i * 4 + k] = x.ctypes.data if self.emulated else x.data_ptr()
        self.fill_poison()

    def fill_poison(self) -> None:
        """Fills every output with the poison byte."""
        for outs in self.out:
            for x in outs:
                if self.emulated:
                    x.reshape(-1).view(np.uint8)[:] = self.poison
                elif x.numel():
                    x.view(-1).view(self.torch.uint8).fill_(self.poison)

    @property
    def pass_hint(self) -> int:
        """The radix-pass launches learned so far (0: none)."""
        return int(self.r.pass_hint)

    def run(self) -> list[list]:
        """The operator's whole GPU path (for data-dependent sizes: one D2H copy + sync, output
        allocation, finish). Returns outputs ``[output][sample]``."""
        self._call(0)
        if self.r.need_finish:
            self._allocate()
            self._call(1)
        return self.out
