//! Point-cloud operators `robocache.voxel_downsample`, `robocache.voxelize` and
//! `robocache.normalize`: arguments, validation, output planning and the CPU backend. Nothing here
//! knows about DALI; GPU launches live in `points_gpu.rs`. The user documentation is the schema
//! doc in `dali_plugin/points.cc`.
//!
//! Arithmetic shared with `kernels/points.cu` (both backends compute the same voxel set and counts):
//! - a row is valid when its x, y, z are finite (extra feature columns may hold anything);
//! - voxel coordinate along an axis: `floor((f64(p) - origin) / f64(voxel))`, all in float64;
//! - voxels come out sorted by their integer coordinates `(ix, iy, iz)`, lexicographically (x
//!   first), on both backends;
//! - means are float64 sums divided by the count, rounded to float32; both backends add a voxel's
//!   rows in the same order ([`LONG_VOXEL`]), so they agree exactly.

use crate::error::{Error, Result};

/// `robocache.voxel_downsample`.
pub const OP_DOWNSAMPLE: &str = "robocache.voxel_downsample";
/// `robocache.voxelize`.
pub const OP_VOXELIZE: &str = "robocache.voxelize";
/// `robocache.normalize`.
pub const OP_NORMALIZE: &str = "robocache.normalize";

/// 2^31: the largest number of cells along one axis, and of a dense grid.
pub const MAX_CELLS: f64 = 2147483648.0;

/// Which operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One mean point per occupied voxel.
    Downsample,
    /// Dense or sparse voxel grids over a fixed range.
    Voxelize,
    /// Centre and scale.
    Normalize,
}

/// Where the downsampling grid is anchored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// At the `origin` argument (default `[0, 0, 0]`): voxel `floor((p - origin) / voxel)`.
    Origin,
    /// At the sample's minimum bound minus half a voxel (Open3D's `voxel_down_sample` grid).
    MinBound,
}

/// `voxelize` output form. Discriminants are shared with the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum VoxMode {
    /// Dense `[X, Y, Z]` uint8, 1 where a voxel holds a point.
    Occupancy = 0,
    /// Dense `[X, Y, Z, C]` float32 means (0 in empty voxels).
    Mean = 1,
    /// Dense `[X, Y, Z]` int32 point counts.
    Count = 2,
    /// `coords [M, 3]` int32, `features [M, C]` means, `counts [M]` int32.
    Sparse = 3,
}

/// `normalize` mode. Discriminants are shared with the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum NormMode {
    /// Subtract the centroid; scale 1.
    Center = 0,
    /// Subtract the centroid, divide by the largest distance to it (into the unit ball).
    UnitSphere = 1,
    /// Subtract the bounding-box centre, divide by its longest side (into a cube of side 1).
    UnitCube = 2,
}

/// Element type of an output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutType {
    /// float32.
    F32,
    /// int32.
    I32,
    /// uint8.
    U8,
}

/// One output's element type and number of dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutDesc {
    /// Element type.
    pub ty: OutType,
    /// Number of dimensions of every sample.
    pub ndim: usize,
}

/// Parsed, validated operator arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct PointsArgs {
    /// Which operator.
    pub kind: Kind,
    /// Operator-wide voxel size (x, y, z), when given as a constant.
    pub voxel: Option<[f64; 3]>,
    /// Grid origin for [`Anchor::Origin`].
    pub origin: [f64; 3],
    /// Grid anchor (downsample).
    pub anchor: Anchor,
    /// Voxels with fewer points are dropped (downsample, sparse voxelize).
    pub min_points: u32,
    /// Fixed output rows (0: off; downsample, sparse voxelize): the no-sync GPU path.
    pub max_points: usize,
    /// Emit a counts output (downsample).
    pub return_counts: bool,
    /// `[xmin, ymin, zmin, xmax, ymax, zmax]` (voxelize).
    pub range: [f64; 6],
    /// voxelize mode.
    pub vmode: VoxMode,
    /// Keep at most this many voxels, the most populated (0: all; sparse voxelize).
    pub max_voxels: usize,
    /// normalize mode.
    pub nmode: NormMode,
}

/// Raw arguments as the bridge receives them.
#[derive(Clone, Debug, Default)]
pub struct RawArgs<'a> {
    /// "voxel_downsample", "voxelize" or "normalize".
    pub kind: &'a str,
    /// Constant voxel size: 1 or 3 values, or empty when given per sample.
    pub voxel_size: &'a [f32],
    /// Origin: empty or 3 values.
    pub origin: &'a [f32],
    /// "origin" or "min_bound".
    pub anchor: &'a str,
    /// Range: 6 values (voxelize).
    pub range: &'a [f32],
    /// voxelize or normalize mode.
    pub mode: &'a str,
    /// min_points_per_voxel.
    pub min_points: i64,
    /// max_points (0 off).
    pub max_points: i64,
    /// max_voxels (0 off).
    pub max_voxels: i64,
    /// return_counts.
    pub return_counts: bool,
}

/// Checks a voxel size of 1 or 3 values: each finite and > 0.
pub fn parse_voxel(op: &'static str, v: &[f32]) -> std::result::Result<[f64; 3], String> {
    let v3 = match v.len() {
        1 => [v[0]; 3],
        3 => [v[0], v[1], v[2]],
        n => return Err(format!("voxel_size must have 1 or 3 values; got {n}: {v:?}")),
    };
    if v3.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
        return Err(format!("voxel_size must be finite and > 0; got {v:?}"));
    }
    let _ = op;
    Ok(v3.map(f64::from))
}

impl PointsArgs {
    /// Parses and validates the operator's constant arguments.
    pub fn parse(raw: &RawArgs<'_>) -> Result<Self> {
        let kind = match raw.kind {
            "voxel_downsample" => Kind::Downsample,
            "voxelize" => Kind::Voxelize,
            "normalize" => Kind::Normalize,
            k => return Err(Error::arg("robocache.points", "kind", k, "voxel_downsample, voxelize or normalize")),
        };
        let op = op_name(kind);
        let voxel = if raw.voxel_size.is_empty() {
            None
        } else {
            Some(
                parse_voxel(op, raw.voxel_size)
                    .map_err(|m| Error::arg(op, "voxel_size", format!("{:?}", raw.voxel_size), m))?,
            )
        };
        let origin = match raw.origin.len() {
            0 => [0.0; 3],
            3 if raw.origin.iter().all(|x| x.is_finite()) => {
                [raw.origin[0], raw.origin[1], raw.origin[2]].map(f64::from)
            }
            _ => return Err(Error::arg(op, "origin", format!("{:?}", raw.origin), "3 finite values")),
        };
        let anchor = match raw.anchor {
            "" | "origin" => Anchor::Origin,
            "min_bound" => Anchor::MinBound,
            a => return Err(Error::arg(op, "anchor", format!("{a:?}"), "\"origin\" or \"min_bound\"")),
        };
        if anchor == Anchor::MinBound && !raw.origin.is_empty() {
            return Err(Error::arg(op, "origin", format!("{:?}", raw.origin), "no origin with anchor=\"min_bound\""));
        }
        if raw.min_points < 1 || raw.min_points > u32::MAX as i64 {
            return Err(Error::arg(op, "min_points_per_voxel", raw.min_points, ">= 1"));
        }
        if raw.max_points < 0 || raw.max_points > i32::MAX as i64 {
            return Err(Error::arg(op, "max_points", raw.max_points, "0 (off) or a positive int32"));
        }
        if raw.max_voxels < 0 || raw.max_voxels > i32::MAX as i64 {
            return Err(Error::arg(op, "max_voxels", raw.max_voxels, "0 (all) or a positive int32"));
        }
        let mut range = [0.0; 6];
        let mut vmode = VoxMode::Occupancy;
        let mut nmode = NormMode::Center;
        match kind {
            Kind::Voxelize => {
                if raw.range.len() != 6 || raw.range.iter().any(|x| !x.is_finite()) {
                    return Err(Error::arg(
                        op,
                        "range",
                        format!("{:?}", raw.range),
                        "6 finite values [xmin, ymin, zmin, xmax, ymax, zmax]",
                    ));
                }
                for a in 0..3 {
                    if raw.range[a + 3] <= raw.range[a] {
                        return Err(Error::arg(
                            op,
                            "range",
                            format!("{:?}", raw.range),
                            "an empty range: max must be > min on every axis",
                        ));
                    }
                }
                for (r, x) in range.iter_mut().zip(raw.range) {
                    *r = f64::from(*x);
                }
                vmode = match raw.mode {
                    "occupancy" | "" => VoxMode::Occupancy,
                    "mean" => VoxMode::Mean,
                    "count" => VoxMode::Count,
                    "sparse" => VoxMode::Sparse,
                    m => {
                        return Err(Error::arg(
                            op,
                            "mode",
                            format!("{m:?}"),
                            "\"occupancy\", \"mean\", \"count\" or \"sparse\"",
                        ))
                    }
                };
            }
            Kind::Normalize => {
                nmode = match raw.mode {
                    "center" | "" => NormMode::Center,
                    "unit_sphere" => NormMode::UnitSphere,
                    "unit_cube" => NormMode::UnitCube,
                    m => {
                        return Err(Error::arg(
                            op,
                            "mode",
                            format!("{m:?}"),
                            "\"center\", \"unit_sphere\" or \"unit_cube\"",
                        ))
                    }
                };
            }
            Kind::Downsample => {}
        }
        Ok(PointsArgs {
            kind,
            voxel,
            origin,
            anchor,
            min_points: raw.min_points as u32,
            max_points: raw.max_points as usize,
            return_counts: raw.return_counts,
            range,
            vmode,
            max_voxels: raw.max_voxels as usize,
            nmode,
        })
    }

    /// The operator's name.
    pub fn op(&self) -> &'static str {
        op_name(self.kind)
    }

    /// Whether output shapes depend on the data (a voxel count), so that the GPU backend copies the
    /// per-sample counts to the host once per batch.
    pub fn data_dependent(&self) -> bool {
        match self.kind {
            Kind::Downsample => self.max_points == 0,
            Kind::Voxelize => self.vmode == VoxMode::Sparse && self.max_points == 0,
            Kind::Normalize => false,
        }
    }

    /// The outputs, in order.
    pub fn outputs(&self) -> Vec<OutDesc> {
        let d = |ty, ndim| OutDesc { ty, ndim };
        let mut v = Vec::new();
        match self.kind {
            Kind::Downsample => {
                v.push(d(OutType::F32, 2));
                if self.return_counts {
                    v.push(d(OutType::I32, 1));
                }
                if self.max_points > 0 {
                    v.push(d(OutType::I32, 0));
                }
            }
            Kind::Voxelize => match self.vmode {
                VoxMode::Occupancy => v.push(d(OutType::U8, 3)),
                VoxMode::Count => v.push(d(OutType::I32, 3)),
                VoxMode::Mean => v.push(d(OutType::F32, 4)),
                VoxMode::Sparse => {
                    v.push(d(OutType::I32, 2));
                    v.push(d(OutType::F32, 2));
                    v.push(d(OutType::I32, 1));
                    if self.max_points > 0 {
                        v.push(d(OutType::I32, 0));
                    }
                }
            },
            Kind::Normalize => {
                v.push(d(OutType::F32, 2));
                v.push(d(OutType::F32, 1));
                v.push(d(OutType::F32, 0));
            }
        }
        v
    }

    /// The voxel size of sample `i`: its per-sample argument value when given, else the constant.
    pub fn voxel_of(&self, i: usize, per_sample: Option<&[f32]>) -> Result<[f64; 3]> {
        let op = self.op();
        match (per_sample, self.voxel) {
            (Some(v), _) => parse_voxel(op, v).map_err(|m| Error::sample(op, i, m)),
            (None, Some(v)) => Ok(v),
            (None, None) if self.kind == Kind::Normalize => Ok([1.0; 3]),
            (None, None) => Err(Error::sample(op, i, "voxel_size is required")),
        }
    }

    /// Dense grid dimensions `[X, Y, Z]` of a voxelize `range` at voxel size `v`.
    pub fn grid_dims(&self, i: usize, v: [f64; 3]) -> Result<[i64; 3]> {
        let mut dims = [0i64; 3];
        for a in 0..3 {
            let n = ((self.range[a + 3] - self.range[a]) / v[a]).ceil();
            if !(1.0..=MAX_CELLS - 1.0).contains(&n) {
                return Err(Error::sample(self.op(), i, format!("the grid has {n} cells along axis {a}, more than 2^31 - 1; increase voxel_size or shrink range")));
            }
            dims[a] = n as i64;
        }
        if self.vmode == VoxMode::Sparse && dims.iter().map(|d| bits_for(d - 1)).sum::<u32>() > 63 {
            return Err(Error::sample(
                self.op(),
                i,
                format!("the sparse grid {dims:?} spans more than 2^63 cells; increase voxel_size or shrink range"),
            ));
        }
        let total = dims.iter().map(|d| *d as f64).product::<f64>();
        if self.vmode != VoxMode::Sparse && total > MAX_CELLS - 1.0 {
            return Err(Error::sample(self.op(), i, format!("the dense grid {dims:?} has {total} cells, more than 2^31 - 1; increase voxel_size, shrink range or use mode=\"sparse\"")));
        }
        Ok(dims)
    }

    /// Bits of a voxelize "sparse" key at voxel size `v` (63 when the grid is invalid: the error is
    /// raised elsewhere).
    pub fn sparse_key_bits(&self, v: [f64; 3]) -> u32 {
        self.grid_dims(0, v).map_or(63, |d| d.iter().map(|x| bits_for(x - 1)).sum())
    }

    /// Checks a sample's shape (`[N, C]`, C >= 3) and returns `C`.
    pub fn check_shape(&self, i: usize, ndim: i32, cols: i64) -> Result<usize> {
        if ndim != 2 {
            return Err(Error::sample(
                self.op(),
                i,
                format!("points must be 2-D [N, C] with C >= 3; got {ndim} dimensions"),
            ));
        }
        if cols < 3 {
            return Err(Error::sample(
                self.op(),
                i,
                format!("points must have at least 3 columns (x, y, z); got {cols}"),
            ));
        }
        Ok(cols as usize)
    }

    /// Output shapes of sample `i` when they follow from shapes and arguments alone.
    pub fn planned_shapes(&self, i: usize, rows: usize, cols: usize, v: [f64; 3]) -> Result<Option<Vec<Vec<i64>>>> {
        let (n, c) = (rows as i64, cols as i64);
        Ok(match self.kind {
            Kind::Normalize => Some(vec![vec![n, c], vec![3], vec![]]),
            Kind::Downsample if self.max_points > 0 => {
                let m = self.max_points as i64;
                let mut s = vec![vec![m, c]];
                if self.return_counts {
                    s.push(vec![m]);
                }
                s.push(vec![]);
                Some(s)
            }
            Kind::Downsample => None,
            Kind::Voxelize => {
                let d = self.grid_dims(i, v)?;
                match self.vmode {
                    VoxMode::Occupancy | VoxMode::Count => Some(vec![d.to_vec()]),
                    VoxMode::Mean => Some(vec![vec![d[0], d[1], d[2], c]]),
                    VoxMode::Sparse if self.max_points > 0 => {
                        let m = self.max_points as i64;
                        Some(vec![vec![m, 3], vec![m, c], vec![m], vec![]])
                    }
                    VoxMode::Sparse => None,
                }
            }
        })
    }
}

fn op_name(k: Kind) -> &'static str {
    match k {
        Kind::Downsample => OP_DOWNSAMPLE,
        Kind::Voxelize => OP_VOXELIZE,
        Kind::Normalize => OP_NORMALIZE,
    }
}

/// One output of a CPU computation: values and shape.
#[derive(Clone, Debug, PartialEq)]
pub enum OutBuf {
    /// float32 values.
    F32(Vec<f32>, Vec<i64>),
    /// int32 values.
    I32(Vec<i32>, Vec<i64>),
    /// uint8 values.
    U8(Vec<u8>, Vec<i64>),
}

impl OutBuf {
    /// The shape.
    pub fn shape(&self) -> &[i64] {
        match self {
            OutBuf::F32(_, s) | OutBuf::I32(_, s) | OutBuf::U8(_, s) => s,
        }
    }
    /// The values as bytes.
    pub fn bytes(&self) -> &[u8] {
        fn b<T>(v: &[T]) -> &[u8] {
            // SAFETY: plain numeric data viewed as bytes.
            unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
        }
        match self {
            OutBuf::F32(v, _) => b(v),
            OutBuf::I32(v, _) => b(v),
            OutBuf::U8(v, _) => b(v),
        }
    }
}

/// Voxels in key order (the lexicographic order of their integer coordinates `(ix, iy, iz)`):
/// coordinates, counts and float64 sums of every column.
#[derive(Debug, Default)]
pub struct Voxels {
    /// Integer voxel coordinates.
    pub coords: Vec<[i64; 3]>,
    /// Points per voxel.
    pub counts: Vec<u32>,
    /// `[M, C]` float64 sums.
    pub sums: Vec<f64>,
}

fn finite3(r: &[f32]) -> bool {
    r[0].is_finite() && r[1].is_finite() && r[2].is_finite()
}

/// Voxels of more than this many points are summed in 32 interleaved partial sums (the GPU backend
/// gives such a voxel a warp); smaller ones one row after another (`RCP_LONG`).
pub const LONG_VOXEL: usize = 32;

/// Sums column `j` of `rows` in the order both backends use: up to [`LONG_VOXEL`] rows one after
/// another in row order; more: partial sum `l` takes rows `l, l + 32, ...` in order, then the 32
/// partials are added pairwise, `p[i] += p[i + o]` for `o = 16, 8, 4, 2, 1` (a warp's shuffle-down
/// tree), and `p[0]` is the sum.
fn run_sum(points: &[f32], c: usize, rows: &[u32], j: usize) -> f64 {
    let x = |r: u32| f64::from(points[r as usize * c + j]);
    if rows.len() <= LONG_VOXEL {
        return rows.iter().fold(0.0, |s, r| s + x(*r));
    }
    let mut p = [0f64; 32];
    for (k, r) in rows.iter().enumerate() {
        p[k & 31] += x(*r);
    }
    let mut o = 16;
    while o > 0 {
        for i in 0..o {
            p[i] += p[i + o];
        }
        o >>= 1;
    }
    p[0]
}

/// Packs voxel coordinates into a key whose order is the lexicographic order of `(ix, iy, iz)`:
/// `(ix - lo_x) << (bits_y + bits_z) | (iy - lo_y) << bits_z | (iz - lo_z)` (the kernels' key).
#[derive(Clone, Copy, Debug)]
pub struct KeyLayout {
    /// Smallest coordinate per axis.
    pub lo: [i64; 3],
    /// Bits per axis (sum at most 63).
    pub bits: [u32; 3],
}

impl KeyLayout {
    fn key(&self, q: [i64; 3]) -> u64 {
        let f = |a: usize| (q[a] - self.lo[a]) as u64;
        (f(0) << (self.bits[1] + self.bits[2])) | (f(1) << self.bits[2]) | f(2)
    }

    fn coords(&self, key: u64) -> [i64; 3] {
        let mask = |b: u32| if b == 0 { 0 } else { u64::MAX >> (64 - b) };
        let z = key & mask(self.bits[2]);
        let y = (key >> self.bits[2]) & mask(self.bits[1]);
        let x = key >> (self.bits[1] + self.bits[2]);
        let f = [x, y, z];
        [0, 1, 2].map(|a| f[a] as i64 + self.lo[a])
    }
}

/// Groups rows by `coord(row)` (None: skipped) into voxels in key order: a sort of (key, row)
/// pairs, then one run per voxel, its rows in row order.
fn group(points: &[f32], c: usize, lay: KeyLayout, mut coord: impl FnMut(&[f32]) -> Option<[i64; 3]>) -> Voxels {
    let mut pairs: Vec<u128> = Vec::new();
    for (r, row) in points.chunks_exact(c).enumerate() {
        if let Some(q) = coord(row) {
            pairs.push((u128::from(lay.key(q)) << 32) | r as u128);
        }
    }
    pairs.sort_unstable();
    let mut v = Voxels::default();
    let mut rows: Vec<u32> = Vec::new();
    let mut i = 0;
    while i < pairs.len() {
        let k = pairs[i] >> 32;
        rows.clear();
        let mut j = i;
        while j < pairs.len() && pairs[j] >> 32 == k {
            rows.push(pairs[j] as u32);
            j += 1;
        }
        v.coords.push(lay.coords(k as u64));
        v.counts.push(rows.len() as u32);
        v.sums.extend((0..c).map(|col| run_sum(points, c, &rows, col)));
        i = j;
    }
    v
}

/// Keeps voxels with at least `min` points, then at most `max` (0: all) of the most populated
/// (ties: the earlier voxel in key order), in key order.
fn select(v: Voxels, c: usize, min: u32, max: usize) -> Voxels {
    let mut keep: Vec<usize> = (0..v.counts.len()).filter(|&k| v.counts[k] >= min).collect();
    if max > 0 && keep.len() > max {
        let mut by = keep.clone();
        by.sort_by(|a, b| v.counts[*b].cmp(&v.counts[*a]).then(a.cmp(b)));
        by.truncate(max);
        by.sort_unstable();
        keep = by;
    }
    if keep.len() == v.counts.len() {
        return v;
    }
    let mut o = Voxels::default();
    for k in keep {
        o.coords.push(v.coords[k]);
        o.counts.push(v.counts[k]);
        o.sums.extend_from_slice(&v.sums[k * c..(k + 1) * c]);
    }
    o
}

fn means(v: &Voxels, c: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(v.sums.len());
    for (k, n) in v.counts.iter().enumerate() {
        for s in &v.sums[k * c..(k + 1) * c] {
            out.push((s / f64::from(*n)) as f32);
        }
    }
    out
}

/// Number of bits needed to hold `e >= 0`.
pub fn bits_for(e: i64) -> u32 {
    64 - (e as u64).leading_zeros()
}

/// Checks the integer grid spanned by a sample's coordinates `[lo, hi]` per axis: every coordinate
/// must lie in `[-2^31, 2^31)` and the packed 64-bit key must fit (sum of per-axis bits <= 63).
pub fn check_span(op: &'static str, i: usize, lo: [f64; 3], hi: [f64; 3]) -> Result<()> {
    let mut bits = 0;
    for a in 0..3 {
        if !(lo[a] >= -MAX_CELLS && hi[a] < MAX_CELLS) {
            return Err(Error::sample(op, i, format!("the grid spans voxel coordinates {} to {} along axis {a}, beyond the 2^31 cells an axis may have; increase voxel_size or move origin", lo[a], hi[a])));
        }
        bits += bits_for((hi[a] - lo[a]) as i64);
    }
    if bits > 63 {
        return Err(Error::sample(
            op,
            i,
            format!("the grid spans more than 2^63 cells ({bits} bits of voxel coordinates); increase voxel_size"),
        ));
    }
    Ok(())
}

/// The downsampling grid origin of a sample (float64).
pub fn origin_of(args: &PointsArgs, points: &[f32], c: usize, v: [f64; 3]) -> Option<[f64; 3]> {
    match args.anchor {
        Anchor::Origin => Some(args.origin),
        Anchor::MinBound => {
            let mut lo = [f64::INFINITY; 3];
            let mut any = false;
            for r in points.chunks_exact(c).filter(|r| finite3(r)) {
                any = true;
                for a in 0..3 {
                    lo[a] = lo[a].min(f64::from(r[a]));
                }
            }
            any.then(|| [lo[0] - v[0] * 0.5, lo[1] - v[1] * 0.5, lo[2] - v[2] * 0.5])
        }
    }
}

/// Runs one sample on the CPU; returns every output.
pub fn run_cpu(args: &PointsArgs, i: usize, points: &[f32], c: usize, v: [f64; 3]) -> Result<Vec<OutBuf>> {
    match args.kind {
        Kind::Downsample => downsample(args, i, points, c, v),
        Kind::Voxelize => voxelize(args, i, points, c, v),
        Kind::Normalize => Ok(normalize(args, points, c)),
    }
}

fn padded_outputs(args: &PointsArgs, vox: &Voxels, c: usize, coords: Option<Vec<i32>>) -> Vec<OutBuf> {
    let m = vox.counts.len();
    let mut feats = means(vox, c);
    let mut counts: Vec<i32> = vox.counts.iter().map(|n| *n as i32).collect();
    let mut coords = coords;
    let rows = if args.max_points > 0 {
        let cap = args.max_points;
        feats.resize(cap * c, 0.0);
        counts.resize(cap, 0);
        if let Some(x) = coords.as_mut() {
            x.resize(cap * 3, 0);
        }
        cap
    } else {
        m
    };
    let mut out = Vec::new();
    if let Some(x) = coords {
        out.push(OutBuf::I32(x, vec![rows as i64, 3]));
    }
    out.push(OutBuf::F32(feats, vec![rows as i64, c as i64]));
    if args.return_counts || args.kind == Kind::Voxelize {
        out.push(OutBuf::I32(counts, vec![rows as i64]));
    }
    if args.max_points > 0 {
        out.push(OutBuf::I32(vec![m.min(args.max_points) as i32], vec![]));
    }
    out
}

fn downsample(args: &PointsArgs, i: usize, points: &[f32], c: usize, v: [f64; 3]) -> Result<Vec<OutBuf>> {
    let o = origin_of(args, points, c, v).unwrap_or([0.0; 3]);
    let coord = |r: &[f32]| -> [f64; 3] { [0, 1, 2].map(|a| ((f64::from(r[a]) - o[a]) / v[a]).floor()) };
    let (mut lo, mut hi) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
    for r in points.chunks_exact(c).filter(|r| finite3(r)) {
        let q = coord(r);
        for a in 0..3 {
            lo[a] = lo[a].min(q[a]);
            hi[a] = hi[a].max(q[a]);
        }
    }
    let mut lay = KeyLayout { lo: [0; 3], bits: [0; 3] };
    if lo[0].is_finite() {
        check_span(args.op(), i, lo, hi)?;
        for a in 0..3 {
            lay.lo[a] = lo[a] as i64;
            lay.bits[a] = bits_for((hi[a] - lo[a]) as i64);
        }
    }
    let vox = group(points, c, lay, |r| finite3(r).then(|| coord(r).map(|x| x as i64)));
    let vox = select(vox, c, args.min_points, 0);
    Ok(padded_outputs(args, &vox, c, None))
}

/// The voxelize coordinate of a row: None outside the range or with non-finite xyz.
fn range_coord(args: &PointsArgs, v: [f64; 3], dims: [i64; 3], r: &[f32]) -> Option<[i64; 3]> {
    let mut q = [0i64; 3];
    for a in 0..3 {
        let x = f64::from(r[a]);
        if !(x >= args.range[a] && x < args.range[a + 3]) {
            return None;
        }
        q[a] = (((x - args.range[a]) / v[a]).floor() as i64).min(dims[a] - 1);
    }
    Some(q)
}

fn voxelize(args: &PointsArgs, i: usize, points: &[f32], c: usize, v: [f64; 3]) -> Result<Vec<OutBuf>> {
    let dims = args.grid_dims(i, v)?;
    if args.vmode == VoxMode::Sparse {
        let lay = KeyLayout { lo: [0; 3], bits: dims.map(|d| bits_for(d - 1)) };
        let vox = group(points, c, lay, |r| range_coord(args, v, dims, r));
        let vox = select(vox, c, args.min_points, args.max_voxels);
        let coords = vox.coords.iter().flat_map(|k| k.map(|x| x as i32)).collect();
        return Ok(padded_outputs(args, &vox, c, Some(coords)));
    }
    let cells = (dims[0] * dims[1] * dims[2]) as usize;
    let cell = |q: [i64; 3]| ((q[0] * dims[1] + q[1]) * dims[2] + q[2]) as usize;
    let shape = dims.to_vec();
    Ok(vec![match args.vmode {
        VoxMode::Occupancy => {
            let mut g = vec![0u8; cells];
            for q in points.chunks_exact(c).filter_map(|r| range_coord(args, v, dims, r)) {
                g[cell(q)] = 1;
            }
            OutBuf::U8(g, shape)
        }
        VoxMode::Count => {
            let mut g = vec![0i32; cells];
            for q in points.chunks_exact(c).filter_map(|r| range_coord(args, v, dims, r)) {
                g[cell(q)] += 1;
            }
            OutBuf::I32(g, shape)
        }
        _ => {
            let mut n = vec![0u32; cells];
            let mut s = vec![0f64; cells * c];
            for r in points.chunks_exact(c) {
                if let Some(q) = range_coord(args, v, dims, r) {
                    let k = cell(q);
                    n[k] += 1;
                    for (acc, x) in s[k * c..(k + 1) * c].iter_mut().zip(r) {
                        *acc += f64::from(*x);
                    }
                }
            }
            let g = s
                .iter()
                .enumerate()
                .map(|(j, x)| if n[j / c] > 0 { (x / f64::from(n[j / c])) as f32 } else { 0.0 })
                .collect();
            OutBuf::F32(g, vec![dims[0], dims[1], dims[2], c as i64])
        }
    }])
}

/// Centre and scale of a sample (float64): see [`NormMode`]. No finite rows: centre 0, scale 1;
/// a zero scale becomes 1.
pub fn norm_params(mode: NormMode, points: &[f32], c: usize) -> ([f64; 3], f64) {
    let rows = || points.chunks_exact(c).filter(|r| finite3(r));
    let mut n = 0u64;
    let mut sum = [0f64; 3];
    let (mut lo, mut hi) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
    for r in rows() {
        n += 1;
        for a in 0..3 {
            let x = f64::from(r[a]);
            sum[a] += x;
            lo[a] = lo[a].min(x);
            hi[a] = hi[a].max(x);
        }
    }
    if n == 0 {
        return ([0.0; 3], 1.0);
    }
    let (centre, scale) = match mode {
        NormMode::Center => (sum.map(|s| s / n as f64), 1.0),
        NormMode::UnitSphere => {
            let cen = sum.map(|s| s / n as f64);
            let mut m = 0f64;
            for r in rows() {
                let d = [0, 1, 2].map(|a| f64::from(r[a]) - cen[a]);
                m = m.max(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
            }
            (cen, m.sqrt())
        }
        NormMode::UnitCube => {
            let cen = [0, 1, 2].map(|a| (lo[a] + hi[a]) * 0.5);
            let side = (0..3).map(|a| hi[a] - lo[a]).fold(0f64, f64::max);
            (cen, side)
        }
    };
    (centre, if scale > 0.0 && scale.is_finite() { scale } else { 1.0 })
}

fn normalize(args: &PointsArgs, points: &[f32], c: usize) -> Vec<OutBuf> {
    let (cen, s) = norm_params(args.nmode, points, c);
    let mut out = points.to_vec();
    for r in out.chunks_exact_mut(c) {
        for a in 0..3 {
            r[a] = ((f64::from(r[a]) - cen[a]) / s) as f32;
        }
    }
    let n = (points.len() / c) as i64;
    vec![
        OutBuf::F32(out, vec![n, c as i64]),
        OutBuf::F32(cen.map(|x| x as f32).to_vec(), vec![3]),
        OutBuf::F32(vec![s as f32], vec![]),
    ]
}

#[cfg(test)]
#[path = "points_tests.rs"]
mod tests;
