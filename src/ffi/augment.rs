//! Bridge entries of the augmentation operators (declared in `src/ffi.rs`): `robocache.temporal_jitter`,
//! `robocache.action_noise` and `robocache.points_augment`. Each operator object keeps its iteration
//! counter (advanced by every `*_setup`, i.e. once per batch) and what setup drew or planned for the
//! batch, which the run entries then use.

use super::bridge::{
    AugPointsConfig, AugPointsOut, AugPointsSampleIn, ElemType, JitterBatchIn, JitterConfig, JitterSampleIn,
    NoiseConfig, NoiseSampleIn, ResampleOut,
};
use super::{dtype_or_err, slice, slice_mut};
use crate::dtype::{DType, Element, Times, TimesMut};
use crate::error::{guard, Error, Result};
use crate::ops::action_noise::{self as an, NoiseArgs, NoiseSample, OP as NOISE};
use crate::ops::augment_gpu::{self as ag, NoiseGpuSample, PointsGpuSample};
use crate::ops::points_augment::{self as pa, PointsDraw, PointsRanges, Rotation, OP as POINTS};
use crate::ops::resample::{check_times_dtype, Window};
use crate::ops::resample_gpu::{self as rsg, GpuSample};
use crate::ops::temporal_jitter::{self as tj, JitterArgs, JitterRanges, PlannedTimes, OP as JITTER};
use half::{bf16, f16};

// ---------------------------------------------------------------- temporal_jitter

/// A configured `robocache.temporal_jitter` operator instance.
pub struct JitterOp {
    args: JitterArgs,
    iteration: u64,
    planned: Vec<PlannedTimes>,
}

pub(super) fn jitter_new(cfg: &JitterConfig) -> Result<Box<JitterOp>> {
    guard(JITTER, || {
        let args = JitterArgs::parse(
            &cfg.method,
            &cfg.dtype,
            cfg.has_target_rate.then_some(cfg.target_rate),
            cfg.has_num_samples.then_some(cfg.num_samples),
            cfg.warp_knots,
            cfg.seed as u64,
        )?;
        Ok(Box::new(JitterOp { args, iteration: 0, planned: Vec::new() }))
    })
}

fn jitter_types(op: &JitterOp, b: &JitterBatchIn) -> Result<(DType, bool)> {
    let data = tj::data_dtype(&op.args, dtype_or_err(JITTER, "data", b.data_type)?)?;
    let ts = dtype_or_err(JITTER, "timestamps", b.ts_type)?;
    check_times_dtype(JITTER, "timestamps", ts)?;
    Ok((data, ts == DType::I64))
}

/// # Safety
/// The host timestamp pointer must be valid for its length.
unsafe fn jitter_times<'a>(s: &JitterSampleIn, ts_int: bool) -> Times<'a> {
    if ts_int {
        Times::Nanos(slice(s.ts, s.ts_len))
    } else {
        Times::Seconds(slice(s.ts, s.ts_len))
    }
}

pub(super) fn jitter_setup(
    op: &mut JitterOp,
    batch: &JitterBatchIn,
    samples: &[JitterSampleIn],
    out_lens: &mut [i64],
) -> Result<()> {
    guard(JITTER, || {
        let (_, ts_int) = jitter_types(op, batch)?;
        let iteration = op.iteration;
        op.iteration += 1;
        let channels = samples.first().map_or(1, |s| s.channels);
        let mut planned = Vec::with_capacity(samples.len());
        for (i, s) in samples.iter().enumerate() {
            if !(1..=2).contains(&s.data_ndim) || s.ts_ndim != 1 {
                return Err(Error::sample(
                    JITTER,
                    i,
                    format!(
                        "data must be [T, C] or [T] and timestamps [T]; got {} and {} dimensions",
                        s.data_ndim, s.ts_ndim
                    ),
                ));
            }
            if s.channels != channels || s.channels == 0 {
                return Err(Error::sample(
                    JITTER,
                    i,
                    format!("data has C={} channels, sample 0 has C={channels}; C must be shared and > 0", s.channels),
                ));
            }
            let ranges = JitterRanges {
                speed: [s.speed_lo, s.speed_hi],
                offset: [s.offset_lo, s.offset_hi],
                warp_strength: s.warp_strength,
            };
            // SAFETY: DALI's CPU timestamps input, with its length.
            let t = unsafe { jitter_times(s, ts_int) };
            let (_, p) = tj::plan_any(&op.args, &ranges, iteration, i, s.rows as usize, t)?;
            out_lens[i] = p.len() as i64;
            planned.push(p);
        }
        op.planned = planned;
        Ok(())
    })
}

/// # Safety
/// Host pointers of `s` and `out` must be valid for the planned shapes.
unsafe fn jitter_cpu_typed<E: Element>(
    op: &JitterOp,
    i: usize,
    s: &JitterSampleIn,
    out: &ResampleOut,
    ts_int: bool,
) -> Result<()> {
    let p = op.planned.get(i).ok_or_else(|| Error::sample(JITTER, i, "run before setup"))?;
    let c = s.channels.max(1) as usize;
    let n = p.len();
    let data: &[E] = slice(s.data, s.rows * c as i64);
    let o: &mut [E] = slice_mut(out.out, n * c);
    let ot =
        if ts_int { TimesMut::Nanos(slice_mut(out.out_ts, n)) } else { TimesMut::Seconds(slice_mut(out.out_ts, n)) };
    tj::run_sample(&op.args, i, data, c, jitter_times(s, ts_int), p, o, ot)
}

pub(super) unsafe fn jitter_run_cpu(
    op: &JitterOp,
    batch: &JitterBatchIn,
    index: usize,
    sample: &JitterSampleIn,
    out: &ResampleOut,
) -> Result<()> {
    guard(JITTER, || {
        let (dt, ts_int) = jitter_types(op, batch)?;
        match dt {
            DType::F32 => jitter_cpu_typed::<f32>(op, index, sample, out, ts_int),
            DType::F64 => jitter_cpu_typed::<f64>(op, index, sample, out, ts_int),
            DType::F16 => jitter_cpu_typed::<f16>(op, index, sample, out, ts_int),
            DType::BF16 => jitter_cpu_typed::<bf16>(op, index, sample, out, ts_int),
            other => Err(Error::UnsupportedDtype {
                op: JITTER,
                what: "data",
                got: other.name().into(),
                expected: "float32, float16, float64 or bfloat16",
            }),
        }
    })
}

/// # Safety
/// Host timestamp pointers must be valid.
unsafe fn jitter_gpu_samples<'a>(
    op: &'a JitterOp,
    samples: &[JitterSampleIn],
    outs: &[ResampleOut],
    ts_int: bool,
) -> Result<Vec<GpuSample<'a>>> {
    if op.planned.len() != samples.len() {
        return Err(Error::Batch {
            op: JITTER,
            msg: format!("{} planned samples for {}", op.planned.len(), samples.len()),
        });
    }
    Ok(samples
        .iter()
        .zip(&op.planned)
        .enumerate()
        .map(|(i, (s, p))| {
            let o = outs.get(i);
            GpuSample {
                data: s.data as u64,
                rows: s.rows as usize,
                out: o.map_or(0, |o| o.out as u64),
                out_ts: o.map_or(0, |o| o.out_ts as u64),
                times: jitter_times(s, ts_int),
                targets: Some(p.as_times()),
                window: Window::default(),
                num_out: p.len(),
            }
        })
        .collect())
}

pub(super) fn jitter_gpu_scratch_bytes(
    op: &JitterOp,
    batch: &JitterBatchIn,
    samples: &[JitterSampleIn],
) -> Result<usize> {
    guard(JITTER, || {
        let (_, ts_int) = jitter_types(op, batch)?;
        // SAFETY: host timestamps from DALI's CPU input.
        let g = unsafe { jitter_gpu_samples(op, samples, &[], ts_int)? };
        Ok(rsg::scratch_bytes(&g))
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn jitter_run_gpu(
    op: &JitterOp,
    batch: &JitterBatchIn,
    samples: &[JitterSampleIn],
    outs: &[ResampleOut],
    host_scratch: usize,
    scratch_bytes: usize,
    dev_scratch: usize,
    stream: usize,
) -> Result<()> {
    guard(JITTER, || {
        let (dt, ts_int) = jitter_types(op, batch)?;
        if outs.len() != samples.len() {
            return Err(Error::Batch {
                op: JITTER,
                msg: format!("{} outputs for {} samples", outs.len(), samples.len()),
            });
        }
        let g = jitter_gpu_samples(op, samples, outs, ts_int)?;
        let host = slice_mut::<u8>(host_scratch, scratch_bytes);
        let c = samples.first().map_or(1, |s| s.channels.max(1) as usize);
        rsg::run_gpu(
            &op.args.resample,
            dt,
            c,
            &g,
            host,
            dev_scratch as u64,
            stream as crate::gpu::Stream,
            rsg::Phase::All,
        )
    })
}

// ---------------------------------------------------------------- action_noise

/// A configured `robocache.action_noise` operator instance.
pub struct NoiseOp {
    args: NoiseArgs,
    /// The iteration the last setup drew for.
    iteration: u64,
    next_iteration: u64,
    channels: usize,
    low: Vec<f64>,
    high: Vec<f64>,
    sigma: Vec<Vec<f64>>,
    apply: Vec<bool>,
    ou: Vec<(f64, f64)>,
}

pub(super) fn noise_new(cfg: &NoiseConfig) -> Result<Box<NoiseOp>> {
    guard(NOISE, || {
        let args = NoiseArgs::parse(
            &cfg.distribution,
            &cfg.dtype,
            cfg.has_rate.then_some(cfg.rate),
            &cfg.low,
            &cfg.high,
            cfg.seed as u64,
        )?;
        Ok(Box::new(NoiseOp {
            args,
            iteration: 0,
            next_iteration: 0,
            channels: 0,
            low: Vec::new(),
            high: Vec::new(),
            sigma: Vec::new(),
            apply: Vec::new(),
            ou: Vec::new(),
        }))
    })
}

pub(super) fn noise_setup(op: &mut NoiseOp, data_type: ElemType, samples: &[NoiseSampleIn]) -> Result<()> {
    guard(NOISE, || {
        op.args.data_dtype(dtype_or_err(NOISE, "actions", data_type)?)?;
        op.iteration = op.next_iteration;
        op.next_iteration += 1;
        let c = samples.first().map_or(1, |s| s.channels.max(0) as usize);
        let (low, high) = op.args.bounds(c)?;
        let mut sigma = Vec::with_capacity(samples.len());
        let mut apply = Vec::with_capacity(samples.len());
        let mut ou = Vec::with_capacity(samples.len());
        for (i, s) in samples.iter().enumerate() {
            if !(1..=2).contains(&s.data_ndim) {
                return Err(Error::sample(
                    NOISE,
                    i,
                    format!("actions must be [T, C] or [T]; got {} dimensions", s.data_ndim),
                ));
            }
            if s.channels as usize != c {
                return Err(Error::sample(
                    NOISE,
                    i,
                    format!(
                        "actions have C={} channels but sample 0 has C={c}; C must be shared within a batch",
                        s.channels
                    ),
                ));
            }
            // SAFETY: DALI's per-sample argument (host float32) with its length.
            let sig: &[f32] = unsafe { slice(s.sigma, s.sigma_len) };
            let ns = NoiseSample { sigma: sig, p: s.p, correlation_time: s.correlation_time };
            sigma.push(an::check_sample(i, &ns, s.rows.max(0) as usize, c)?);
            ou.push(op.args.ou(i, s.correlation_time)?);
            apply.push(an::applies(&op.args, op.iteration, i, s.p));
        }
        op.channels = c;
        op.low = low;
        op.high = high;
        op.sigma = sigma;
        op.apply = apply;
        op.ou = ou;
        Ok(())
    })
}

/// # Safety
/// `s.data` and `out` must be valid host pointers for `[rows, C]`.
unsafe fn noise_cpu_typed<E: Element>(op: &NoiseOp, i: usize, s: &NoiseSampleIn, out: usize) -> Result<()>
where
    E::Acc: PartialOrd,
{
    let (sig, apply, ou) = match (op.sigma.get(i), op.apply.get(i), op.ou.get(i)) {
        (Some(a), Some(b), Some(c)) => (a, *b, *c),
        _ => return Err(Error::sample(NOISE, i, "run before setup")),
    };
    let c = op.channels.max(1);
    let n = s.rows.max(0) as usize * c;
    let data: &[E] = slice(s.data, n as i64);
    let o: &mut [E] = slice_mut(out, n);
    an::run_sample(&op.args, op.iteration, i, apply, ou, sig, &op.low, &op.high, data, c, o);
    Ok(())
}

pub(super) unsafe fn noise_run_cpu(
    op: &NoiseOp,
    data_type: ElemType,
    index: usize,
    sample: &NoiseSampleIn,
    out: usize,
) -> Result<()> {
    guard(NOISE, || match op.args.data_dtype(dtype_or_err(NOISE, "actions", data_type)?)? {
        DType::F32 => noise_cpu_typed::<f32>(op, index, sample, out),
        DType::F64 => noise_cpu_typed::<f64>(op, index, sample, out),
        DType::F16 => noise_cpu_typed::<f16>(op, index, sample, out),
        DType::BF16 => noise_cpu_typed::<bf16>(op, index, sample, out),
        other => Err(Error::UnsupportedDtype {
            op: NOISE,
            what: "actions",
            got: other.name().into(),
            expected: "float32, float16, float64 or bfloat16",
        }),
    })
}

pub(super) fn noise_gpu_scratch_bytes(op: &NoiseOp, samples: &[NoiseSampleIn]) -> Result<usize> {
    guard(NOISE, || Ok(ag::noise_scratch_bytes(samples.len(), op.channels)))
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn noise_run_gpu(
    op: &NoiseOp,
    data_type: ElemType,
    samples: &[NoiseSampleIn],
    outs: &[usize],
    host_scratch: usize,
    scratch_bytes: usize,
    dev_scratch: usize,
    stream: usize,
) -> Result<()> {
    guard(NOISE, || {
        let dt = op.args.data_dtype(dtype_or_err(NOISE, "actions", data_type)?)?;
        if outs.len() != samples.len() || op.sigma.len() != samples.len() {
            return Err(Error::Batch {
                op: NOISE,
                msg: format!("{} outputs, {} planned, {} samples", outs.len(), op.sigma.len(), samples.len()),
            });
        }
        let g: Vec<NoiseGpuSample> = samples
            .iter()
            .enumerate()
            .map(|(i, s)| NoiseGpuSample {
                data: s.data as u64,
                out: outs[i] as u64,
                rows: s.rows.max(0) as usize,
                apply: op.apply[i],
                ou: op.ou[i],
                sigma: op.sigma[i].clone(),
            })
            .collect();
        let host = slice_mut::<u8>(host_scratch, scratch_bytes);
        ag::noise_run_gpu(
            &op.args,
            op.iteration,
            dt,
            op.channels,
            &g,
            &op.low,
            &op.high,
            host,
            dev_scratch as u64,
            stream as crate::gpu::Stream,
        )
    })
}

// ---------------------------------------------------------------- points_augment

/// A configured `robocache.points_augment` operator instance.
pub struct AugPointsOp {
    rotation: Rotation,
    seed: u64,
    iteration: u64,
    next_iteration: u64,
    draws: Vec<PointsDraw>,
}

pub(super) fn points_augment_new(cfg: &AugPointsConfig) -> Result<Box<AugPointsOp>> {
    guard(POINTS, || {
        Ok(Box::new(AugPointsOp {
            rotation: Rotation::parse(&cfg.rotation)?,
            seed: cfg.seed as u64,
            iteration: 0,
            next_iteration: 0,
            draws: Vec::new(),
        }))
    })
}

fn ranges_of(s: &AugPointsSampleIn) -> PointsRanges {
    PointsRanges {
        angle: [s.angle_lo, s.angle_hi],
        scale: [s.scale_lo, s.scale_hi],
        translation: [s.tx, s.ty, s.tz],
        jitter: s.jitter,
        jitter_clip: s.jitter_clip,
        dropout: s.dropout,
    }
}

pub(super) fn points_augment_setup(
    op: &mut AugPointsOp,
    data_type: ElemType,
    samples: &[AugPointsSampleIn],
) -> Result<()> {
    guard(POINTS, || {
        let t = dtype_or_err(POINTS, "points", data_type)?;
        if t != DType::F32 {
            return Err(Error::UnsupportedDtype {
                op: POINTS,
                what: "points",
                got: t.name().into(),
                expected: "float32",
            });
        }
        op.iteration = op.next_iteration;
        op.next_iteration += 1;
        let dims = samples.first().map_or(3, |s| s.dims);
        let mut draws = Vec::with_capacity(samples.len());
        for (i, s) in samples.iter().enumerate() {
            let r = ranges_of(s);
            pa::check_sample(i, &r, s.ndim, s.n, s.dims)?;
            if s.dims != dims {
                return Err(Error::sample(
                    POINTS,
                    i,
                    format!("points have {} columns but sample 0 has {dims}; the column count must be shared", s.dims),
                ));
            }
            draws.push(pa::draw(op.seed, op.rotation, &r, op.iteration, i));
        }
        op.draws = draws;
        Ok(())
    })
}

pub(super) unsafe fn points_augment_run_cpu(
    op: &AugPointsOp,
    index: usize,
    sample: &AugPointsSampleIn,
    out: &AugPointsOut,
) -> Result<()> {
    guard(POINTS, || {
        let d = op.draws.get(index).ok_or_else(|| Error::sample(POINTS, index, "run before setup"))?;
        let (n, dims) = (sample.n.max(0) as usize, sample.dims.max(0) as usize);
        let pts: &[f32] = slice(sample.data, (n * dims) as i64);
        let o: &mut [f32] = slice_mut(out.out, n * dims);
        let m: &mut [u8] = slice_mut(out.mask, n);
        let tf: &mut [f32] = slice_mut(out.transform, 16);
        if tf.len() != 16 || (n > 0 && (o.len() != n * dims || m.len() != n)) {
            return Err(Error::sample(POINTS, index, "missing output buffers"));
        }
        tf.copy_from_slice(&pa::transform(d));
        pa::run_sample(op.seed, op.iteration, index, d, pts, dims, o, m);
        Ok(())
    })
}

pub(super) fn points_augment_gpu_scratch_bytes(_op: &AugPointsOp, samples: &[AugPointsSampleIn]) -> Result<usize> {
    guard(POINTS, || {
        let sizes: Vec<(usize,)> = samples.iter().map(|s| (s.n.max(0) as usize,)).collect();
        Ok(ag::points_scratch_bytes(&sizes))
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn points_augment_run_gpu(
    op: &AugPointsOp,
    samples: &[AugPointsSampleIn],
    outs: &[AugPointsOut],
    host_scratch: usize,
    scratch_bytes: usize,
    dev_scratch: usize,
    stream: usize,
) -> Result<()> {
    guard(POINTS, || {
        if outs.len() != samples.len() || op.draws.len() != samples.len() {
            return Err(Error::Batch {
                op: POINTS,
                msg: format!("{} outputs, {} planned, {} samples", outs.len(), op.draws.len(), samples.len()),
            });
        }
        let g: Vec<PointsGpuSample> = samples
            .iter()
            .zip(outs)
            .zip(&op.draws)
            .map(|((s, o), d)| PointsGpuSample {
                input: s.data as u64,
                out: o.out as u64,
                transform: o.transform as u64,
                mask: o.mask as u64,
                n: s.n.max(0) as usize,
                draw: *d,
            })
            .collect();
        let dims = samples.first().map_or(3, |s| s.dims.max(3) as usize);
        let host = slice_mut::<u8>(host_scratch, scratch_bytes);
        ag::points_run_gpu(op.seed, op.iteration, dims, &g, host, dev_scratch as u64, stream as crate::gpu::Stream)
    })
}
