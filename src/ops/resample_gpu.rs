//! GPU backend of `robocache.resample`: one launch of `kernels/resample.cu` per ragged batch.
//! The host builds one descriptor per sample and packs descriptors, timestamps and explicit targets
//! into one pinned buffer, which goes to the device in a single asynchronous copy on the caller's
//! stream, followed by the launch. No host synchronisation.

use std::ffi::c_void;

use crate::dtype::{DType, Times};
use crate::error::{Error, Result};
use crate::gpu::{self, align16, kernels, Stream};
use crate::ops::resample::{plan_sample, Grid, Plan, ResampleArgs, Target, TimeVal, Window, OP};

/// Targets per thread in phase 2 (`RC_ROWS` in the kernel).
const ROWS_PER_THREAD: u32 = 4;
/// Threads per block.
const BLOCK_THREADS: u32 = 256;

/// Mirror of `RcResampleSample` in `kernels/common.cuh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ResampleSampleDesc {
    data: u64,
    out: u64,
    out_ts: u64,
    ts: u64,
    targets: u64,
    len: i64,
    num_out: i64,
    tile_begin: i64,
    a_f: f64,
    b_f: f64,
    a_i: i64,
    b_i: i64,
}
const _: () = assert!(std::mem::size_of::<ResampleSampleDesc>() == 96);

/// Mirror of `RcResampleParams` in `kernels/common.cuh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ResampleParams {
    rate: f64,
    count: i64,
    num_samples: i32,
    vec_per_row: i32,
    tile: i32,
    method: i32,
    extrapolate: i32,
    grid: i32,
    ts_int: i32,
    pad: i32,
}
const _: () = assert!(std::mem::size_of::<ResampleParams>() == 48);

/// One sample of a GPU batch: device pointers for data and outputs, host slices for timestamps.
#[derive(Clone, Copy, Debug)]
pub struct GpuSample<'a> {
    /// Device pointer to `[rows, C]` data.
    pub data: u64,
    /// Number of data rows (T).
    pub rows: usize,
    /// Device pointer to the `[N, C]` output.
    pub out: u64,
    /// Device pointer to the `[N]` output timestamps.
    pub out_ts: u64,
    /// Host timestamps.
    pub times: Times<'a>,
    /// Host explicit targets, for the `target_timestamps` form.
    pub targets: Option<Times<'a>>,
    /// Per-sample window.
    pub window: Window,
    /// The planned number of targets (from the setup step).
    pub num_out: usize,
}

/// An upper bound of the blocks a batch launches (the smallest tile is `ROWS_PER_THREAD` targets),
/// from the number of targets each sample will have: the planned length, bounded without timestamps
/// by the explicit targets or by what `scratch_bytes`'s caller planned.
fn max_tiles(samples: &[GpuSample<'_>]) -> usize {
    samples.iter().map(|s| s.num_out.div_ceil(ROWS_PER_THREAD as usize)).sum()
}

/// Output bytes one block writes per tile, by default (`ROBOCACHE_RESAMPLE_TILE_BYTES` overrides it,
/// for tuning): small enough for several waves of blocks, so that one block's search phase overlaps
/// others' streaming phase.
const TILE_BYTES: usize = 8192;

/// Block shape `(bx, by)`: `bx` threads across a row's vectors, `by` rows of targets, each thread
/// doing `ROWS_PER_THREAD` targets; at most `BLOCK_THREADS` threads.
fn block_shape(vpr: u32, row_bytes: usize) -> (u32, u32) {
    let tile_bytes =
        std::env::var("ROBOCACHE_RESAMPLE_TILE_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(TILE_BYTES);
    let bx = vpr.min(BLOCK_THREADS);
    let rows = (tile_bytes / row_bytes.max(1)).max(1) as u32;
    let by = rows.div_ceil(ROWS_PER_THREAD).clamp(1, (BLOCK_THREADS / bx).max(1));
    (bx, by)
}

/// Bytes of pinned host and device scratch [`run_gpu`] needs for this batch.
/// (Includes a tile-to-sample map sized by [`max_tiles`].)
pub fn scratch_bytes(samples: &[GpuSample<'_>]) -> usize {
    let mut n = align16(samples.len() * std::mem::size_of::<ResampleSampleDesc>());
    n += align16(max_tiles(samples) * 4);
    for s in samples {
        n += align16(s.times.len() * 8);
        n += align16(s.targets.map_or(0, |t| t.len()) * 8);
    }
    n
}

fn plan_for(args: &ResampleArgs, i: usize, s: &GpuSample<'_>, d: &mut ResampleSampleDesc) -> Result<i64> {
    fn fill<T: TimeVal>(p: &Plan<T>, a: &mut T, b: &mut T) {
        match p.grid {
            Grid::Rate { a: x, b: y, .. } | Grid::Count { a: x, b: y, .. } => {
                *a = x;
                *b = y;
            }
            Grid::Explicit => {}
        }
    }
    let explicit = args.target == Target::Timestamps;
    match (s.times, s.targets) {
        (Times::Seconds(t), tg) => {
            let tg = match tg {
                Some(Times::Seconds(x)) => Some(x),
                _ if explicit => {
                    return Err(Error::sample(OP, i, "target_timestamps must be float64 like the timestamps"))
                }
                _ => None,
            };
            let p = plan_sample(args, i, s.rows, t, s.window, tg, |_| Ok(()))?;
            fill(&p, &mut d.a_f, &mut d.b_f);
            Ok(p.n)
        }
        (Times::Nanos(t), tg) => {
            let tg = match tg {
                Some(Times::Nanos(x)) => Some(x),
                _ if explicit => {
                    return Err(Error::sample(OP, i, "target_timestamps must be int64 like the timestamps"))
                }
                _ => None,
            };
            let p = plan_sample(args, i, s.rows, t, s.window, tg, |_| Ok(()))?;
            fill(&p, &mut d.a_i, &mut d.b_i);
            Ok(p.n)
        }
    }
}

/// What [`run_gpu`] does: the whole operator, or one of its two halves (benchmarks time the launch
/// alone, with the staged descriptors and timestamps already on the device).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Pack and copy descriptors and timestamps, then launch.
    All,
    /// Pack and copy only.
    Stage,
    /// Launch only (after a [`Phase::Stage`] of the same batch into the same scratch).
    Launch,
}

/// Resamples a whole ragged batch on the GPU with one kernel launch on `stream`.
///
/// Samples must have been validated (timestamps strictly increasing) by the caller's setup step;
/// this re-plans grids (cheap) but does not re-scan timestamps.
///
/// # Safety
/// Device pointers in `samples` must be valid for the shapes planned; `host` must be pinned memory
/// of at least [`scratch_bytes`] bytes that stays valid until the copy ran on `stream`; `dev` must
/// be device memory of the same size, valid until the kernel ran.
#[allow(clippy::too_many_arguments)]
pub unsafe fn run_gpu(
    args: &ResampleArgs,
    dtype: DType,
    channels: usize,
    samples: &[GpuSample<'_>],
    host: &mut [u8],
    dev: u64,
    stream: Stream,
    phase: Phase,
) -> Result<()> {
    if samples.is_empty() {
        return Ok(());
    }
    let need = scratch_bytes(samples);
    if host.len() < need {
        return Err(Error::Batch { op: OP, msg: format!("scratch of {} bytes given, {need} needed", host.len()) });
    }
    if channels == 0 {
        return Err(Error::sample(OP, 0, "data has 0 channels (C == 0)"));
    }
    let esize = dtype.size();
    let row_bytes = channels * esize;
    let ts_int = matches!(samples[0].times, Times::Nanos(_));

    // Vector width: the widest that divides the row and every sample's data and output pointer.
    let mut vb = 16usize;
    while vb > esize
        && (row_bytes % vb != 0 || samples.iter().any(|s| s.data % vb as u64 != 0 || s.out % vb as u64 != 0))
    {
        vb /= 2;
    }
    let vpr = (row_bytes / vb) as u32;
    let (bx, by) = block_shape(vpr, row_bytes);
    let tile = by * ROWS_PER_THREAD;

    let desc_bytes = align16(samples.len() * std::mem::size_of::<ResampleSampleDesc>());
    let map_off = desc_bytes;
    let map_cap = max_tiles(samples);
    let mut descs = vec![ResampleSampleDesc::default(); samples.len()];
    let mut tile_sample: Vec<i32> = Vec::new();
    let mut off = desc_bytes + align16(map_cap * 4);
    let mut tiles: i64 = 0;
    for (i, (s, d)) in samples.iter().zip(descs.iter_mut()).enumerate() {
        if matches!(s.times, Times::Nanos(_)) != ts_int {
            return Err(Error::sample(
                OP,
                i,
                "timestamps dtype differs from sample 0's; one batch must use one timestamp dtype",
            ));
        }
        if s.rows > i32::MAX as usize {
            return Err(Error::sample(OP, i, format!("{} rows, more than 2^31 - 1", s.rows)));
        }
        let n = plan_for(args, i, s, d)?;
        let tb = s.times.as_bytes();
        if phase != Phase::Launch {
            host[off..off + tb.len()].copy_from_slice(tb);
        }
        d.ts = dev + off as u64;
        off += align16(tb.len());
        if let Some(tg) = s.targets.filter(|_| args.target == Target::Timestamps) {
            let b = tg.as_bytes();
            if phase != Phase::Launch {
                host[off..off + b.len()].copy_from_slice(b);
            }
            d.targets = dev + off as u64;
            off += align16(b.len());
        }
        d.data = s.data;
        d.out = s.out;
        d.out_ts = s.out_ts;
        d.len = s.rows as i64;
        d.num_out = n;
        if n as usize != s.num_out {
            return Err(Error::sample(OP, i, format!("planned {} targets at setup but {n} now", s.num_out)));
        }
        d.tile_begin = tiles;
        let t = (n + tile as i64 - 1) / tile as i64;
        if phase != Phase::Launch {
            tile_sample.extend(std::iter::repeat_n(i as i32, t as usize));
        }
        tiles += t;
    }
    if tiles == 0 && phase != Phase::Stage {
        return Ok(());
    }
    if tiles > i32::MAX as i64 {
        return Err(Error::Batch {
            op: OP,
            msg: format!("batch needs {tiles} blocks, more than 2^31 - 1; split the batch"),
        });
    }
    if tiles as usize > map_cap {
        return Err(Error::Batch { op: OP, msg: format!("internal: {tiles} blocks for a map of {map_cap}") });
    }
    if phase != Phase::Launch {
        // SAFETY: descriptors are plain #[repr(C)] data.
        let db = std::slice::from_raw_parts(descs.as_ptr() as *const u8, std::mem::size_of_val(descs.as_slice()));
        host[..db.len()].copy_from_slice(db);
        // SAFETY: as above, i32 values.
        let mb = std::slice::from_raw_parts(tile_sample.as_ptr() as *const u8, tile_sample.len() * 4);
        host[map_off..map_off + mb.len()].copy_from_slice(mb);
    }

    let (grid, rate, count) = match args.target {
        Target::Rate(r) => (0, r, 0),
        Target::Count(n) => (1, 0.0, n),
        Target::Timestamps => (2, 0.0, 0),
    };
    let mut params = ResampleParams {
        rate,
        count,
        num_samples: samples.len() as i32,
        vec_per_row: vpr as i32,
        tile: tile as i32,
        method: args.method as i32,
        extrapolate: args.extrapolate as i32,
        grid,
        ts_int: ts_int as i32,
        pad: 0,
    };
    let name = format!("resample_v{vb}_{}", dtype.suffix());
    let f = gpu::function(&kernels::RESAMPLE, &name)?;
    if phase != Phase::Launch {
        gpu::copy_to_device(dev, &host[..off], stream)?;
    }
    if phase == Phase::Stage || tiles == 0 {
        return Ok(());
    }
    let mut dev_descs = dev;
    let mut dev_map = dev + map_off as u64;
    let mut p: [*mut c_void; 3] = [
        &mut dev_descs as *mut u64 as *mut c_void,
        &mut dev_map as *mut u64 as *mut c_void,
        &mut params as *mut ResampleParams as *mut c_void,
    ];
    gpu::launch(f, (tiles as u32, 1, 1), (bx, by, 1), stream, &mut p)
}
