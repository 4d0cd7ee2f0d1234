//! GPU backend of the point-cloud operators: a few launches of `kernels/points.cu` (and
//! `points_sort.cu`) per ragged batch. voxel_downsample and sparse voxelize sort per-sample voxel
//! keys with a radix sort (one launch per 8-bit pass for the whole batch), then take voxels as runs
//! of equal keys (see the kernel file's header). [`Exec::Emulate`] runs the same host code on a CPU
//! build of the kernels (tests).
//! The host packs one descriptor per sample (and the output pointers when they are known) into one
//! pinned buffer, sent with one asynchronous copy. When output sizes depend on the data
//! (`voxel_downsample`, `voxelize(mode="sparse")` without `max_points`), [`run_gpu`] copies the
//! per-sample info (voxel counts, errors) to the host once and synchronises the stream once; the
//! caller then allocates the outputs and calls [`finish_gpu`]. Nothing else synchronises.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{Error, Result};
use crate::gpu::{self, align16, kernels, Stream};
use crate::ops::points::{Anchor, Kind, NormMode, PointsArgs, VoxMode};

/// Threads per block (`RCP_THREADS`).
const THREADS: u32 = 256;
/// Rows per tile of the sort and scan kernels (`RCP_TILE`).
const TILE: usize = 2048;
/// Most 8-bit radix passes (`RCP_PASSES`): 63-bit keys.
const PASSES: usize = 8;
/// `RCP_LO_INIT` / `RCP_HI_INIT`: order bits of +inf / -inf (empty bounds).
const LO_INIT: u32 = 0xff80_0000;
const HI_INIT: u32 = 0x007f_ffff;
/// Passes voxel_downsample launches (keys up to 40 bits at full speed).
const FAST_PASSES: usize = 5;
/// Radix-pass launches voxel_downsample learned from the earlier batches of one operator instance.
///
/// The host cannot know how many 8-bit passes a batch's keys need (that depends on the clouds'
/// extents, known after points_hist, on the device) without a second synchronisation, so it
/// launches [`FAST_PASSES`] and the passes a sample does not need exit at once (~1.8 us each). After
/// each data-dependent batch (whose one device-to-host copy brings every sample's pass count back),
/// the instance keeps the most launches any batch so far needed (a sample sorted locally needs one:
/// pass 0, then points_local); later batches launch that many. A sample that needs more than were
/// launched does its remaining passes in the last launch, one block per sample (slower, but the
/// same result), and raises the count for the batches after it. 0: nothing learned (the no-sync path
/// never learns).
#[derive(Debug, Default)]
pub struct PassHint(AtomicU32);

impl PassHint {
    /// Launches for the next batch.
    pub fn launches(&self) -> usize {
        match self.0.load(Ordering::Relaxed) {
            0 => FAST_PASSES,
            n => (n as usize).min(FAST_PASSES),
        }
    }
    /// The learned count (0: none), e.g. to carry it across raw calls.
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
    /// Sets the learned count (0 forgets it; at most [`FAST_PASSES`] are launched).
    pub fn set(&self, v: u32) {
        self.0.store(v, Ordering::Relaxed)
    }
    fn learn(&self, need: usize) {
        self.0.fetch_max(need.clamp(1, FAST_PASSES) as u32, Ordering::Relaxed);
    }
}

/// Ticket counters per sample (`RCP_CTRS`).
const CTRS: usize = 10;

/// Variant bits. Bits below 64 reach the kernels (`RCP_F_*` in `kernels/points.cu`): points_runs
/// scans and looks back with warp 0 (32 tiles per step) instead of thread 0; counts as distances
/// between voxel starts (min_points 1, no max_voxels: no run-length search, no count array); no
/// points_init launch for voxel_downsample (the host sends the per-sample info, points_bounds
/// zeroes the rest); a radix pass's waiting look-back sleeps between reads. The others pick kernels:
/// points_passw / passw4 / passw2 (look-back over 16 / 4 / 2 tiles per step), points_runs48 (<= 48
/// registers), points_hist4 / points_bounds4 (4 rows per thread and step, loads first),
/// points_finalize_ldg (row reads through the read-only path), points_finalize2 / points_finalize4
/// (read-only path, 2 / 4 voxels per thread with their loads in flight together).
const F_LOOKW: u32 = 1;
const F_DIST: u32 = 2;
/// Narrow keys of 9 to 24 bits, from LOCAL_MIN rows, whose top-8-bit buckets (the last pass's
/// histogram) all hold at most 8192 rows (the pass-0 and points_local blocks decide per sample, from
/// points_hist's counts): pass 0 sorts by those top 8 bits, then points_local sorts each bucket in
/// shared memory, in place of passes 1 and up.
const F_LOCAL: u32 = 4;
/// Rows from which a sample may take F_LOCAL on the device (smaller ones: the LSD passes are as fast
/// and points_local's blocks would be mostly empty); the emulator takes it from 0 rows.
const LOCAL_MIN: i32 = 262_144;
/// Threads of points_local (`RCP_LTHREADS`).
const LOCAL_THREADS: u32 = 512;
const F_NOINIT: u32 = 8;
/// Tests: tiles after the first publish only their aggregates, so that every look-back walks back to
/// the sample's first tile (the emulator runs blocks in order: otherwise the previous tile is always
/// a prefix).
const F_AGGONLY: u32 = 16;
const F_SLEEP: u32 = 32;
const F_PASSW: u32 = 64;
const F_RUNS48: u32 = 128;
const F_HIST4: u32 = 256;
const F_LDG: u32 = 512;
const F_FIN2: u32 = 1024;
const F_FIN4: u32 = 2048;
const F_PASSW4: u32 = 4096;
const F_PASSW2: u32 = 8192;
const F_BOUNDS4: u32 = 16384;
const VARIANTS: [(&str, u32); 15] = [
    ("lookw", F_LOOKW),
    ("dist", F_DIST),
    ("noinit", F_NOINIT),
    ("aggonly", F_AGGONLY),
    ("sleep", F_SLEEP),
    ("passw", F_PASSW),
    ("runs48", F_RUNS48),
    ("hist4", F_HIST4),
    ("ldg", F_LDG),
    ("fin2", F_FIN2),
    ("fin4", F_FIN4),
    ("passw4", F_PASSW4),
    ("passw2", F_PASSW2),
    ("bounds4", F_BOUNDS4),
    ("local", F_LOCAL),
];
/// The variant used unless `ROBOCACHE_POINTS_VARIANT` names others.
const DEFAULT_VARIANT: u32 = F_LOOKW | F_DIST | F_NOINIT | F_PASSW2 | F_RUNS48 | F_HIST4 | F_LDG | F_LOCAL;

/// Variant bits for a batch: `ROBOCACHE_POINTS_VARIANT`, comma-separated names of [`VARIANTS`]
/// (e.g. `lookw,dist`), `default` for [`DEFAULT_VARIANT`]'s, `-name` to take one away (e.g.
/// `default,-hist4`); `none` or any unknown name adds nothing: the v5b kernels. Read at each
/// [`run_gpu`] so that one process can compare variants; unset: [`DEFAULT_VARIANT`].
fn variant() -> u32 {
    std::env::var("ROBOCACHE_POINTS_VARIANT").map_or(DEFAULT_VARIANT, |v| parse_variant(&v))
}

fn parse_variant(v: &str) -> u32 {
    let bits = |w: &str| VARIANTS.iter().find(|(n, _)| *n == w).map_or(0, |x| x.1);
    v.split(',').map(str::trim).fold(0, |acc, w| match w {
        "default" => acc | DEFAULT_VARIANT,
        _ if w.starts_with('-') => acc & !bits(&w[1..]),
        _ => acc | bits(w),
    })
}

/// Mirror of `RcPointsSample` in `kernels/common.cuh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PointsSampleDesc {
    points: u64,
    n: i64,
    row_begin: i64,
    cell_begin: i64,
    voxel: [f64; 3],
    origin: [f64; 3],
    range_hi: [f64; 3],
    dims: [i32; 3],
    anchor_min: i32,
}
const _: () = assert!(std::mem::size_of::<PointsSampleDesc>() == 120);

/// Mirror of `RcPointsInfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PointsInfo {
    origin: [f64; 3],
    cmin: [i64; 3],
    sum: [f64; 3],
    r2max: u64,
    nvalid: u64,
    lo: [u32; 3],
    hi: [u32; 3],
    shift: [i32; 3],
    count: i32,
    total: i32,
    err: i32,
    err_axis: i32,
    nsort: i32,
    npass: i32,
    wide: i32,
    local: i32,
    kbits: i32,
}
const _: () = assert!(std::mem::size_of::<PointsInfo>() == 160);

/// Mirror of `RcPointsBufs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PointsBufs {
    samples: u64,
    info: u64,
    outs: u64,
    keys0: u64,
    keys1: u64,
    rows0: u64,
    rows1: u64,
    hist: u64,
    stat0: u64,
    stat1: u64,
    ctr: u64,
    vstart: u64,
    vcount: u64,
    vcoord: u64,
    newid: u64,
    cells_cnt: u64,
    cells_sum: u64,
}
const _: () = assert!(std::mem::size_of::<PointsBufs>() == 136);

/// Mirror of `RcPointsParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PointsParams {
    num_samples: i32,
    cols: i32,
    kind: i32,
    vmode: i32,
    nmode: i32,
    min_points: i32,
    max_points: i32,
    max_voxels: i32,
    o_feat: i32,
    o_cnt: i32,
    o_coord: i32,
    o_num: i32,
    pass: i32,
    last_pass: i32,
    flags: u32,
    local_min: i32,
    total_tiles: i64,
    total_rows: i64,
}
const _: () = assert!(std::mem::size_of::<PointsParams>() == 80);

/// One sample of a GPU batch.
#[derive(Clone, Copy, Debug)]
pub struct GpuPoints {
    /// Device pointer to `[rows, C]` float32 points.
    pub points: u64,
    /// Rows.
    pub rows: usize,
    /// The sample's voxel size.
    pub voxel: [f64; 3],
}

/// Byte offsets of every buffer in the host and device scratch.
#[derive(Clone, Debug, Default)]
struct Layout {
    descs: usize,
    outs: usize,
    info: usize,
    /// Host only: the variant bits run_gpu chose, for finish_gpu.
    variant: usize,
    host_bytes: usize,
    bufs: [usize; NBUF],
    sizes: [usize; NBUF],
    dev_bytes: usize,
    rows: usize,
    max_n: usize,
    max_cells: usize,
}

/// Device buffers after the host-visible part, in `PointsBufs` order from `keys0`.
const NBUF: usize = 14;

/// Most rows of one sample: look-back status words hold 30-bit counts.
const MAX_ROWS: usize = (1 << 30) - 1;

/// Whether the operator sorts voxel keys (voxel_downsample, voxelize "sparse").
fn sorts(args: &PointsArgs) -> bool {
    args.kind == Kind::Downsample || (args.kind == Kind::Voxelize && args.vmode == VoxMode::Sparse)
}

fn layout(args: &PointsArgs, cols: usize, samples: &[GpuPoints]) -> Result<Layout> {
    let b = samples.len();
    let mut l = Layout { descs: 0, ..Default::default() };
    l.outs = align16(b * std::mem::size_of::<PointsSampleDesc>());
    l.info = l.outs + align16(b * 32);
    l.variant = l.info + align16(b * std::mem::size_of::<PointsInfo>());
    l.host_bytes = l.variant + 16;
    let sort = sorts(args);
    let mut cells = 0usize;
    for (i, s) in samples.iter().enumerate() {
        if sort && s.rows > MAX_ROWS {
            return Err(Error::sample(args.op(), i, format!("{} points, more than 2^30 - 1", s.rows)));
        }
        if s.rows > i32::MAX as usize {
            return Err(Error::sample(args.op(), i, format!("{} points, more than 2^31 - 1", s.rows)));
        }
        l.max_n = l.max_n.max(s.rows);
        l.rows += s.rows.div_ceil(TILE) * TILE;
        if args.kind == Kind::Voxelize && args.vmode != VoxMode::Sparse {
            let d = args.grid_dims(i, s.voxel)?;
            let c = (d[0] * d[1] * d[2]) as usize;
            l.max_cells = l.max_cells.max(c);
            if args.vmode == VoxMode::Mean {
                cells += c;
            }
        }
    }
    let r = if sort { l.rows } else { 0 };
    let (tiles, nb) = (r / TILE, if sort { b } else { 0 });
    let coords = args.kind == Kind::Voxelize;
    let select = args.kind == Kind::Voxelize && args.max_voxels > 0;
    l.sizes = [
        r * 8,
        r * 8,
        r * 4,
        r * 4,
        nb * PASSES * 256 * 4,
        tiles * 256 * 4,
        tiles * 256 * 4,
        nb * CTRS * 4,
        r * 4,
        r * 4,
        if coords { r * 12 } else { 0 },
        if select { r * 4 } else { 0 },
        cells * 4,
        cells * cols * 8,
    ];
    let mut off = l.host_bytes;
    for (k, n) in l.sizes.iter().enumerate() {
        l.bufs[k] = off;
        off += align16(*n);
    }
    l.dev_bytes = off;
    Ok(l)
}

/// Bytes of pinned host scratch and of device scratch [`run_gpu`] needs for this batch.
pub fn scratch_bytes(args: &PointsArgs, cols: usize, samples: &[GpuPoints]) -> Result<(usize, usize)> {
    let l = layout(args, cols, samples)?;
    Ok((l.host_bytes, l.dev_bytes))
}

fn params(args: &PointsArgs, cols: usize, b: usize, l: &Layout, variant: u32) -> PointsParams {
    let dist = sorts(args) && args.min_points <= 1 && !(args.kind == Kind::Voxelize && args.max_voxels > 0);
    let noinit = args.kind == Kind::Downsample;
    let flags = variant
        & (F_LOOKW | F_AGGONLY | F_SLEEP | F_LOCAL | if dist { F_DIST } else { 0 } | if noinit { F_NOINIT } else { 0 });
    let mut p = PointsParams {
        num_samples: b as i32,
        cols: cols as i32,
        kind: match args.kind {
            Kind::Downsample => 0,
            Kind::Voxelize => 1,
            Kind::Normalize => 2,
        },
        vmode: args.vmode as i32,
        nmode: args.nmode as i32,
        min_points: args.min_points.min(i32::MAX as u32) as i32,
        max_points: args.max_points as i32,
        max_voxels: if args.kind == Kind::Voxelize { args.max_voxels as i32 } else { 0 },
        o_feat: 0,
        o_cnt: -1,
        o_coord: -1,
        o_num: -1,
        pass: 0,
        last_pass: 0,
        flags,
        local_min: LOCAL_MIN,
        total_tiles: (l.rows / TILE) as i64,
        total_rows: l.rows as i64,
    };
    match args.kind {
        Kind::Downsample => {
            let mut k = 1;
            if args.return_counts {
                p.o_cnt = 1;
                k = 2;
            }
            if args.max_points > 0 {
                p.o_num = k;
            }
        }
        Kind::Voxelize if args.vmode == VoxMode::Sparse => {
            p.o_coord = 0;
            p.o_feat = 1;
            p.o_cnt = 2;
            if args.max_points > 0 {
                p.o_num = 3;
            }
        }
        _ => {}
    }
    p
}

fn bytes_of<T>(v: &[T]) -> &[u8] {
    // SAFETY: plain #[repr(C)] / numeric data viewed as bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

fn bufs(l: &Layout, dev: u64) -> PointsBufs {
    // A buffer of no bytes gets a null pointer (points_init skips those).
    let o = |k: usize| if l.sizes[k] == 0 { 0 } else { dev + l.bufs[k] as u64 };
    PointsBufs {
        samples: dev + l.descs as u64,
        outs: dev + l.outs as u64,
        info: dev + l.info as u64,
        keys0: o(0),
        keys1: o(1),
        rows0: o(2),
        rows1: o(3),
        hist: o(4),
        stat0: o(5),
        stat1: o(6),
        ctr: o(7),
        vstart: o(8),
        vcount: o(9),
        vcoord: o(10),
        newid: o(11),
        cells_cnt: o(12),
        cells_sum: o(13),
    }
}

/// A CPU build of the kernels (tests/emulate/points_emulator.cc): `(kernel name, grid x, grid y,
/// block, bufs, params)`; it runs the grid's blocks one after another in launch order.
pub type Emulator =
    unsafe extern "C" fn(*const std::ffi::c_char, u32, u32, u32, *const PointsBufs, *const PointsParams);

/// Where a batch runs.
#[derive(Clone, Copy, Debug)]
pub enum Exec {
    /// On the device, on this stream.
    Device(Stream),
    /// No GPU (tests): every pointer is host memory (`dev` too), copies are `memcpy`, launches call
    /// the emulator, synchronisation is a no-op. Checks the kernel sources and this host code on
    /// machines without a GPU.
    Emulate(Emulator),
}

unsafe fn to_device(exec: Exec, dev: u64, src: &[u8]) -> Result<()> {
    match exec {
        Exec::Device(s) => gpu::copy_to_device(dev, src, s),
        Exec::Emulate(_) => {
            // SAFETY: in emulation `dev` is host memory of at least src.len() bytes (the caller's contract).
            std::ptr::copy_nonoverlapping(src.as_ptr(), dev as *mut u8, src.len());
            Ok(())
        }
    }
}

unsafe fn to_host_sync(exec: Exec, dst: &mut [u8], dev: u64) -> Result<()> {
    match exec {
        Exec::Device(s) => {
            gpu::copy_to_host(dst, dev, s)?;
            gpu::synchronize(s)
        }
        Exec::Emulate(_) => {
            // SAFETY: as in to_device.
            std::ptr::copy_nonoverlapping(dev as *const u8, dst.as_mut_ptr(), dst.len());
            Ok(())
        }
    }
}

/// Launches `name` with the common `(bufs, params)` signature.
unsafe fn launch(name: &str, grid: (u32, u32), block: u32, b: &PointsBufs, p: &PointsParams, exec: Exec) -> Result<()> {
    let grid = (grid.0.max(1), grid.1.max(1));
    match exec {
        Exec::Device(stream) => {
            let f = gpu::function(&kernels::POINTS, name)?;
            let mut bb = *b;
            let mut pp = *p;
            let mut args: [*mut c_void; 2] =
                [&mut bb as *mut PointsBufs as *mut c_void, &mut pp as *mut PointsParams as *mut c_void];
            gpu::launch(f, (grid.0, grid.1, 1), (block, 1, 1), stream, &mut args)
        }
        Exec::Emulate(emulate) => {
            let c =
                std::ffi::CString::new(name).map_err(|_| Error::Batch { op: "robocache.points", msg: name.into() })?;
            emulate(c.as_ptr(), grid.0, grid.1, block, b, p);
            Ok(())
        }
    }
}

fn blocks(n: usize, per_block: usize, cap: usize) -> u32 {
    n.div_ceil(per_block).clamp(1, cap) as u32
}

/// Runs a batch on the GPU (`exec`: on a stream, or emulated). `outs[i]` holds sample i's output pointers, in output order.
///
/// Returns `None` when done (shapes were known at setup: `outs` must be given), or, for
/// data-dependent shapes (`outs` empty), the per-sample output row counts, after the one
/// device-to-host copy and stream synchronisation; then allocate the outputs and call
/// [`finish_gpu`] with the same scratch. `hint`: the instance's radix-pass launches
/// (voxel_downsample), read before the launches and raised after the copy.
///
/// # Safety
/// Device pointers must be valid for the shapes; `host` must be pinned memory of at least the host
/// bytes of [`scratch_bytes`], valid until the work queued on `stream` ran; `dev` device memory of
/// the device bytes, valid until [`finish_gpu`]'s kernels (or this call's) ran.
#[allow(clippy::too_many_arguments)]
pub unsafe fn run_gpu(
    args: &PointsArgs,
    cols: usize,
    samples: &[GpuPoints],
    outs: &[[u64; 4]],
    host: &mut [u8],
    dev: u64,
    exec: Exec,
    hint: &PassHint,
) -> Result<Option<Vec<i64>>> {
    let op = args.op();
    let nb = samples.len();
    if nb == 0 {
        return Ok(if args.data_dependent() { Some(Vec::new()) } else { None });
    }
    if nb > 65535 {
        return Err(Error::Batch { op, msg: format!("batch of {nb} samples, more than 65535") });
    }
    let dd = args.data_dependent();
    if !dd && outs.len() != nb {
        return Err(Error::Batch { op, msg: format!("{} output sets for {nb} samples", outs.len()) });
    }
    let l = layout(args, cols, samples)?;
    if host.len() < l.host_bytes {
        return Err(Error::Batch {
            op,
            msg: format!("host scratch of {} bytes given, {} needed", host.len(), l.host_bytes),
        });
    }
    let mut descs = vec![PointsSampleDesc::default(); nb];
    let (mut row, mut cell) = (0i64, 0i64);
    for (s, d) in samples.iter().zip(descs.iter_mut()) {
        d.points = s.points;
        d.n = s.rows as i64;
        d.row_begin = row;
        row += (s.rows.div_ceil(TILE) * TILE) as i64;
        d.voxel = s.voxel;
        match args.kind {
            Kind::Voxelize => {
                let g = args.grid_dims(0, s.voxel)?;
                d.dims = g.map(|x| x as i32);
                d.origin = [args.range[0], args.range[1], args.range[2]];
                d.range_hi = [args.range[3], args.range[4], args.range[5]];
                d.cell_begin = cell;
                if args.vmode == VoxMode::Mean {
                    cell += g[0] * g[1] * g[2];
                }
            }
            _ => {
                d.origin = args.origin;
                d.anchor_min = (args.anchor == Anchor::MinBound) as i32;
            }
        }
    }
    host[l.descs..l.descs + nb * std::mem::size_of::<PointsSampleDesc>()].copy_from_slice(bytes_of(&descs));
    if !dd {
        host[l.outs..l.outs + nb * 32].copy_from_slice(bytes_of(outs));
    }
    let v = variant();
    host[l.variant..l.variant + 4].copy_from_slice(&v.to_le_bytes());
    let b = bufs(&l, dev);
    let mut p = params(args, cols, nb, &l, v);
    if matches!(exec, Exec::Emulate(_)) {
        p.local_min = 0;
    }
    let noinit = p.flags & F_NOINIT != 0;
    if noinit {
        // The per-sample info in its initial state goes with the descriptors (points_init's work).
        let info = PointsInfo { lo: [LO_INIT; 3], hi: [HI_INIT; 3], npass: 1, ..Default::default() };
        host[l.info..l.info + nb * std::mem::size_of::<PointsInfo>()].copy_from_slice(bytes_of(&vec![info; nb]));
    }
    let sent = if noinit { l.info + nb * std::mem::size_of::<PointsInfo>() } else { l.info };
    to_device(exec, dev, &host[..sent])?;

    let y = nb as u32;
    let rows_gx = blocks(l.max_n, THREADS as usize * 4, 8192);
    let tiles_gx = blocks(l.max_n, TILE, 65535);
    // Few blocks, many rows each: one set of atomics per block on the sample's bounds.
    let bounds_gx = blocks(l.max_n, THREADS as usize * 8, 2048);
    if !noinit {
        let init = (l.rows / TILE * 64).max(nb * PASSES * 64).max(nb);
        launch("points_init", (blocks(init, THREADS as usize * 4, 8192), 1), THREADS, &b, &p, exec)?;
    }
    match args.kind {
        Kind::Normalize => {
            launch("points_bounds", (bounds_gx, y), THREADS, &b, &p, exec)?;
            if args.nmode == NormMode::UnitSphere {
                launch("points_radius", (rows_gx, y), THREADS, &b, &p, exec)?;
            }
            let elems = l.max_n * cols;
            launch("points_apply", (blocks(elems, THREADS as usize * 4, 8192), y), THREADS, &b, &p, exec)?;
            Ok(None)
        }
        Kind::Voxelize if args.vmode != VoxMode::Sparse => {
            let cells_gx = blocks(l.max_cells, THREADS as usize * 4, 8192);
            launch("points_dense_zero", (cells_gx, y), THREADS, &b, &p, exec)?;
            launch("points_dense_acc", (rows_gx, y), THREADS, &b, &p, exec)?;
            if args.vmode == VoxMode::Mean {
                launch("points_dense_mean", (cells_gx, y), THREADS, &b, &p, exec)?;
            }
            Ok(None)
        }
        _ => {
            if args.kind == Kind::Downsample {
                let bounds = if v & F_BOUNDS4 != 0 { "points_bounds4" } else { "points_bounds" };
                launch(bounds, (bounds_gx, y), THREADS, &b, &p, exec)?;
            }
            // At most 512 blocks per sample (about 4 per SM): enough to hide latency, few global
            // atomics (one per block and non-zero bin).
            let hist = if v & F_HIST4 != 0 { "points_hist4" } else { "points_hist" };
            launch(hist, (blocks(l.max_n, TILE, 512), y), THREADS, &b, &p, exec)?;
            // The device knows how many passes each sample needs (points_hist). voxelize knows its
            // grid: exactly the passes needed. voxel_downsample: as many launches as the instance's
            // earlier batches needed (PassHint), else 5 (keys up to 40 bits; the 5 cm KITTI scans
            // have 30-33); a sample that needs more does its remaining passes in the last launch,
            // in one block (slow, rare: 1 cm over 200 m is 41 bits).
            let passes = match args.kind {
                Kind::Voxelize => {
                    samples.iter().map(|s| args.sparse_key_bits(s.voxel)).max().unwrap_or(0).div_ceil(8).max(1) as usize
                }
                _ => hint.launches(),
            };
            let pass_kernel = if v & F_PASSW != 0 {
                "points_passw"
            } else if v & F_PASSW4 != 0 {
                "points_passw4"
            } else if v & F_PASSW2 != 0 {
                "points_passw2"
            } else {
                "points_pass"
            };
            for pass in 0..passes {
                let pp = PointsParams { pass: pass as i32, last_pass: passes as i32 - 1, ..p };
                launch(pass_kernel, (tiles_gx, y), THREADS, &b, &pp, exec)?;
                if pass == 0 && p.flags & F_LOCAL != 0 {
                    // Buckets (256 per sample) taken in turn by 256 blocks (2 per SM of an H100 / H200).
                    launch("points_local", (256, 1), LOCAL_THREADS, &b, &p, exec)?;
                }
            }
            let runs = if v & F_RUNS48 != 0 { "points_runs48" } else { "points_runs" };
            launch(runs, (tiles_gx, y), THREADS, &b, &p, exec)?;
            if p.max_voxels > 0 {
                launch("points_select", (y, 1), THREADS, &b, &p, exec)?;
            }
            if !dd {
                finalize(&l, args, &b, &p, v, exec)?;
                return Ok(None);
            }
            // The one device-to-host copy and synchronisation of the batch: voxel counts and errors.
            let info_bytes = nb * std::mem::size_of::<PointsInfo>();
            to_host_sync(exec, &mut host[l.info..l.info + info_bytes], dev + l.info as u64)?;
            let infos: Vec<PointsInfo> = (0..nb)
                .map(|i| {
                    // SAFETY: the host buffer holds `nb` PointsInfo records just copied from the
                    // device; read_unaligned copes with any alignment.
                    unsafe {
                        std::ptr::read_unaligned(
                            host[l.info + i * std::mem::size_of::<PointsInfo>()..].as_ptr() as *const PointsInfo
                        )
                    }
                })
                .collect();
            if args.kind == Kind::Downsample {
                // Launches this batch needed: a local sample's sort is pass 0 (then points_local).
                let need = infos.iter().map(|f| if f.local != 0 { 1 } else { f.npass.max(1) as usize });
                hint.learn(need.max().unwrap_or(1));
            }
            let mut counts = Vec::with_capacity(nb);
            for (i, f) in infos.iter().enumerate() {
                match f.err {
                    0 => {}
                    1 => return Err(Error::sample(op, i, format!("the grid spans more than the 2^31 cells an axis may have along axis {}; increase voxel_size or move origin", f.err_axis))),
                    _ => return Err(Error::sample(op, i, "the grid spans more than 2^63 cells (over 63 bits of voxel coordinates); increase voxel_size")),
                }
                counts.push(i64::from(f.count));
            }
            Ok(Some(counts))
        }
    }
}

unsafe fn finalize(l: &Layout, args: &PointsArgs, b: &PointsBufs, p: &PointsParams, v: u32, exec: Exec) -> Result<()> {
    let ext = l.max_n.max(args.max_points);
    let (name, per) = if v & F_FIN4 != 0 {
        ("points_finalize4", 4)
    } else if v & F_FIN2 != 0 {
        ("points_finalize2", 2)
    } else if v & F_LDG != 0 {
        ("points_finalize_ldg", 1)
    } else {
        ("points_finalize", 1)
    };
    launch(name, (blocks(ext, THREADS as usize * per, 8192), p.num_samples as u32), THREADS, b, p, exec)
}

/// Second half of a data-dependent batch: sends the output pointers (one copy) and writes means,
/// counts and coordinates.
///
/// # Safety
/// As [`run_gpu`], with the same scratch, after it returned `Some`.
pub unsafe fn finish_gpu(
    args: &PointsArgs,
    cols: usize,
    samples: &[GpuPoints],
    outs: &[[u64; 4]],
    host: &mut [u8],
    dev: u64,
    exec: Exec,
) -> Result<()> {
    let nb = samples.len();
    if nb == 0 {
        return Ok(());
    }
    if outs.len() != nb {
        return Err(Error::Batch { op: args.op(), msg: format!("{} output sets for {nb} samples", outs.len()) });
    }
    let l = layout(args, cols, samples)?;
    host[l.outs..l.outs + nb * 32].copy_from_slice(bytes_of(outs));
    to_device(exec, dev + l.outs as u64, &host[l.outs..l.outs + nb * 32])?;
    let b = bufs(&l, dev);
    // The variant run_gpu chose (kept in the host scratch): the kernels before depend on it.
    let v = u32::from_le_bytes(host[l.variant..l.variant + 4].try_into().expect("4 bytes"));
    let p = params(args, cols, nb, &l, v);
    finalize(&l, args, &b, &p, v, exec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names_add_and_take_away_bits() {
        assert_eq!(parse_variant("none"), 0);
        assert_eq!(parse_variant(""), 0);
        assert_eq!(parse_variant("lookw, dist"), F_LOOKW | F_DIST);
        assert_eq!(parse_variant("default"), DEFAULT_VARIANT);
        assert_eq!(parse_variant("default,-hist4,fin4"), (DEFAULT_VARIANT & !F_HIST4) | F_FIN4);
        assert_eq!(parse_variant("passw,nonsense"), F_PASSW);
        assert_eq!(parse_variant("default,passw4,bounds4,sleep"), DEFAULT_VARIANT | F_PASSW4 | F_BOUNDS4 | F_SLEEP);
    }
}
