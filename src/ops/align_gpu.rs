//! GPU backend of `robocache.align`: one launch of `kernels/align.cu` per ragged batch, for all
//! streams and samples. The host builds one descriptor per sample (its streams' device data
//! pointers, its clock's ends) and packs descriptors, a tile-to-sample map, a channel map and every
//! timestamp array (streams and reference) into one pinned buffer, which goes to the device in a
//! single asynchronous copy on the caller's stream, followed by the launch. No host synchronisation:
//! missing (NaN) rows are found by the kernel, which reads the data on the device.

use std::ffi::c_void;

use crate::dtype::{DType, Times};
use crate::error::{Error, Result};
use crate::gpu::{self, align16, kernels, Stream};
use crate::ops::align::{nanos_of, plan_sample, seconds_of, AlignArgs, AlignTime, Clock, Layout, MAX_STREAMS, OP};
use crate::ops::resample::{Grid, Plan};

/// Most threads per block (the kernel's `__launch_bounds__`).
const MAX_THREADS: usize = 256;
/// Most dynamic shared memory per block: under the 48 KB a launch gets without an opt-in, less the
/// kernel's static shared memory (window and segment tables, under 1 KB).
const SMEM_CAP: usize = 46 * 1024;
/// Fewest reference steps per block.
const MIN_TILE: usize = 8;
/// Rows of margin each side of a block's windows: `MARGIN + (rows >> MARGIN_SHIFT)` (the
/// interpolation guesses' error on jittered clocks, plus short NaN runs).
const MARGIN: usize = 4;
const MARGIN_SHIFT: usize = 8;
/// Streams with more rows per reference step than this keep their rows in global memory (a block
/// reads only the few rows each step needs instead of copying all to shared memory). 0: every stream
/// (only timestamp windows are copied): fastest at the benchmark shape on an H200 (60.1 us against
/// 81.8-98.4 us with row windows; benchmarks/results/gpu_align_h200_notes.md).
/// `ROBOCACHE_ALIGN_SPARSE` sets it per launch.
const SPARSE: usize = 0;

/// Mirror of `RcAlignSample` in `kernels/common.cuh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AlignSampleDesc {
    out: u64,
    valid: u64,
    out_ts: u64,
    targets: u64,
    num_out: i64,
    tile_begin: i64,
    a_f: f64,
    b_f: f64,
    a_i: i64,
    b_i: i64,
    data: [u64; MAX_STREAMS],
    ts: [u64; MAX_STREAMS],
    len: [i64; MAX_STREAMS],
    first: [u64; MAX_STREAMS],
    last: [u64; MAX_STREAMS],
    block0: [i32; MAX_STREAMS],
}
const _: () = assert!(std::mem::size_of::<AlignSampleDesc>() == 432);

/// Mirror of `RcAlignStream`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AlignStreamDesc {
    channels: i64,
    offset: i64,
    max_gap: f64,
    method: i32,
    pad: i32,
}
const _: () = assert!(std::mem::size_of::<AlignStreamDesc>() == 32);

/// Mirror of `RcAlignParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AlignParams {
    rate: f64,
    count: i64,
    chan_map: u64,
    num_streams: i32,
    total_channels: i32,
    tile: i32,
    grid: i32,
    ts_int: i32,
    fill: i32,
    wxyz: i32,
    num_quats: i32,
    smem: i32,
    sparse: i32,
    margin: i32,
    margin_shift: i32,
    streams: [AlignStreamDesc; MAX_STREAMS],
    rec: u64,
    design: i32,
    pad: i32,
}
const _: () = assert!(std::mem::size_of::<AlignParams>() == 344);

/// The kernel's form (`RcAlignParams::design`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Design {
    /// `kernels/align.cu`: per block, shared-memory windows of timestamps (and rows), one thread per
    /// (stream, step) item, a staged output tile.
    Tiled = 0,
    /// `kernels/align_flat.cu`: one thread per item straight from global memory, no shared memory,
    /// no barrier; each item writes its part of the fused row.
    Flat = 1,
    /// As [`Design::Flat`], the fused rows staged in shared memory (one barrier), 16-byte stores.
    Staged = 2,
    /// Two launches: the flat items leave (i0, i1, w) records in device scratch, then a gather
    /// kernel writes the fused rows with contiguous stores.
    Gather = 3,
    /// As [`Design::Gather`] in one launch: the records in shared memory, one barrier, then the
    /// block writes its rows.
    Rows = 4,
    /// As [`Design::Staged`], and each item's NaN test leaves the two rows it loads (16-byte loads)
    /// in the item's `REG_SLOT`-byte shared-memory slot for the write (wider rows as staged).
    Regs = 5,
    /// `kernels/align_sweep.cu` (computed clocks only): a block copies [`SWEEP_ROWS`] rows of one
    /// stream and their timestamps once (coalesced 16-byte loads, into shared memory), then one
    /// thread per step whose row is among them (binary search in shared memory); staged stores.
    Sweep = 6,
}

/// The default form: the fastest measured at the benchmark shape (staged at [`FLAT_TILE`]: 49.9 us
/// against the tiled form's 61.6 us in one process on an H200, benchmarks/results/gpu_align_h200_notes.md;
/// 54.1-54.7 us against the sweep form's 70.9 us at its best on an H100,
/// benchmarks/results/gpu_align_h100_v8_*). `ROBOCACHE_ALIGN_DESIGN` (`tiled`, `flat`, `staged`,
/// `gather`, `rows`, `regs`, `sweep`) picks a form per launch (for tuning and for measuring the forms in
/// one process; `sweep` only where the clock is computed).
const DESIGN: Design = Design::Staged;

/// The sweep form's rows per block (`ROBOCACHE_ALIGN_TILE` overrides, from [`SWEEP_MIN_ROWS`]): its
/// fastest on an H100 (70.9 us against 85.3 at 512 and 127.3 at 256).
const SWEEP_ROWS: usize = 1024;
/// Fewest rows per block of the sweep form (the block map's capacity counts on it).
const SWEEP_MIN_ROWS: usize = 32;

/// The form `ROBOCACHE_ALIGN_DESIGN` asks for, if any.
fn forced_design() -> Option<Design> {
    match std::env::var("ROBOCACHE_ALIGN_DESIGN").as_deref() {
        Ok("tiled") => Some(Design::Tiled),
        Ok("flat") => Some(Design::Flat),
        Ok("staged") => Some(Design::Staged),
        Ok("gather") => Some(Design::Gather),
        Ok("rows") => Some(Design::Rows),
        Ok("regs") => Some(Design::Regs),
        Ok("sweep") => Some(Design::Sweep),
        _ => None,
    }
}

/// The form a launch of this batch uses: the forced one (the sweep only for computed clocks), else
/// [`DESIGN`].
pub fn design_for(args: &AlignArgs) -> Design {
    match forced_design() {
        Some(Design::Sweep) if args.clock == Clock::Timestamps => DESIGN,
        Some(d) => d,
        None => DESIGN,
    }
}

/// One sample of a GPU batch: device pointers for data and outputs, host slices for timestamps.
#[derive(Clone, Debug)]
pub struct GpuSample<'a> {
    /// Device pointers to each stream's `[rows, C_s]` data.
    pub data: Vec<u64>,
    /// Rows per stream.
    pub rows: Vec<usize>,
    /// Host timestamps per stream.
    pub times: Vec<Times<'a>>,
    /// Host reference timestamps (the explicit clock form).
    pub reference: Option<Times<'a>>,
    /// Device pointer to the `[n, sum C]` output.
    pub out: u64,
    /// Device pointer to the `[n, N]` uint8 valid flags.
    pub valid: u64,
    /// Device pointer to the `[n]` output timestamps.
    pub out_ts: u64,
    /// The planned number of steps (from the setup step).
    pub num_out: usize,
}

/// A launch's shape: reference steps per block, threads per block, dynamic shared memory per block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    tile: usize,
    threads: usize,
    smem: usize,
    sparse: usize,
    margin: usize,
    margin_shift: usize,
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse::<usize>().ok())
}

/// The launch shape: the largest tile (steps per block, a power of two from 256 down to [`MIN_TILE`])
/// whose (stream, step) items fit `MAX_THREADS` threads and whose estimated shared memory (output tile,
/// every stream's timestamp window, every dense stream's row window, at the batch's highest rows per
/// step) fits [`SMEM_CAP`]; shared memory sized to that estimate plus an eighth. A block whose
/// windows need more (denser than the estimate) reads the rows it misses from global memory.
/// `ROBOCACHE_ALIGN_TILE`, `ROBOCACHE_ALIGN_THREADS` (most threads), `ROBOCACHE_ALIGN_BLOCK` (threads), `ROBOCACHE_ALIGN_SMEM`,
/// `ROBOCACHE_ALIGN_SPARSE`, `ROBOCACHE_ALIGN_MARGIN` and `ROBOCACHE_ALIGN_MARGIN_SHIFT` override (for tuning).
fn shape_for(samples: &[GpuSample<'_>], layout: &Layout, es: usize) -> Shape {
    let ns = layout.channels.len().max(1);
    let mut rps = vec![0.0f64; ns];
    let mut most = vec![0usize; ns];
    for s in samples.iter().filter(|s| s.num_out > 0) {
        for q in 0..ns.min(s.rows.len()) {
            rps[q] = rps[q].max(s.rows[q] as f64 / s.num_out as f64);
            most[q] = most[q].max(s.rows[q]);
        }
    }
    let sparse = env_usize("ROBOCACHE_ALIGN_SPARSE").unwrap_or(SPARSE).min(1 << 20);
    let margin = env_usize("ROBOCACHE_ALIGN_MARGIN").unwrap_or(MARGIN).min(1 << 20);
    let margin_shift = env_usize("ROBOCACHE_ALIGN_MARGIN_SHIFT").unwrap_or(MARGIN_SHIFT).min(31);
    let estimate = |k: usize| -> usize {
        let mut b = align16(k * layout.total * es) + 16;
        for q in 0..ns {
            let m = margin + (most[q] >> margin_shift);
            let rows = ((k as f64 * rps[q]).ceil() as usize + 2 * m + 3).min(most[q]);
            b += align16(rows * 8) + 16;
            if rows <= sparse * k {
                b += align16(rows * layout.channels[q] * es) + 16;
            }
        }
        b
    };
    let most_threads = env_usize("ROBOCACHE_ALIGN_THREADS").unwrap_or(MAX_THREADS).clamp(32, MAX_THREADS);
    let tile = env_usize("ROBOCACHE_ALIGN_TILE").map(|k| k.clamp(1, 2048 / ns)).unwrap_or_else(|| {
        let mut k = 256;
        while k > MIN_TILE && (k * ns > most_threads || estimate(k) > SMEM_CAP) {
            k /= 2;
        }
        k
    });
    // One thread per (stream, step) item, in whole warps; `ROBOCACHE_ALIGN_BLOCK` sets fewer (each
    // thread then takes several items).
    let threads =
        env_usize("ROBOCACHE_ALIGN_BLOCK").unwrap_or(tile * ns).min(tile * ns).div_ceil(32).clamp(1, MAX_THREADS / 32)
            * 32;
    let smem = env_usize("ROBOCACHE_ALIGN_SMEM")
        .unwrap_or_else(|| align16(estimate(tile) + estimate(tile) / 8))
        .clamp(256, SMEM_CAP)
        & !15;
    // The split tuning variants keep every item's (i0, i1, w) in shared memory (16 bytes each).
    let split = std::env::var("ROBOCACHE_ALIGN_VARIANT").is_ok_and(|v| v.contains("split"));
    let smem = if split { smem.max(16 * tile * ns + 256) } else { smem };
    Shape { tile, threads, smem, sparse, margin, margin_shift }
}

/// Most reference steps per block of the flat forms: at the benchmark shape on an H200, 32 was as fast
/// as 64 or faster for every form (staged 49.9 against 50.2 us, flat 61.9 / 62.6, gather 83.6 / 87.4),
/// and the full run (80 checks) ran at 32.
const FLAT_TILE: usize = 32;
/// [`Design::Regs`]: shared-memory bytes per thread for an item's two rows (`RC_AL_SLOT` in
/// kernels/align_core.cu).
const REG_SLOT: usize = 80;

/// The launch shape of the flat forms: the largest tile (a power of two up to [`FLAT_TILE`]) whose items
/// fit `MAX_THREADS` threads (for [`Design::Staged`], whose output tile also fits [`SMEM_CAP`], down to
/// [`MIN_TILE`]; a tile that does not fit goes straight to global memory); shared memory for the staged
/// tile or the [`Design::Rows`] records only. `ROBOCACHE_ALIGN_TILE`, `ROBOCACHE_ALIGN_THREADS` and
/// `ROBOCACHE_ALIGN_BLOCK` override.
fn flat_shape(layout: &Layout, es: usize, design: Design) -> Shape {
    let ns = layout.channels.len().max(1);
    let stage = |k: usize| align16(k * layout.total * es) + 32;
    let most_threads = env_usize("ROBOCACHE_ALIGN_THREADS").unwrap_or(MAX_THREADS).clamp(32, MAX_THREADS);
    let tile = env_usize("ROBOCACHE_ALIGN_TILE").map(|k| k.clamp(1, 2048 / ns)).unwrap_or_else(|| {
        let mut k = FLAT_TILE;
        while k > 1 && k * ns > most_threads {
            k /= 2;
        }
        let slots = |k: usize| if design == Design::Regs { REG_SLOT * (k * ns).div_ceil(32) * 32 } else { 0 };
        while matches!(design, Design::Staged | Design::Regs) && k > MIN_TILE && stage(k) + slots(k) > SMEM_CAP {
            k /= 2;
        }
        k
    });
    let threads =
        env_usize("ROBOCACHE_ALIGN_BLOCK").unwrap_or(tile * ns).min(tile * ns).div_ceil(32).clamp(1, MAX_THREADS / 32)
            * 32;
    let smem = match design {
        Design::Regs if stage(tile) + REG_SLOT * threads <= SMEM_CAP => stage(tile) + REG_SLOT * threads,
        Design::Regs => REG_SLOT * threads,
        Design::Staged if stage(tile) <= SMEM_CAP => stage(tile),
        Design::Rows => 16 * tile * ns,
        _ => 0,
    };
    Shape { tile, threads, smem, sparse: 0, margin: 0, margin_shift: 0 }
}

/// The sweep form's launch shape: `tile` rows per block ([`SWEEP_ROWS`]; `ROBOCACHE_ALIGN_TILE`, a
/// power of two; halved while the rows of the widest stream do not fit [`SMEM_CAP`]), up to 256
/// threads (`ROBOCACHE_ALIGN_BLOCK`), shared memory for the rows and their timestamps, plus a staging
/// area for the steps a block writes, estimated from the batch's most steps per block with a margin
/// (a block with more writes to global memory). None when even [`SWEEP_MIN_ROWS`] rows do not fit.
fn sweep_shape(samples: &[GpuSample<'_>], layout: &Layout, es: usize) -> Option<Shape> {
    let widest = layout.channels.iter().copied().max().unwrap_or(1);
    let fixed = |rows: usize| 16 + align16(8 * (rows + 1) + 30) + align16((rows + 1) * widest * es + 30);
    let mut rows =
        env_usize("ROBOCACHE_ALIGN_TILE").unwrap_or(SWEEP_ROWS).clamp(SWEEP_MIN_ROWS, 4096).next_power_of_two();
    while rows > SWEEP_MIN_ROWS && fixed(rows) + 2048 > SMEM_CAP {
        rows /= 2;
    }
    if fixed(rows) > SMEM_CAP {
        return None;
    }
    let threads = env_usize("ROBOCACHE_ALIGN_BLOCK").unwrap_or(rows).clamp(32, MAX_THREADS).div_ceil(32) * 32;
    // Steps per block: a block of `rows` rows of a stream with r rows covers about rows / r of its T steps.
    let mut most = 0.0f64;
    for s in samples.iter().filter(|s| s.num_out > 0) {
        for &r in &s.rows {
            most = most.max(s.num_out as f64 * rows.min(r.max(1)) as f64 / r.max(1) as f64);
        }
    }
    let steps = (most * 1.25).ceil() as usize + 16;
    let stage = align16(steps * widest * es) + steps;
    let smem = env_usize("ROBOCACHE_ALIGN_SMEM").unwrap_or(fixed(rows) + stage).clamp(fixed(rows), SMEM_CAP) & !15;
    Some(Shape { tile: rows, threads, smem, sparse: 0, margin: 0, margin_shift: 0 })
}

/// Entries of the channel map with its quaternion group list (at most one group per 4 channels) and
/// its per-channel (channel in its stream, the stream's channels) list.
const fn cmap_entries(total_channels: usize) -> usize {
    2 * total_channels + total_channels / 4
}

/// An upper bound of the blocks a batch launches (the smallest tile is one step; the sweep form's
/// smallest block [`SWEEP_MIN_ROWS`] rows of one stream).
fn max_tiles(samples: &[GpuSample<'_>]) -> usize {
    let steps: usize = samples.iter().map(|s| s.num_out).sum();
    let chunks: usize = samples.iter().flat_map(|s| s.rows.iter()).map(|r| r.div_ceil(SWEEP_MIN_ROWS)).sum();
    steps.max(chunks)
}

/// Bytes of the [`Design::Gather`] records: 16 per (step, stream) item of every block (a block covers
/// at most 2048 items, so tiles' ragged ends add at most 2048 per sample).
fn record_bytes(samples: &[GpuSample<'_>]) -> usize {
    samples.iter().map(|s| 16 * (s.num_out * s.rows.len() + 2048)).sum()
}

/// Bytes of pinned host and of device scratch [`run_gpu`] needs for this batch: (host, device). Both
/// hold the packed descriptors and timestamps; with [`Design::Gather`] the device scratch also holds
/// the records after them.
pub fn scratch_bytes(samples: &[GpuSample<'_>], total_channels: usize) -> (usize, usize) {
    let n = packed_bytes(samples, total_channels);
    (n, if forced_design() == Some(Design::Gather) { n + record_bytes(samples) } else { n })
}

/// Bytes of the packed descriptors, maps and timestamps (an upper bound).
fn packed_bytes(samples: &[GpuSample<'_>], total_channels: usize) -> usize {
    let mut n = align16(samples.len() * std::mem::size_of::<AlignSampleDesc>());
    n += align16(max_tiles(samples) * 4);
    n += align16(cmap_entries(total_channels) * 8);
    for s in samples {
        n += s.times.iter().map(|t| align16(t.len() * 8)).sum::<usize>();
        n += align16(s.reference.map_or(0, |t| t.len()) * 8);
    }
    n
}

/// Re-plans one sample (no timestamp re-scan) and records its clock's ends in the descriptor.
fn plan_for(args: &AlignArgs, i: usize, s: &GpuSample<'_>, d: &mut AlignSampleDesc) -> Result<i64> {
    fn ends<T: AlignTime>(p: &Plan<T>) -> Option<(T, T)> {
        match p.grid {
            Grid::Rate { a, b, .. } | Grid::Count { a, b, .. } => Some((a, b)),
            Grid::Explicit => None,
        }
    }
    let explicit = args.clock == Clock::Timestamps;
    match s.times.first() {
        Some(Times::Seconds(_)) => {
            let st = seconds_of(i, &s.rows, &s.times)?;
            let rf = match s.reference {
                Some(Times::Seconds(x)) => Some(x),
                _ if explicit => {
                    return Err(Error::sample(OP, i, "reference timestamps must be float64 like the streams'"))
                }
                _ => None,
            };
            let p = plan_sample(args, i, &st, rf, false)?;
            if let Some((a, b)) = ends(&p) {
                d.a_f = a;
                d.b_f = b;
            }
            Ok(p.n)
        }
        Some(Times::Nanos(_)) => {
            let st = nanos_of(i, &s.rows, &s.times)?;
            let rf = match s.reference {
                Some(Times::Nanos(x)) => Some(x),
                _ if explicit => {
                    return Err(Error::sample(OP, i, "reference timestamps must be int64 like the streams'"))
                }
                _ => None,
            };
            let p = plan_sample(args, i, &st, rf, false)?;
            if let Some((a, b)) = ends(&p) {
                d.a_i = a;
                d.b_i = b;
            }
            Ok(p.n)
        }
        None => Err(Error::sample(OP, i, "no streams")),
    }
}

/// The quaternion groups as the kernel lists them after the channel map: (stream, first fused channel).
fn quat_groups(layout: &Layout) -> Vec<[i32; 2]> {
    let mut g = Vec::new();
    for (s, qs) in layout.quats.iter().enumerate() {
        for &f in qs {
            g.push([s as i32, (layout.offsets[s] + f) as i32]);
        }
    }
    g
}

/// What [`run_gpu`] does: the whole operator, or one of its halves (benchmarks time the launch
/// alone, with the staged descriptors and timestamps already on the device).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Pack and copy descriptors and timestamps, then launch.
    All,
    /// Pack and copy only.
    Stage,
    /// Launch only (after a [`Phase::Stage`] of the same batch into the same scratch).
    Launch,
    /// No GPU: pack into `host` with `dev` equal to `host`'s own address (so every pointer the
    /// kernel reads is host memory) and, instead of launching, call the [`Emulator`] whose address
    /// travels in `stream`. The Python tests use it to run `kernels/align.cu` compiled for the CPU
    /// (one thread per block; the kernel's block loops make that exact) on the operator's own
    /// descriptors, so the kernel source and the packing are checked on machines without a GPU.
    Emulate,
}

/// A CPU build of the kernel (see [`Phase::Emulate`]): `(samples, tile_sample, params, blocks)`.
pub type Emulator = unsafe extern "C" fn(u64, u64, *const AlignParams, u32);

/// Aligns a whole ragged batch on the GPU with one kernel launch on `stream`.
///
/// Samples must have been validated by the caller's setup step (timestamps strictly increasing,
/// lengths matching, the layout's channel counts); this re-plans clocks (cheap) but does not
/// re-scan timestamps.
///
/// # Safety
/// Device pointers in `samples` must be valid for the shapes planned; `host` must be pinned memory
/// of at least [`scratch_bytes`]' host bytes that stays valid until the copy ran on `stream`; `dev`
/// must be device memory of `dev_bytes`, at least its device bytes, valid until the kernel ran. With
/// [`Phase::Emulate`], every pointer is host memory (`host` holds the device bytes) and `stream` is an
/// [`Emulator`]'s address.
#[allow(clippy::too_many_arguments)]
pub unsafe fn run_gpu(
    args: &AlignArgs,
    layout: &Layout,
    dtype: DType,
    samples: &[GpuSample<'_>],
    host: &mut [u8],
    dev: u64,
    dev_bytes: usize,
    stream: Stream,
    phase: Phase,
) -> Result<()> {
    if samples.is_empty() {
        return Ok(());
    }
    let ns = args.streams;
    let (need, dev_need) = scratch_bytes(samples, layout.total);
    // Emulation: the host buffer is the device scratch too.
    let need = if phase == Phase::Emulate { dev_need } else { need };
    if host.len() < need || dev_bytes < dev_need {
        return Err(Error::Batch {
            op: OP,
            msg: format!(
                "scratch of {} host and {dev_bytes} device bytes given, {need} and {dev_need} needed",
                host.len()
            ),
        });
    }
    if layout.total == 0 || layout.total > i32::MAX as usize {
        return Err(Error::Batch { op: OP, msg: format!("{} fused channels; expected 1 to 2^31 - 1", layout.total) });
    }
    let ts_int = matches!(samples[0].times.first(), Some(Times::Nanos(_)));
    let mut design = design_for(args);
    let sweep = if design == Design::Sweep { sweep_shape(samples, layout, dtype.size()) } else { None };
    if design == Design::Sweep && sweep.is_none() {
        design = DESIGN;
    }
    let shape = match (design, sweep) {
        (Design::Tiled, _) => shape_for(samples, layout, dtype.size()),
        (Design::Sweep, Some(sh)) => sh,
        (d, _) => flat_shape(layout, dtype.size(), d),
    };
    let tile = shape.tile;

    let desc_bytes = align16(samples.len() * std::mem::size_of::<AlignSampleDesc>());
    let map_off = desc_bytes;
    let map_cap = max_tiles(samples);
    let cmap_off = map_off + align16(map_cap * 4);
    let mut off = cmap_off + align16(cmap_entries(layout.total) * 8);
    let mut descs = vec![AlignSampleDesc::default(); samples.len()];
    let mut tile_sample: Vec<i32> = Vec::new();
    let mut tiles: i64 = 0;
    for (i, (s, d)) in samples.iter().zip(descs.iter_mut()).enumerate() {
        if s.times.len() != ns || s.data.len() != ns || s.rows.len() != ns {
            return Err(Error::sample(OP, i, format!("{} streams given, {ns} expected", s.times.len())));
        }
        if matches!(s.times[0], Times::Nanos(_)) != ts_int {
            return Err(Error::sample(
                OP,
                i,
                "timestamps dtype differs from sample 0's; one batch must use one timestamp dtype",
            ));
        }
        for (q, t) in s.times.iter().enumerate() {
            if s.rows[q] > i32::MAX as usize {
                return Err(Error::sample(OP, i, format!("stream {q}: {} rows, more than 2^31 - 1", s.rows[q])));
            }
            let tb = t.as_bytes();
            if phase != Phase::Launch {
                host[off..off + tb.len()].copy_from_slice(tb);
            }
            d.ts[q] = dev + off as u64;
            d.data[q] = s.data[q];
            d.len[q] = s.rows[q] as i64;
            if tb.len() >= 8 {
                d.first[q] = u64::from_ne_bytes(tb[..8].try_into().unwrap_or_default());
                d.last[q] = u64::from_ne_bytes(tb[tb.len() - 8..].try_into().unwrap_or_default());
            }
            off += align16(tb.len());
        }
        let n = plan_for(args, i, s, d)?;
        if let Some(rf) = s.reference.filter(|_| args.clock == Clock::Timestamps) {
            let b = rf.as_bytes();
            if phase != Phase::Launch {
                host[off..off + b.len()].copy_from_slice(b);
            }
            d.targets = dev + off as u64;
            off += align16(b.len());
        }
        if n as usize != s.num_out {
            return Err(Error::sample(OP, i, format!("planned {} steps at setup but {n} now", s.num_out)));
        }
        d.out = s.out;
        d.valid = s.valid;
        d.out_ts = s.out_ts;
        d.num_out = n;
        d.tile_begin = tiles;
        if design == Design::Sweep {
            // The sample's streams' chunks of `tile` rows, stream after stream (none without steps);
            // a block's map entry is sample * 8 + stream, its chunk blockIdx - block0[stream].
            for (q, &r) in s.rows.iter().enumerate() {
                let c = if n > 0 { r.div_ceil(tile) as i64 } else { 0 };
                if tiles + c > i32::MAX as i64 || i > (i32::MAX as usize >> 3) {
                    return Err(Error::Batch {
                        op: OP,
                        msg: "batch needs more than 2^31 - 1 blocks (or samples / 8); split the batch".to_string(),
                    });
                }
                d.block0[q] = tiles as i32;
                if phase != Phase::Launch {
                    tile_sample.extend(std::iter::repeat_n((i * 8 + q) as i32, c as usize));
                }
                tiles += c;
            }
        } else {
            let t = (n + tile as i64 - 1) / tile as i64;
            if phase != Phase::Launch {
                tile_sample.extend(std::iter::repeat_n(i as i32, t as usize));
            }
            tiles += t;
        }
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
        let mut cm = layout.chan_map();
        cm.extend(quat_groups(layout));
        for &c in &layout.channels {
            cm.extend((0..c).map(|j| [j as i32, c as i32]));
        }
        // SAFETY: as above, [i32; 2] values (the kernel's int2).
        let cb = std::slice::from_raw_parts(cm.as_ptr() as *const u8, cm.len() * 8);
        host[cmap_off..cmap_off + cb.len()].copy_from_slice(cb);
    }

    let (grid, rate, count) = match args.clock {
        Clock::Rate(r) => (0, r, 0),
        Clock::Count(n) => (1, 0.0, n),
        Clock::Timestamps => (2, 0.0, 0),
    };
    let mut params = AlignParams {
        rate,
        count,
        chan_map: dev + cmap_off as u64,
        num_streams: ns as i32,
        total_channels: layout.total as i32,
        tile: tile as i32,
        grid,
        ts_int: ts_int as i32,
        fill: args.fill as i32,
        wxyz: args.wxyz as i32,
        num_quats: quat_groups(layout).len() as i32,
        smem: shape.smem as i32,
        sparse: shape.sparse as i32,
        margin: shape.margin as i32,
        margin_shift: shape.margin_shift as i32,
        streams: [AlignStreamDesc::default(); MAX_STREAMS],
        rec: 0,
        design: design as i32,
        pad: 0,
    };
    if design == Design::Gather {
        // The records follow the packed bytes (16-byte aligned); scratch_bytes counted them.
        if off + tiles as usize * 16 * tile * ns > dev_need {
            return Err(Error::Batch { op: OP, msg: "internal: records outgrow the scratch".into() });
        }
        params.rec = dev + off as u64;
    }
    for q in 0..ns {
        let g = args.max_gap[q];
        params.streams[q] = AlignStreamDesc {
            channels: layout.channels[q] as i64,
            offset: layout.offsets[q] as i64,
            max_gap: if ts_int { i64::native(g) } else { f64::native(g) },
            method: args.methods[q] as i32,
            pad: 0,
        };
    }
    if phase == Phase::Emulate {
        if dev != host.as_ptr() as u64 || stream.is_null() {
            return Err(Error::Batch { op: OP, msg: "emulation needs dev == host and an emulator".into() });
        }
        if tiles > 0 {
            // SAFETY: the caller passes the address of an `Emulator` in `stream` (Phase::Emulate's contract).
            let emulate: Emulator = std::mem::transmute::<Stream, Emulator>(stream);
            emulate(dev, dev + map_off as u64, &params, tiles as u32);
        }
        return Ok(());
    }
    // `ROBOCACHE_ALIGN_VARIANT`: a register-capped float32 entry point (tiled: r64, r48, r40, r32,
    // split_*, in builds with `-DRC_ALIGN_VARIANTS=1` in `ROBOCACHE_NVRTC_OPTIONS`; flat forms: free,
    // r48, r40, r32, with `-DRC_ALIGN_VARIANTS=2`; 3 for both), for tuning.
    let variant = std::env::var("ROBOCACHE_ALIGN_VARIANT").ok().filter(|v| !v.is_empty() && dtype == DType::F32);
    let name = |form: &str| match &variant {
        Some(v) => format!("align_{form}{}_{v}", dtype.suffix()),
        None => format!("align_{form}{}", dtype.suffix()),
    };
    let (first, second) = match design {
        Design::Tiled => (name(""), None),
        Design::Flat => (name("flat_"), None),
        // The entry point of the batch's timestamp kind (`ROBOCACHE_ALIGN_TSSPLIT=0`: the one with
        // both, as measured before, for comparisons).
        Design::Staged if variant.is_none() && env_usize("ROBOCACHE_ALIGN_TSSPLIT") != Some(0) => {
            (name(if ts_int { "staged_i_" } else { "staged_d_" }), None)
        }
        Design::Staged => (name("staged_"), None),
        Design::Gather => (name("locate_"), Some(name("gather_"))),
        Design::Rows => (name("rows_"), None),
        Design::Regs => (name("regs_"), None),
        Design::Sweep => (name("sweep_"), None),
    };
    let f = gpu::function(&kernels::ALIGN, &first)?;
    let g = second.map(|n| gpu::function(&kernels::ALIGN, &n)).transpose()?;
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
        &mut params as *mut AlignParams as *mut c_void,
    ];
    let (grid, block) = ((tiles as u32, 1, 1), (shape.threads as u32, 1, 1));
    gpu::launch_smem(f, grid, block, shape.smem as u32, stream, &mut p)?;
    match g {
        Some(g) => gpu::launch_smem(g, grid, block, 0, stream, &mut p),
        None => Ok(()),
    }
}
