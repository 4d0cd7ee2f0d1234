"""ctypes view of ``dali_plugin/raw_augment.cc``: drives the GPU backends of temporal_jitter,
action_noise and points_augment on PyTorch tensors outside DALI, for the GPU evidence script
(poisoned outputs; kernels timed on the caller's stream). Each run is the operator's iteration 0.
Not a user API."""

from __future__ import annotations

import ctypes

import numpy as np

from . import load_plugin

_U64P = ctypes.POINTER(ctypes.c_ulonglong)
_I64P = ctypes.POINTER(ctypes.c_longlong)
_F64P = ctypes.POINTER(ctypes.c_double)
_F32P = ctypes.POINTER(ctypes.c_float)
OPS = {"temporal_jitter": 0, "action_noise": 1, "points_augment": 2}


class RawAugment(ctypes.Structure):
    """Mirror of ``RcRawAugment``."""

    _fields_ = [
        ("op", ctypes.c_int), ("text0", ctypes.c_char_p), ("dtype", ctypes.c_char_p), ("seed", ctypes.c_longlong),
        ("data_type", ctypes.c_int), ("ts_type", ctypes.c_int), ("batch", ctypes.c_int), ("data_ndim", ctypes.c_int),
        ("channels", ctypes.c_longlong), ("data", _U64P), ("rows", _I64P), ("ts", _U64P), ("args", _F64P),
        ("low", _F64P), ("high", _F64P), ("bounds_len", ctypes.c_int), ("sigma", _F32P), ("sigma_len", ctypes.c_int),
        ("out", _U64P), ("out2", _U64P), ("out3", _U64P), ("out_lens", _I64P),
        ("host_scratch", ctypes.c_ulonglong), ("dev_scratch", ctypes.c_ulonglong), ("scratch_bytes", ctypes.c_ulonglong),
        ("stream", ctypes.c_ulonglong),
    ]


_lib = None


def _library():
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(load_plugin())
        _lib.robocache_augment_raw.argtypes = [ctypes.POINTER(RawAugment), ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        _lib.robocache_augment_raw.restype = ctypes.c_int
    return _lib


def _arr(ctype, xs):
    return (ctype * max(1, len(xs)))(*xs)


def _dali_type(np_dtype) -> int:
    from nvidia.dali import types

    return int(types.to_dali_type(np.dtype(np_dtype)))


class AugmentBatch:
    """One planned GPU run of an augmentation operator on a batch of CUDA tensors.

    Args:
        op: ``"temporal_jitter"``, ``"action_noise"`` or ``"points_augment"``.
        data: list of CUDA torch tensors (``[T, C]`` / ``[T]`` actions, ``[N, 3 + F]`` points).
        args: the operator's parameters in the order ``raw_augment.cc`` documents.
        timestamps: list of numpy float64/int64 arrays (temporal_jitter).
        text0: method (jitter), distribution (noise) or rotation (points).
        dtype: ``""`` or ``"bfloat16"``.
        seed: the operator's seed.
        sigma, low, high: action_noise's sigma and bounds.
        stream: CUDA stream handle.
        poison: the byte outputs are filled with by :meth:`fill_poison`.

    Raises:
        RuntimeError: with the operator's message when planning fails.
    """

    def __init__(self, op, data, args, timestamps=None, text0="", dtype="", seed=0, sigma=(0.0,), low=None, high=None, stream=0, poison=0xFF):
        import torch

        self.torch, self.op, self.data, self.poison = torch, op, data, poison
        np_types = {torch.float32: np.float32, torch.float16: np.float16, torch.float64: np.float64, torch.uint16: np.uint16}
        r = self.r = RawAugment()
        self._keep = [text0.encode(), dtype.encode()]
        r.op, r.text0, r.dtype, r.seed = OPS[op], self._keep[0], self._keep[1], seed
        r.data_type = _dali_type(np_types[data[0].dtype])
        r.batch, r.data_ndim = len(data), data[0].dim()
        r.channels = int(data[0].shape[1]) if data[0].dim() == 2 else 1
        self._data_p = _arr(ctypes.c_ulonglong, [t.data_ptr() for t in data])
        self._rows = _arr(ctypes.c_longlong, [int(t.shape[0]) for t in data])
        self.ts = [np.ascontiguousarray(t) for t in (timestamps or [])]
        self._ts_p = _arr(ctypes.c_ulonglong, [t.ctypes.data for t in self.ts])
        r.ts_type = _dali_type(self.ts[0].dtype) if self.ts else 0
        self._args = _arr(ctypes.c_double, list(args))
        n_b = len(low) if low is not None else (len(high) if high is not None else 0)
        self._low = _arr(ctypes.c_double, list(low)) if low is not None else None
        self._high = _arr(ctypes.c_double, list(high)) if high is not None else None
        self._sigma = _arr(ctypes.c_float, list(sigma))
        r.data, r.rows, r.ts, r.args = self._data_p, self._rows, self._ts_p, self._args
        r.low = ctypes.cast(self._low, _F64P) if self._low is not None else None
        r.high = ctypes.cast(self._high, _F64P) if self._high is not None else None
        r.bounds_len, r.sigma, r.sigma_len = n_b, self._sigma, len(sigma)
        self._lens = _arr(ctypes.c_longlong, [0] * len(data))
        r.out_lens, r.stream = self._lens, stream
        self._call(-1)
        dev = data[0].device
        if op == "temporal_jitter":
            lens = list(self._lens)[: len(data)]
            shape = (lambda n: (n, r.channels)) if r.data_ndim == 2 else (lambda n: (n,))
            self.out = [torch.empty(shape(n), dtype=data[0].dtype, device=dev) for n in lens]
            tdt = torch.int64 if self.ts[0].dtype == np.int64 else torch.float64
            self.out2 = [torch.empty((n,), dtype=tdt, device=dev) for n in lens]
            self.out3 = []
        elif op == "action_noise":
            self.out, self.out2, self.out3 = [torch.empty_like(t) for t in data], [], []
        else:
            self.out = [torch.empty_like(t) for t in data]
            self.out2 = [torch.empty((4, 4), dtype=torch.float32, device=dev) for _ in data]
            self.out3 = [torch.empty((int(t.shape[0]),), dtype=torch.uint8, device=dev) for t in data]
        self.host = torch.empty(max(1, r.scratch_bytes), dtype=torch.uint8, pin_memory=True)
        self.dev = torch.empty(max(1, r.scratch_bytes), dtype=torch.uint8, device=dev)
        self._o = [_arr(ctypes.c_ulonglong, [t.data_ptr() for t in ts_]) for ts_ in (self.out, self.out2, self.out3)]
        r.out, r.out2, r.out3 = self._o
        r.host_scratch, r.dev_scratch = self.host.data_ptr(), self.dev.data_ptr()

    def _call(self, phase: int) -> None:
        err = ctypes.create_string_buffer(4096)
        if _library().robocache_augment_raw(ctypes.byref(self.r), phase, err, 4096) != 0:
            raise RuntimeError(err.value.decode())

    def fill_poison(self) -> None:
        """Fills every output with the poison byte."""
        for t in self.out + self.out2 + self.out3:
            if t.numel():
                t.view(self.torch.uint8).fill_(self.poison)

    def run(self) -> None:
        """Plans on the host, copies the descriptors, launches (the operator's whole GPU path)."""
        self._call(0)

    def outputs(self):
        """The outputs as lists of numpy arrays (after a run and a synchronisation)."""
        return [[t.cpu().numpy() for t in ts_] for ts_ in (self.out, self.out2, self.out3) if ts_]
