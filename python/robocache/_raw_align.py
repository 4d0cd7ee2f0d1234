"""ctypes view of the plugin's C ABI for align (``dali_plugin/raw_align.cc``): drives the GPU backend
of ``fn.robocache.align`` on PyTorch tensors outside DALI, for the GPU evidence script (poisoned
outputs; timing the kernel launch alone). Not a user API."""

from __future__ import annotations

import ctypes

import numpy as np

from . import load_plugin
from ._raw import _dali_type, _u64

_U64P = ctypes.POINTER(ctypes.c_ulonglong)
_I64P = ctypes.POINTER(ctypes.c_longlong)


class RawAlign(ctypes.Structure):
    """Mirror of ``RcRawAlign``."""

    _fields_ = [
        ("methods", ctypes.c_char_p),
        ("max_gap", ctypes.POINTER(ctypes.c_double)),
        ("n_gap", ctypes.c_int),
        ("n_quat", ctypes.c_int),
        ("quaternions", _I64P),
        ("quaternion_order", ctypes.c_char_p),
        ("fill", ctypes.c_char_p),
        ("span", ctypes.c_char_p),
        ("dtype", ctypes.c_char_p),
        ("target_rate", ctypes.c_double),
        ("num_samples", ctypes.c_longlong),
        ("num_streams", ctypes.c_int),
        ("has_ref", ctypes.c_int),
        ("data_type", ctypes.c_int),
        ("ts_type", ctypes.c_int),
        ("batch", ctypes.c_int),
        ("pad", ctypes.c_int),
        ("data", _U64P),
        ("rows", _I64P),
        ("channels", _I64P),
        ("ts", _U64P),
        ("ref", _U64P),
        ("ref_len", _I64P),
        ("out", _U64P),
        ("valid", _U64P),
        ("out_ts", _U64P),
        ("out_lens", _I64P),
        ("total_channels", ctypes.c_longlong),
        ("host_scratch", ctypes.c_ulonglong),
        ("dev_scratch", ctypes.c_ulonglong),
        ("scratch_bytes", ctypes.c_ulonglong),
        ("stream", ctypes.c_ulonglong),
        ("dev_scratch_bytes", ctypes.c_ulonglong),
    ]


_lib = None


def _library():
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(load_plugin())
        _lib.robocache_align_raw.argtypes = [ctypes.POINTER(RawAlign), ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        _lib.robocache_align_raw.restype = ctypes.c_int
    return _lib


class AlignBatch:
    """One planned GPU align of a batch: device data, host timestamps, device outputs.

    Args:
        data: per stream, a list over the batch of CUDA torch tensors ``[T, C]`` (float32/float16/
            float64, or uint16 bf16 bits); or numpy arrays for planning only (``plan_only=True``).
        timestamps: per stream, a list over the batch of numpy float64/int64 arrays ``[T]``.
        reference: a list over the batch of reference timestamps, or ``None``.
        methods, max_gap, quaternions, quaternion_order, fill, span, dtype, target_rate,
        num_samples: as ``fn.robocache.align``.
        stream: the CUDA stream (``torch.cuda.current_stream().cuda_stream``).
        poison: byte value the outputs are filled with before a run (0xFF: NaN patterns).
        plan_only: validate and plan only (no GPU needed): ``lens``, ``total_channels``, ``scratch_bytes``.
        host: numpy data and numpy outputs, for :meth:`emulate` (no GPU needed).

    Raises:
        RuntimeError: with the operator's error message when planning fails.
    """

    def __init__(
        self, data, timestamps, reference=None, *, methods=(), max_gap=(), quaternions=(), quaternion_order="xyzw", fill="hold",
        span="intersection", dtype="", target_rate=0.0, num_samples=0, stream=0, poison=0xFF, plan_only=False, host=False,
    ):
        ns, b = len(data), len(data[0])
        self.ts = [[np.ascontiguousarray(t) for t in per] for per in timestamps]
        self.ref = [np.ascontiguousarray(t) for t in reference] if reference is not None else None
        self.r = r = RawAlign()
        self._keep = [",".join(methods).encode(), quaternion_order.encode(), fill.encode(), span.encode(), dtype.encode()]
        r.methods, r.quaternion_order, r.fill, r.span, r.dtype = self._keep
        self._gap = (ctypes.c_double * max(1, len(max_gap)))(*max_gap)
        self._quat = (ctypes.c_longlong * max(1, len(quaternions)))(*quaternions)
        r.max_gap, r.n_gap, r.quaternions, r.n_quat = self._gap, len(max_gap), self._quat, len(quaternions)
        r.target_rate, r.num_samples = target_rate, num_samples
        r.num_streams, r.has_ref, r.batch = ns, int(reference is not None), b
        first = data[0][0]
        if plan_only or host:
            self.data = [[np.ascontiguousarray(x) for x in per] for per in data]
            np_t = np.asarray(first).dtype
            ptrs = [self.data[q][i].ctypes.data for i in range(b) for q in range(ns)] if host else [0] * (b * ns)
            rows = [len(data[q][i]) for i in range(b) for q in range(ns)]
            chans = [int(np.asarray(data[q][0]).shape[1]) for q in range(ns)]
        else:
            import torch

            np_t = {torch.float32: np.float32, torch.float16: np.float16, torch.float64: np.float64, torch.uint16: np.uint16}[first.dtype]
            ptrs = [data[q][i].data_ptr() for i in range(b) for q in range(ns)]
            rows = [int(data[q][i].shape[0]) for i in range(b) for q in range(ns)]
            chans = [int(data[q][0].shape[1]) for q in range(ns)]
        r.data_type, r.ts_type = _dali_type(np_t), _dali_type(self.ts[0][0].dtype)
        self._data_p, self._rows = _u64(ptrs), (ctypes.c_longlong * len(rows))(*rows)
        self._chans = (ctypes.c_longlong * ns)(*chans)
        self._ts_p = _u64([self.ts[q][i].ctypes.data for i in range(b) for q in range(ns)])
        self._ref_p = _u64([t.ctypes.data for t in self.ref] if self.ref else [0] * b)
        self._ref_len = (ctypes.c_longlong * b)(*([len(t) for t in self.ref] if self.ref else [0] * b))
        self._lens = (ctypes.c_longlong * b)()
        r.data, r.rows, r.channels, r.ts, r.ref, r.ref_len, r.out_lens = self._data_p, self._rows, self._chans, self._ts_p, self._ref_p, self._ref_len, self._lens
        r.stream = stream
        self._call(-1)
        self.lens = list(self._lens)
        self.total_channels = int(r.total_channels)
        self.scratch_bytes = int(r.scratch_bytes)
        self.dev_scratch_bytes = int(r.dev_scratch_bytes)
        if plan_only:
            return
        if host:
            self.out = [np.empty((n, self.total_channels), np_t) for n in self.lens]
            for o in self.out:
                o.view(np.uint8).fill(poison)
            self.valid = [np.full((n, ns), poison, np.uint8) for n in self.lens]
            self.out_ts = [np.empty(n, self.ts[0][0].dtype) for n in self.lens]
            for o in self.out_ts:
                o.view(np.uint8).fill(poison)
            self.host = np.zeros(max(1, self.dev_scratch_bytes), np.uint8)  # host and device scratch in one
            r.scratch_bytes = self.dev_scratch_bytes
            r.out, r.valid, r.out_ts = (_u64([a.ctypes.data for a in x]) for x in (self.out, self.valid, self.out_ts))
            self._host_keep = (r.out, r.valid, r.out_ts)
            r.host_scratch = r.dev_scratch = self.host.ctypes.data
            return
        import torch

        self.torch = torch
        dev = first.device
        self.out = [torch.empty((n, self.total_channels), dtype=first.dtype, device=dev) for n in self.lens]
        self.valid = [torch.empty((n, ns), dtype=torch.uint8, device=dev) for n in self.lens]
        ts_t = torch.int64 if self.ts[0][0].dtype == np.int64 else torch.float64
        self.out_ts = [torch.empty((n,), dtype=ts_t, device=dev) for n in self.lens]
        self.poison = poison
        self.host = torch.empty(max(1, self.scratch_bytes), dtype=torch.uint8, pin_memory=True)
        self.dev = torch.empty(max(1, self.dev_scratch_bytes), dtype=torch.uint8, device=dev)
        self._out_p, self._valid_p, self._out_ts_p = _u64([t.data_ptr() for t in self.out]), _u64([t.data_ptr() for t in self.valid]), _u64([t.data_ptr() for t in self.out_ts])
        r.out, r.valid, r.out_ts = self._out_p, self._valid_p, self._out_ts_p
        r.host_scratch, r.dev_scratch = self.host.data_ptr(), self.dev.data_ptr()

    def _call(self, phase: int) -> None:
        err = ctypes.create_string_buffer(4096)
        if _library().robocache_align_raw(ctypes.byref(self.r), phase, err, 4096) != 0:
            raise RuntimeError(err.value.decode())

    def fill_poison(self) -> None:
        """Fills every output with the poison byte."""
        for t in self.out + self.valid + self.out_ts:
            if t.numel():
                t.view(self.torch.uint8).fill_(self.poison)

    def run(self) -> None:
        """Stages descriptors and timestamps, then launches (the operator's whole GPU path)."""
        self._call(0)

    def stage(self) -> None:
        """Stages descriptors and timestamps on the device (one async copy)."""
        self._call(1)

    def launch(self) -> None:
        """Launches the kernel alone (after :meth:`stage`)."""
        self._call(2)

    def emulate(self, emulator_address: int) -> None:
        """Packs the batch as the GPU path does and runs a CPU build of the kernel on it
        (``host=True`` batches; see ``Phase::Emulate`` in ``src/ops/align_gpu.rs``)."""
        self.r.stream = emulator_address
        self._call(3)
