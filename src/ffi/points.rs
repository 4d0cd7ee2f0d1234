//! Bridge entries of the point-cloud operators `robocache.voxel_downsample`, `robocache.voxelize`
//! and `robocache.normalize` (declared in `src/ffi.rs`).
//!
//! Shapes travel as `[sample][output][4]` i64 (unused dimensions 0); outputs as `[sample][4]`
//! pointers. The CPU backend computes each sample at setup (the result sizes depend on the data)
//! and keeps it until the run step copies it into DALI's outputs.

use std::sync::Mutex;

use super::bridge::{ElemType, PointsConfig, PointsOutDesc, PointsSampleIn};
use super::slice;
use crate::error::{guard, Error, Result};
use crate::ops::points::{self as pts, OutBuf, OutType, PointsArgs, RawArgs};
use crate::ops::points_gpu::{self as ptg, GpuPoints};

/// Outputs per sample in the shapes and pointer tables.
const MAXO: usize = 4;
/// Dimensions per output in the shapes table.
const MAXD: usize = 4;

/// A configured point-cloud operator instance.
pub struct PointsOp {
    args: PointsArgs,
    /// CPU results between setup and run, per sample.
    results: Mutex<Vec<Option<Vec<OutBuf>>>>,
    /// The GPU backend's radix-pass launches learned from earlier batches.
    hint: ptg::PassHint,
}

pub(super) fn points_new(cfg: &PointsConfig) -> Result<Box<PointsOp>> {
    guard("robocache.points", || {
        let raw = RawArgs {
            kind: &cfg.kind,
            voxel_size: &cfg.voxel_size,
            origin: &cfg.origin,
            anchor: &cfg.anchor,
            range: &cfg.range,
            mode: &cfg.mode,
            min_points: cfg.min_points,
            max_points: cfg.max_points,
            max_voxels: cfg.max_voxels,
            return_counts: cfg.return_counts,
        };
        Ok(Box::new(PointsOp {
            args: PointsArgs::parse(&raw)?,
            results: Mutex::new(Vec::new()),
            hint: Default::default(),
        }))
    })
}

pub(super) fn points_outputs(op: &PointsOp) -> Vec<PointsOutDesc> {
    op.args
        .outputs()
        .iter()
        .map(|d| PointsOutDesc {
            ty: match d.ty {
                OutType::F32 => ElemType::Float32,
                OutType::I32 => ElemType::Int32,
                OutType::U8 => ElemType::UInt8,
            },
            ndim: d.ndim as i32,
        })
        .collect()
}

/// # Safety
/// `s.voxel` must point to `s.voxel_len` floats when non-zero.
unsafe fn voxel_of(op: &PointsOp, i: usize, s: &PointsSampleIn) -> Result<[f64; 3]> {
    let per: Option<&[f32]> = (s.voxel != 0).then(|| slice(s.voxel, s.voxel_len));
    op.args.voxel_of(i, per)
}

fn put_shapes(shapes: &mut [i64], i: usize, sh: &[Vec<i64>]) -> Result<()> {
    let base = i * MAXO * MAXD;
    if shapes.len() < base + MAXO * MAXD || sh.len() > MAXO {
        return Err(Error::Batch {
            op: "robocache.points",
            msg: format!("shape table of {} entries too small", shapes.len()),
        });
    }
    for (k, s) in sh.iter().enumerate() {
        for d in 0..MAXD {
            shapes[base + k * MAXD + d] = s.get(d).copied().unwrap_or(0);
        }
    }
    Ok(())
}

/// # Safety
/// Per-sample voxel pointers must be valid.
unsafe fn check_sample(op: &PointsOp, i: usize, s: &PointsSampleIn) -> Result<(usize, [f64; 3])> {
    let c = op.args.check_shape(i, s.ndim, s.cols)?;
    let v = voxel_of(op, i, s)?;
    Ok((c, v))
}

pub(super) unsafe fn points_setup(
    op: &PointsOp,
    data_type: ElemType,
    samples: &[PointsSampleIn],
    shapes: &mut [i64],
) -> Result<bool> {
    guard(op.args.op(), || {
        if data_type != ElemType::Float32 {
            return Err(Error::UnsupportedDtype {
                op: op.args.op(),
                what: "points",
                got: format!("{data_type:?}"),
                expected: "float32",
            });
        }
        let mut known = true;
        let cols = samples.first().map_or(3, |s| s.cols);
        for (i, s) in samples.iter().enumerate() {
            let (c, v) = check_sample(op, i, s)?;
            if s.cols != cols {
                return Err(Error::sample(
                    op.args.op(),
                    i,
                    format!("points have {} columns but sample 0 has {cols}; C must be shared within a batch", s.cols),
                ));
            }
            match op.args.planned_shapes(i, s.rows.max(0) as usize, c, v)? {
                Some(sh) => put_shapes(shapes, i, &sh)?,
                None => known = false,
            }
        }
        let mut r = op.results.lock().unwrap_or_else(|p| p.into_inner());
        r.clear();
        r.resize(samples.len(), None);
        Ok(known)
    })
}

pub(super) unsafe fn points_cpu_compute(
    op: &PointsOp,
    index: usize,
    sample: &PointsSampleIn,
    shapes: &mut [i64],
) -> Result<()> {
    guard(op.args.op(), || {
        let (c, v) = check_sample(op, index, sample)?;
        let data: &[f32] = slice(sample.data, sample.rows * sample.cols);
        let out = pts::run_cpu(&op.args, index, data, c, v)?;
        let sh: Vec<Vec<i64>> = out.iter().map(|o| o.shape().to_vec()).collect();
        put_shapes(shapes, 0, &sh)?;
        let mut r = op.results.lock().unwrap_or_else(|p| p.into_inner());
        if index >= r.len() {
            r.resize(index + 1, None);
        }
        r[index] = Some(out);
        Ok(())
    })
}

pub(super) unsafe fn points_cpu_write(op: &PointsOp, index: usize, outs: &[usize]) -> Result<()> {
    guard(op.args.op(), || {
        let res = op.results.lock().unwrap_or_else(|p| p.into_inner()).get_mut(index).and_then(Option::take);
        let Some(res) = res else {
            return Err(Error::sample(op.args.op(), index, "internal: no result computed at setup"));
        };
        for (k, o) in res.iter().enumerate() {
            let b = o.bytes();
            let dst = outs.get(k).copied().unwrap_or(0);
            if b.is_empty() {
                continue;
            }
            if dst == 0 {
                return Err(Error::sample(op.args.op(), index, format!("internal: output {k} has no buffer")));
            }
            // SAFETY: DALI allocated output k with the shape and type reported at setup.
            std::ptr::copy_nonoverlapping(b.as_ptr(), dst as *mut u8, b.len());
        }
        Ok(())
    })
}

/// # Safety
/// Per-sample voxel pointers must be valid.
unsafe fn gpu_samples(op: &PointsOp, samples: &[PointsSampleIn]) -> Result<(usize, Vec<GpuPoints>)> {
    let mut g = Vec::with_capacity(samples.len());
    let cols = samples.first().map_or(3, |s| s.cols.max(3) as usize);
    for (i, s) in samples.iter().enumerate() {
        let (_, v) = check_sample(op, i, s)?;
        g.push(GpuPoints { points: s.data as u64, rows: s.rows.max(0) as usize, voxel: v });
    }
    Ok((cols, g))
}

pub(super) unsafe fn points_gpu_scratch(op: &PointsOp, samples: &[PointsSampleIn], sizes: &mut [usize]) -> Result<()> {
    guard(op.args.op(), || {
        let (cols, g) = gpu_samples(op, samples)?;
        let (h, d) = ptg::scratch_bytes(&op.args, cols, &g)?;
        if sizes.len() >= 2 {
            sizes[0] = h;
            sizes[1] = d;
        }
        Ok(())
    })
}

fn out_table(outs: &[usize], n: usize) -> Vec<[u64; 4]> {
    (0..n).map(|i| [0, 1, 2, 3].map(|k| outs.get(i * MAXO + k).copied().unwrap_or(0) as u64)).collect()
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn points_gpu_run(
    op: &PointsOp,
    samples: &[PointsSampleIn],
    outs: &[usize],
    host: usize,
    host_bytes: usize,
    dev: usize,
    stream: usize,
    emulator: usize,
    shapes: &mut [i64],
) -> Result<bool> {
    guard(op.args.op(), || {
        let (cols, g) = gpu_samples(op, samples)?;
        let table = if op.args.data_dependent() { Vec::new() } else { out_table(outs, samples.len()) };
        let h = super::slice_mut::<u8>(host, host_bytes);
        let counts = ptg::run_gpu(&op.args, cols, &g, &table, h, dev as u64, exec(stream, emulator), &op.hint)?;
        let Some(counts) = counts else { return Ok(false) };
        let sparse = op.args.kind == pts::Kind::Voxelize;
        for (i, m) in counts.iter().enumerate() {
            let c = cols as i64;
            let sh = if sparse {
                vec![vec![*m, 3], vec![*m, c], vec![*m]]
            } else if op.args.return_counts {
                vec![vec![*m, c], vec![*m]]
            } else {
                vec![vec![*m, c]]
            };
            put_shapes(shapes, i, &sh)?;
        }
        Ok(true)
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn points_gpu_finish(
    op: &PointsOp,
    samples: &[PointsSampleIn],
    outs: &[usize],
    host: usize,
    host_bytes: usize,
    dev: usize,
    stream: usize,
    emulator: usize,
) -> Result<()> {
    guard(op.args.op(), || {
        let (cols, g) = gpu_samples(op, samples)?;
        let h = super::slice_mut::<u8>(host, host_bytes);
        ptg::finish_gpu(&op.args, cols, &g, &out_table(outs, samples.len()), h, dev as u64, exec(stream, emulator))
    })
}

/// The radix-pass launches `op` learned (0: none; raw callers carry it from one instance to the next).
pub(super) fn points_pass_hint(op: &PointsOp) -> u32 {
    op.hint.get()
}

/// Sets what [`points_pass_hint`] returns.
pub(super) fn points_set_pass_hint(op: &PointsOp, v: u32) {
    op.hint.set(v)
}

/// The device stream, or (tests, `emulator` != 0) a CPU build of the kernels at that address.
unsafe fn exec(stream: usize, emulator: usize) -> ptg::Exec {
    if emulator == 0 {
        ptg::Exec::Device(stream as crate::gpu::Stream)
    } else {
        // SAFETY: the caller passes the address of a `ptg::Emulator` (raw_points.cc, tests only).
        ptg::Exec::Emulate(std::mem::transmute::<usize, ptg::Emulator>(emulator))
    }
}
