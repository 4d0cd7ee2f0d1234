//! Bridge entries of `robocache.resample` (declared in `src/ffi.rs`).

use super::bridge::{ResampleBatchIn, ResampleConfig, ResampleOut, ResampleSampleIn};
use super::{dtype_or_err, slice, slice_mut};
use crate::dtype::{DType, Element, Times, TimesMut};
use crate::error::{guard, Error, Result};
use crate::ops::resample::{self as rs, ResampleArgs, Window, OP as RESAMPLE};
use crate::ops::resample_gpu::{self as rsg, GpuSample};
use half::{bf16, f16};

/// A configured `robocache.resample` operator instance.
pub struct ResampleOp {
    args: ResampleArgs,
}

pub(super) fn resample_new(cfg: &ResampleConfig) -> Result<Box<ResampleOp>> {
    guard(RESAMPLE, || {
        let args = ResampleArgs::parse(
            &cfg.method,
            &cfg.extrapolate,
            &cfg.dtype,
            cfg.has_target_rate.then_some(cfg.target_rate),
            cfg.has_num_samples.then_some(cfg.num_samples),
            cfg.has_target_timestamps,
        )?;
        Ok(Box::new(ResampleOp { args }))
    })
}

/// Batch-level types after validation.
struct Types {
    data: DType,
    ts_int: bool,
}

fn check_types(op: &ResampleOp, b: &ResampleBatchIn) -> Result<Types> {
    let data = op.args.data_dtype(dtype_or_err(RESAMPLE, "data", b.data_type)?)?;
    let ts = dtype_or_err(RESAMPLE, "timestamps", b.ts_type)?;
    rs::check_times_dtype(RESAMPLE, "timestamps", ts)?;
    if op.args.target == rs::Target::Timestamps {
        let tt = dtype_or_err(RESAMPLE, "target_timestamps", b.targets_type)?;
        rs::check_times_dtype(RESAMPLE, "target_timestamps", tt)?;
        if tt != ts {
            return Err(Error::Batch {
                op: RESAMPLE,
                msg: format!("target_timestamps are {} but timestamps are {}; both must be float64 seconds or both int64 nanoseconds", tt.name(), ts.name()),
            });
        }
    }
    Ok(Types { data, ts_int: ts == DType::I64 })
}

/// # Safety
/// The sample's host timestamp pointers must be valid for their lengths.
unsafe fn times_of<'a>(s: &ResampleSampleIn, ts_int: bool) -> (Times<'a>, Option<Times<'a>>) {
    // Presence follows the input (its rank is set), not the pointer: an empty target list has a null pointer.
    let tg = (s.targets_ndim != 0).then(|| {
        if ts_int {
            Times::Nanos(slice(s.targets, s.targets_len))
        } else {
            Times::Seconds(slice(s.targets, s.targets_len))
        }
    });
    let t = if ts_int { Times::Nanos(slice(s.ts, s.ts_len)) } else { Times::Seconds(slice(s.ts, s.ts_len)) };
    (t, tg)
}

fn window_of(s: &ResampleSampleIn) -> Window {
    Window { start: s.has_start.then_some(s.start), end: s.has_end.then_some(s.end) }
}

fn check_shapes(op: &ResampleOp, i: usize, s: &ResampleSampleIn, channels: i64) -> Result<()> {
    if !(1..=2).contains(&s.data_ndim) {
        return Err(Error::sample(RESAMPLE, i, format!("data must be [T, C] or [T]; got {} dimensions", s.data_ndim)));
    }
    if s.ts_ndim != 1 {
        return Err(Error::sample(RESAMPLE, i, format!("timestamps must be 1-D [T]; got {} dimensions", s.ts_ndim)));
    }
    if op.args.target == rs::Target::Timestamps && s.targets_ndim != 1 {
        return Err(Error::sample(
            RESAMPLE,
            i,
            format!("target_timestamps must be 1-D [N]; got {} dimensions", s.targets_ndim),
        ));
    }
    if s.channels != channels {
        return Err(Error::sample(
            RESAMPLE,
            i,
            format!(
                "data has C={} channels but sample 0 has C={channels}; C must be shared within a batch",
                s.channels
            ),
        ));
    }
    if s.channels == 0 && s.rows > 0 {
        return Err(Error::sample(RESAMPLE, i, "data has 0 channels (C == 0)"));
    }
    Ok(())
}

pub(super) fn resample_setup(
    op: &ResampleOp,
    batch: &ResampleBatchIn,
    samples: &[ResampleSampleIn],
    out_lens: &mut [i64],
) -> Result<()> {
    guard(RESAMPLE, || {
        let ty = check_types(op, batch)?;
        let channels = samples.first().map_or(1, |s| s.channels);
        for (i, s) in samples.iter().enumerate() {
            check_shapes(op, i, s, channels)?;
            // SAFETY: the C++ operator passes host pointers of the CPU timestamp inputs with their lengths.
            let (t, tg) = unsafe { times_of(s, ty.ts_int) };
            out_lens[i] = rs::plan_any(&op.args, i, s.rows as usize, t, window_of(s), tg)?;
        }
        let _ = ty.data;
        Ok(())
    })
}

/// # Safety
/// Host pointers of `sample` and `out` must be valid for the planned shapes.
unsafe fn run_cpu_typed<E: Element>(
    op: &ResampleOp,
    i: usize,
    s: &ResampleSampleIn,
    out: &ResampleOut,
    ts_int: bool,
    n: usize,
) -> Result<()> {
    let c = s.channels.max(1) as usize;
    let data: &[E] = slice(s.data, s.rows * c as i64);
    let o: &mut [E] = slice_mut(out.out, n * c);
    let (t, tg) = times_of(s, ts_int);
    let ot =
        if ts_int { TimesMut::Nanos(slice_mut(out.out_ts, n)) } else { TimesMut::Seconds(slice_mut(out.out_ts, n)) };
    rs::run_any(&op.args, i, data, c, t, window_of(s), tg, o, ot)
}

pub(super) unsafe fn resample_run_cpu(
    op: &ResampleOp,
    batch: &ResampleBatchIn,
    index: usize,
    sample: &ResampleSampleIn,
    out: &ResampleOut,
) -> Result<()> {
    guard(RESAMPLE, || {
        let ty = check_types(op, batch)?;
        let (t, tg) = times_of(sample, ty.ts_int);
        let n = rs::plan_any(&op.args, index, sample.rows as usize, t, window_of(sample), tg)? as usize;
        match ty.data {
            DType::F32 => run_cpu_typed::<f32>(op, index, sample, out, ty.ts_int, n),
            DType::F64 => run_cpu_typed::<f64>(op, index, sample, out, ty.ts_int, n),
            DType::F16 => run_cpu_typed::<f16>(op, index, sample, out, ty.ts_int, n),
            DType::BF16 => run_cpu_typed::<bf16>(op, index, sample, out, ty.ts_int, n),
            other => Err(Error::UnsupportedDtype {
                op: RESAMPLE,
                what: "data",
                got: other.name().into(),
                expected: "float32, float16, float64 or bfloat16",
            }),
        }
    })
}

/// # Safety
/// The sample's host timestamp pointers must be valid for their lengths.
unsafe fn gpu_samples<'a>(
    samples: &'a [ResampleSampleIn],
    outs: &[ResampleOut],
    ts_int: bool,
    num_out: &[i64],
) -> Vec<GpuSample<'a>> {
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (times, targets) = times_of(s, ts_int);
            let o = outs.get(i);
            GpuSample {
                data: s.data as u64,
                rows: s.rows as usize,
                out: o.map_or(0, |o| o.out as u64),
                out_ts: o.map_or(0, |o| o.out_ts as u64),
                times,
                targets,
                window: window_of(s),
                num_out: num_out.get(i).copied().unwrap_or(0).max(0) as usize,
            }
        })
        .collect()
}

pub(super) fn resample_gpu_scratch_bytes(
    op: &ResampleOp,
    batch: &ResampleBatchIn,
    samples: &[ResampleSampleIn],
    out_lens: &[i64],
) -> Result<usize> {
    guard(RESAMPLE, || {
        let ty = check_types(op, batch)?;
        // SAFETY: host timestamp pointers come from DALI's CPU inputs with their lengths.
        let g = unsafe { gpu_samples(samples, &[], ty.ts_int, out_lens) };
        Ok(rsg::scratch_bytes(&g))
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn resample_run_gpu(
    op: &ResampleOp,
    batch: &ResampleBatchIn,
    samples: &[ResampleSampleIn],
    out_lens: &[i64],
    outs: &[ResampleOut],
    host_scratch: usize,
    scratch_bytes: usize,
    dev_scratch: usize,
    stream: usize,
    phase: u8,
) -> Result<()> {
    guard(RESAMPLE, || {
        let ty = check_types(op, batch)?;
        if outs.len() != samples.len() {
            return Err(Error::Batch {
                op: RESAMPLE,
                msg: format!("{} outputs for {} samples", outs.len(), samples.len()),
            });
        }
        let g = gpu_samples(samples, outs, ty.ts_int, out_lens);
        let host = slice_mut::<u8>(host_scratch, scratch_bytes);
        let channels = samples.first().map_or(1, |s| s.channels.max(1) as usize);
        let phase = match phase {
            0 => rsg::Phase::All,
            1 => rsg::Phase::Stage,
            2 => rsg::Phase::Launch,
            p => return Err(Error::arg(RESAMPLE, "phase", p, "0 (all), 1 (stage) or 2 (launch)")),
        };
        rsg::run_gpu(&op.args, ty.data, channels, &g, host, dev_scratch as u64, stream as crate::gpu::Stream, phase)
    })
}
