"""ctypes view of the plugin's C ABI (``dali_plugin/raw_api.cc``): drives the GPU backend on PyTorch
tensors outside DALI, for tests and benchmarks (poisoned outputs; timing the kernel launch alone).
Not a user API."""

from __future__ import annotations

import ctypes

import numpy as np

from . import load_plugin

_U64P = ctypes.POINTER(ctypes.c_ulonglong)
_I64P = ctypes.POINTER(ctypes.c_longlong)


class RawResample(ctypes.Structure):
    """Mirror of ``RcRawResample``."""

    _fields_ = [
        ("method", ctypes.c_char_p),
        ("extrapolate", ctypes.c_char_p),
        ("dtype", ctypes.c_char_p),
        ("target_rate", ctypes.c_double),
        ("num_samples", ctypes.c_longlong),
        ("data_type", ctypes.c_int),
        ("ts_type", ctypes.c_int),
        ("batch", ctypes.c_int),
        ("data_ndim", ctypes.c_int),
        ("channels", ctypes.c_longlong),
        ("data", _U64P),
        ("rows", _I64P),
        ("ts", _U64P),
        ("out", _U64P),
        ("out_ts", _U64P),
        ("out_lens", _I64P),
        ("host_scratch", ctypes.c_ulonglong),
        ("dev_scratch", ctypes.c_ulonglong),
        ("scratch_bytes", ctypes.c_ulonglong),
        ("stream", ctypes.c_ulonglong),
    ]


_lib = None


def _library():
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(load_plugin())
        _lib.robocache_resample_raw.argtypes = [ctypes.POINTER(RawResample), ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        _lib.robocache_resample_raw.restype = ctypes.c_int
    return _lib


def _u64(xs):
    return (ctypes.c_ulonglong * len(xs))(*xs)


def _dali_type(np_dtype) -> int:
    from nvidia.dali import types

    return int(types.to_dali_type(np.dtype(np_dtype)))


class ResampleBatch:
    """One planned GPU resample of a batch: device data, host timestamps, device outputs.

    Args:
        data: list of CUDA torch tensors ``[T, C]`` (float32/float16/float64, or uint16 bf16 bits).
        timestamps: list of numpy float64/int64 arrays ``[T]`` (kept alive by this object).
        method, extrapolate, dtype, target_rate, num_samples: as ``fn.robocache.resample``.
        stream: the CUDA stream (``torch.cuda.current_stream().cuda_stream``).
        poison: byte value the outputs are filled with before each run (0xFF: NaN patterns).

    Raises:
        RuntimeError: with the operator's error message when planning fails.
    """

    def __init__(self, data, timestamps, *, method="linear", extrapolate="clamp", dtype="", target_rate=0.0, num_samples=0, stream=0, poison=0xFF):
        import torch

        self.torch = torch
        self.data = data
        self.ts = [np.ascontiguousarray(t) for t in timestamps]
        self.channels = int(data[0].shape[1]) if data[0].dim() == 2 else 1
        np_types = {torch.float32: np.float32, torch.float16: np.float16, torch.float64: np.float64, torch.uint16: np.uint16}
        self.r = RawResample()
        self._keep = [method.encode(), extrapolate.encode(), dtype.encode()]
        self.r.method, self.r.extrapolate, self.r.dtype = self._keep
        self.r.target_rate = target_rate
        self.r.num_samples = num_samples
        self.r.data_type = _dali_type(np_types[data[0].dtype])
        self.r.ts_type = _dali_type(self.ts[0].dtype)
        self.r.batch = len(data)
        self.r.data_ndim = data[0].dim()
        self.r.channels = self.channels
        self._data_p = _u64([t.data_ptr() for t in data])
        self._rows = (ctypes.c_longlong * len(data))(*[int(t.shape[0]) for t in data])
        self._ts_p = _u64([t.ctypes.data for t in self.ts])
        self._lens = (ctypes.c_longlong * len(data))()
        self.r.data, self.r.rows, self.r.ts, self.r.out_lens = self._data_p, self._rows, self._ts_p, self._lens
        self.r.stream = stream
        self._call(-1)
        self.lens = list(self._lens)
        shape = (lambda n: (n, self.channels)) if self.r.data_ndim == 2 else (lambda n: (n,))
        self.out = [torch.empty(shape(n), dtype=data[0].dtype, device=data[0].device) for n in self.lens]
        ts_t = torch.int64 if self.ts[0].dtype == np.int64 else torch.float64
        self.out_ts = [torch.empty((n,), dtype=ts_t, device=data[0].device) for n in self.lens]
        self.poison = poison
        self.host = torch.empty(max(1, self.r.scratch_bytes), dtype=torch.uint8, pin_memory=True)
        self.dev = torch.empty(max(1, self.r.scratch_bytes), dtype=torch.uint8, device=data[0].device)
        self._out_p = _u64([t.data_ptr() for t in self.out])
        self._out_ts_p = _u64([t.data_ptr() for t in self.out_ts])
        self.r.out, self.r.out_ts = self._out_p, self._out_ts_p
        self.r.host_scratch, self.r.dev_scratch = self.host.data_ptr(), self.dev.data_ptr()

    def _call(self, phase: int) -> None:
        err = ctypes.create_string_buffer(4096)
        if _library().robocache_resample_raw(ctypes.byref(self.r), phase, err, 4096) != 0:
            raise RuntimeError(err.value.decode())

    def fill_poison(self) -> None:
        """Fills every output with the poison byte."""
        for t in self.out + self.out_ts:
            t.view(self.torch.uint8).fill_(self.poison) if t.numel() else None

    def run(self) -> None:
        """Stages descriptors and timestamps, then launches (the operator's whole GPU path)."""
        self._call(0)

    def stage(self) -> None:
        """Stages descriptors and timestamps on the device (one async copy)."""
        self._call(1)

    def launch(self) -> None:
        """Launches the kernel alone (after :meth:`stage`)."""
        self._call(2)
