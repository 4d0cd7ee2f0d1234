//! Bridge entries of `robocache.align` (declared in `src/ffi.rs`).

use super::bridge::{AlignConfig, AlignOut, AlignRefIn, AlignStreamIn};
use super::{dtype_or_err, slice, slice_mut};
use crate::dtype::{DType, Times, TimesMut};
use crate::error::{guard, Error, Result};
use crate::ops::align::{self as al, AlignArgs, Clock, Layout, RawArgs, OP as ALIGN};
use crate::ops::align_cpu::{self as alc, Wide};
use crate::ops::align_gpu::{self as alg, GpuSample};
use crate::ops::resample::check_times_dtype;
use half::{bf16, f16};

/// A configured `robocache.align` operator instance.
pub struct AlignOp {
    args: AlignArgs,
}

pub(super) fn align_new(cfg: &AlignConfig) -> Result<Box<AlignOp>> {
    guard(ALIGN, || {
        let methods: Vec<String> = cfg.methods.to_vec();
        let args = AlignArgs::parse(&RawArgs {
            num_inputs: cfg.num_inputs.max(0) as usize,
            methods: &methods,
            max_gap: &cfg.max_gap,
            quaternions: &cfg.quaternions,
            quaternion_order: &cfg.quaternion_order,
            fill: &cfg.fill,
            span: &cfg.span,
            dtype: &cfg.dtype,
            target_rate: cfg.has_target_rate.then_some(cfg.target_rate),
            num_samples: cfg.has_num_samples.then_some(cfg.num_samples),
        })?;
        Ok(Box::new(AlignOp { args }))
    })
}

pub(super) fn align_num_streams(op: &AlignOp) -> usize {
    op.args.streams
}

/// Batch-level types after validation.
struct Types {
    data: DType,
    ts_int: bool,
}

fn stream_err(i: usize, q: usize, m: impl std::fmt::Display) -> Error {
    Error::sample(ALIGN, i, format!("stream {q}: {m}"))
}

/// Checks types, dimensions and channel counts of the whole batch; returns its types and layout.
fn check_batch(op: &AlignOp, streams: &[AlignStreamIn], refs: &[AlignRefIn]) -> Result<(Types, Layout)> {
    let ns = op.args.streams;
    if streams.is_empty() || streams.len() % ns != 0 {
        return Err(Error::Batch { op: ALIGN, msg: format!("{} stream inputs for {ns} streams", streams.len()) });
    }
    let data = op.args.data_dtype(dtype_or_err(ALIGN, "data", streams[0].data_type)?)?;
    let ts = dtype_or_err(ALIGN, "timestamps", streams[0].ts_type)?;
    check_times_dtype(ALIGN, "timestamps", ts)?;
    let channels: Vec<usize> = streams[..ns].iter().map(|s| s.channels.max(0) as usize).collect();
    for (k, s) in streams.iter().enumerate() {
        let (i, q) = (k / ns, k % ns);
        let d = op.args.data_dtype(dtype_or_err(ALIGN, "data", s.data_type)?)?;
        if d != data {
            return Err(stream_err(
                i,
                q,
                format!("data is {} but stream 0 is {}; all streams must share one dtype", d.name(), data.name()),
            ));
        }
        let t = dtype_or_err(ALIGN, "timestamps", s.ts_type)?;
        check_times_dtype(ALIGN, "timestamps", t)?;
        if t != ts {
            return Err(stream_err(
                i,
                q,
                format!(
                    "timestamps are {} but stream 0's are {}; all must be float64 seconds or all int64 nanoseconds",
                    t.name(),
                    ts.name()
                ),
            ));
        }
        if !(1..=2).contains(&s.data_ndim) {
            return Err(stream_err(i, q, format!("data must be [T, C] or [T]; got {} dimensions", s.data_ndim)));
        }
        if s.ts_ndim != 1 {
            return Err(stream_err(i, q, format!("timestamps must be 1-D [T]; got {} dimensions", s.ts_ndim)));
        }
        if s.channels as usize != channels[q] {
            return Err(stream_err(
                i,
                q,
                format!(
                    "data has C={} channels but sample 0 has C={}; C must be shared within a batch",
                    s.channels, channels[q]
                ),
            ));
        }
        if s.channels == 0 {
            return Err(stream_err(i, q, "data has 0 channels (C == 0)"));
        }
    }
    if op.args.clock == Clock::Timestamps {
        for (i, r) in refs.iter().enumerate() {
            let t = dtype_or_err(ALIGN, "reference timestamps", r.ts_type)?;
            check_times_dtype(ALIGN, "reference timestamps", t)?;
            if t != ts {
                return Err(Error::sample(
                    ALIGN,
                    i,
                    format!("reference timestamps are {} but the streams' are {}; all must be float64 seconds or all int64 nanoseconds", t.name(), ts.name()),
                ));
            }
            if r.ndim != 1 {
                return Err(Error::sample(
                    ALIGN,
                    i,
                    format!("reference timestamps must be 1-D [T]; got {} dimensions", r.ndim),
                ));
            }
        }
    }
    let layout = Layout::new(&op.args, &channels)?;
    Ok((Types { data, ts_int: ts == DType::I64 }, layout))
}

/// # Safety
/// Host timestamp pointers must be valid for their lengths.
unsafe fn times_of<'a>(p: usize, len: i64, ts_int: bool) -> Times<'a> {
    if ts_int {
        Times::Nanos(slice(p, len))
    } else {
        Times::Seconds(slice(p, len))
    }
}

/// # Safety
/// As [`times_of`], for one sample's streams and reference.
unsafe fn sample_times<'a>(
    op: &AlignOp,
    streams: &[AlignStreamIn],
    r: Option<&AlignRefIn>,
    ts_int: bool,
) -> (Vec<usize>, Vec<Times<'a>>, Option<Times<'a>>) {
    let rows = streams.iter().map(|s| s.rows.max(0) as usize).collect();
    let t = streams.iter().map(|s| times_of(s.ts, s.ts_len, ts_int)).collect();
    // An empty reference may come with a null pointer: the clock form, not the pointer, says it is there.
    let rf = r.filter(|_| op.args.clock == Clock::Timestamps).map(|r| times_of(r.ts, r.len, ts_int));
    (rows, t, rf)
}

pub(super) fn align_setup(
    op: &AlignOp,
    streams: &[AlignStreamIn],
    refs: &[AlignRefIn],
    out_lens: &mut [i64],
) -> Result<i64> {
    guard(ALIGN, || {
        let (ty, layout) = check_batch(op, streams, refs)?;
        let ns = op.args.streams;
        for (i, chunk) in streams.chunks(ns).enumerate() {
            // SAFETY: the C++ operator passes host pointers of the CPU timestamp inputs with their lengths.
            let (rows, t, rf) = unsafe { sample_times(op, chunk, refs.get(i), ty.ts_int) };
            if op.args.clock == Clock::Timestamps && rf.is_none() {
                return Err(Error::sample(ALIGN, i, "missing reference timestamps input"));
            }
            out_lens[i] = al::plan_any(&op.args, i, &rows, &t, rf)?;
        }
        let _ = ty.data;
        Ok(layout.total as i64)
    })
}

/// # Safety
/// Host pointers of `streams` and `out` must be valid for the planned shapes.
#[allow(clippy::too_many_arguments)]
unsafe fn run_cpu_typed<E: Wide>(
    op: &AlignOp,
    layout: &Layout,
    i: usize,
    streams: &[AlignStreamIn],
    r: &AlignRefIn,
    out: &AlignOut,
    ts_int: bool,
    n: usize,
) -> Result<()> {
    let data: Vec<&[E]> = streams.iter().map(|s| slice::<E>(s.data, s.rows * s.channels)).collect();
    let (_, t, rf) = sample_times(op, streams, Some(r), ts_int);
    let o: &mut [E] = slice_mut(out.out, n * layout.total);
    let v: &mut [u8] = slice_mut(out.valid, n * op.args.streams);
    let ot =
        if ts_int { TimesMut::Nanos(slice_mut(out.out_ts, n)) } else { TimesMut::Seconds(slice_mut(out.out_ts, n)) };
    alc::run_any(&op.args, layout, i, &data, &t, rf, o, v, ot)
}

pub(super) unsafe fn align_run_cpu(
    op: &AlignOp,
    index: usize,
    streams: &[AlignStreamIn],
    reference: &AlignRefIn,
    out: &AlignOut,
) -> Result<()> {
    guard(ALIGN, || {
        let refs = std::slice::from_ref(reference);
        let (ty, layout) = check_batch(op, streams, refs)?;
        let (rows, t, rf) = sample_times(op, streams, Some(reference), ty.ts_int);
        let n = al::plan_any(&op.args, index, &rows, &t, rf)? as usize;
        match ty.data {
            DType::F32 => run_cpu_typed::<f32>(op, &layout, index, streams, reference, out, ty.ts_int, n),
            DType::F64 => run_cpu_typed::<f64>(op, &layout, index, streams, reference, out, ty.ts_int, n),
            DType::F16 => run_cpu_typed::<f16>(op, &layout, index, streams, reference, out, ty.ts_int, n),
            DType::BF16 => run_cpu_typed::<bf16>(op, &layout, index, streams, reference, out, ty.ts_int, n),
            other => Err(Error::UnsupportedDtype {
                op: ALIGN,
                what: "data",
                got: other.name().into(),
                expected: "float32, float16, float64 or bfloat16",
            }),
        }
    })
}

/// # Safety
/// Host timestamp pointers must be valid for their lengths.
unsafe fn gpu_samples<'a>(
    op: &AlignOp,
    streams: &'a [AlignStreamIn],
    refs: &'a [AlignRefIn],
    outs: &[AlignOut],
    ts_int: bool,
    num_out: &[i64],
) -> Vec<GpuSample<'a>> {
    let ns = op.args.streams;
    streams
        .chunks(ns)
        .enumerate()
        .map(|(i, chunk)| {
            let (rows, times, reference) = sample_times(op, chunk, refs.get(i), ts_int);
            let o = outs.get(i);
            GpuSample {
                data: chunk.iter().map(|s| s.data as u64).collect(),
                rows,
                times,
                reference,
                out: o.map_or(0, |o| o.out as u64),
                valid: o.map_or(0, |o| o.valid as u64),
                out_ts: o.map_or(0, |o| o.out_ts as u64),
                num_out: num_out.get(i).copied().unwrap_or(0).max(0) as usize,
            }
        })
        .collect()
}

pub(super) fn align_gpu_scratch(
    op: &AlignOp,
    streams: &[AlignStreamIn],
    refs: &[AlignRefIn],
    out_lens: &[i64],
    sizes: &mut [usize],
) -> Result<()> {
    guard(ALIGN, || {
        let (ty, layout) = check_batch(op, streams, refs)?;
        // SAFETY: host timestamp pointers come from DALI's CPU inputs with their lengths.
        let g = unsafe { gpu_samples(op, streams, refs, &[], ty.ts_int, out_lens) };
        let (h, d) = alg::scratch_bytes(&g, layout.total);
        if sizes.len() < 2 {
            return Err(Error::Batch { op: ALIGN, msg: format!("{} scratch sizes asked for; 2 written", sizes.len()) });
        }
        sizes[0] = h;
        sizes[1] = d;
        Ok(())
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn align_run_gpu(
    op: &AlignOp,
    streams: &[AlignStreamIn],
    refs: &[AlignRefIn],
    out_lens: &[i64],
    outs: &[AlignOut],
    host_scratch: usize,
    scratch_bytes: usize,
    dev_scratch: usize,
    dev_scratch_bytes: usize,
    stream: usize,
    phase: u8,
) -> Result<()> {
    guard(ALIGN, || {
        let (ty, layout) = check_batch(op, streams, refs)?;
        let nsamp = streams.len() / op.args.streams;
        if outs.len() != nsamp {
            return Err(Error::Batch { op: ALIGN, msg: format!("{} outputs for {nsamp} samples", outs.len()) });
        }
        let g = gpu_samples(op, streams, refs, outs, ty.ts_int, out_lens);
        let host = slice_mut::<u8>(host_scratch, scratch_bytes);
        let phase = match phase {
            0 => alg::Phase::All,
            1 => alg::Phase::Stage,
            2 => alg::Phase::Launch,
            3 => alg::Phase::Emulate,
            p => return Err(Error::arg(ALIGN, "phase", p, "0 (all), 1 (stage), 2 (launch) or 3 (emulate)")),
        };
        let dev = dev_scratch as u64;
        alg::run_gpu(&op.args, &layout, ty.data, &g, host, dev, dev_scratch_bytes, stream as crate::gpu::Stream, phase)
    })
}
