//! A fuzz driver of the bridge entries: arbitrary bytes decode into operator arguments, shapes,
//! element types and host buffers, which go through the same calls, in the same order, that the C++
//! operators make on the CPU backend (`*_new`, `*_setup`, `*_run_cpu` / `points_cpu_compute` +
//! `points_cpu_write`). The buffers always match the shapes handed over (as DALI's do), while the
//! shapes, types, arguments and values are hostile: mismatched lengths, `T = 0`, wrong ranks, NaN,
//! inf, subnormals, 1e30, unsorted or duplicate timestamps, int64 nanoseconds near `i64::MAX`.
//!
//! [`run_one`] returns `Err` only for a violation of the bridge's contract: a caught panic
//! (`Error::Panic`), or an output size outside what was planned. A documented `Err` from an
//! operator is fine. Used by the bounded fuzz test that CI runs (`fuzz_tests.rs`) and by the
//! cargo-fuzz target in `fuzz/` (feature `fuzzing`).

use super::bridge::*;
use super::*;
use crate::error::Error;

/// Outputs larger than this many elements are planned but not run (DALI would allocate them).
pub(super) const MAX_RUN_ELEMS: i64 = 1 << 22;

/// Inputs that reached the CPU run entries, per operator family (coverage, printed by the CI run).
pub static REACHED_RUN: [std::sync::atomic::AtomicU64; 6] = [const { std::sync::atomic::AtomicU64::new(0) }; 6];

pub(super) fn reached(k: usize) {
    REACHED_RUN[k].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Reads values from fuzz bytes; zeros once they run out.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    /// Reads from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data, pos: 0 }
    }
    pub(super) fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    pub(super) fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |a, _| (a << 8) | u64::from(self.u8()))
    }
    pub(super) fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.u8() as usize % xs.len()].clone()
    }
    pub(super) fn below(&mut self, n: usize) -> usize {
        self.u8() as usize % n.max(1)
    }
    /// A float: an interesting value or raw bits.
    pub(super) fn f64(&mut self) -> f64 {
        const HOSTILE: [f64; 16] = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            2.0,
            1e30,
            -1e30,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            5e-324,
            1e-310,
            3e38,
            0.1,
            100.0,
        ];
        match self.u8() % 4 {
            0 => f64::from_bits(self.u64()),
            1 => HOSTILE[self.below(HOSTILE.len())],
            _ => f64::from(self.u8()) / 16.0 - 4.0,
        }
    }
    /// A shape length: mostly small, sometimes 0, sometimes wide.
    pub(super) fn len(&mut self) -> i64 {
        match self.u8() % 8 {
            0 => 0,
            1 => 1,
            2 => 300,
            _ => i64::from(self.u8() % 24),
        }
    }
    /// A data element type: mostly float32, sometimes one the operators refuse.
    pub(super) fn data_type(&mut self) -> ElemType {
        self.pick(&[
            ElemType::Float32,
            ElemType::Float32,
            ElemType::Float64,
            ElemType::Float16,
            ElemType::UInt16,
            ElemType::Int32,
            ElemType::UInt8,
            ElemType::Other,
        ])
    }
    pub(super) fn str(&mut self, valid: &[&str]) -> String {
        if self.u8() % 16 == 0 {
            "bogus".to_string()
        } else {
            self.pick(valid).to_string()
        }
    }
}

/// Host timestamps of one kind, mostly increasing (a random base, random steps), sometimes broken.
pub(super) enum Ts {
    S(Vec<f64>),
    N(Vec<i64>),
}

impl Ts {
    pub(super) fn gen(b: &mut Bytes, n: i64, ns: bool) -> Ts {
        let n = n.max(0) as usize;
        let broken = b.u8() % 6 == 0;
        if ns {
            let base = b.pick(&[0i64, 4_611_686_018_427_387_904, i64::MAX - 1000, i64::MIN, -7]);
            let mut t = base;
            Ts::N(
                (0..n)
                    .map(|_| {
                        let v = t;
                        t = t.wrapping_add(if broken { b.u8() as i64 - 8 } else { 1 + i64::from(b.u8()) * 1_000_000 });
                        v
                    })
                    .collect(),
            )
        } else {
            let base = b.pick(&[0.0, 1e9, -5.0, 1e30]);
            let mut t = base;
            Ts::S(
                (0..n)
                    .map(|_| {
                        let v = t;
                        t += if broken { b.f64() } else { 1e-3 + f64::from(b.u8()) * 0.01 };
                        v
                    })
                    .collect(),
            )
        }
    }
    pub(super) fn ptr(&self) -> usize {
        match self {
            Ts::S(v) => v.as_ptr() as usize,
            Ts::N(v) => v.as_ptr() as usize,
        }
    }
    pub(super) fn len(&self) -> i64 {
        match self {
            Ts::S(v) => v.len() as i64,
            Ts::N(v) => v.len() as i64,
        }
    }
    pub(super) fn ty(&self) -> ElemType {
        match self {
            Ts::S(_) => ElemType::Float64,
            Ts::N(_) => ElemType::Int64,
        }
    }
}

/// A host data buffer of `n` elements of type `t` (8-byte aligned), filled from the bytes.
fn buffer(b: &mut Bytes, t: ElemType, n: i64) -> Vec<u64> {
    let width = match t {
        ElemType::Float64 | ElemType::Int64 => 8,
        ElemType::Float32 | ElemType::Int32 => 4,
        ElemType::Float16 | ElemType::UInt16 => 2,
        _ => 1,
    };
    let n = n.max(0) as usize;
    let mut v = vec![0u64; (n * width).div_ceil(8) + 1];
    // SAFETY: `v` holds at least n * width bytes; the view is written element by element.
    let bytes = unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, n * width) };
    let fill = b.u8() % 4;
    for k in 0..n {
        let x = if fill == 0 { f64::NAN } else { b.f64() };
        let raw: [u8; 8] = match t {
            ElemType::Float64 => x.to_bits().to_le_bytes(),
            ElemType::Float32 => u64::from((x as f32).to_bits()).to_le_bytes(),
            ElemType::Float16 => u64::from(half::f16::from_f64(x).to_bits()).to_le_bytes(),
            ElemType::UInt16 => u64::from(half::bf16::from_f64(x).to_bits()).to_le_bytes(),
            _ => (x as i64).to_le_bytes(),
        };
        bytes[k * width..(k + 1) * width].copy_from_slice(&raw[..width]);
    }
    v
}

/// Contract check: a panic caught at the bridge is a bug; an operator error is fine.
pub(super) fn ok_or_documented<T>(what: &str, r: crate::error::Result<T>) -> std::result::Result<Option<T>, String> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e @ Error::Panic { .. }) => Err(format!("{what}: {e}")),
        Err(e) => {
            let m = e.to_string();
            if !m.starts_with("robocache") {
                return Err(format!("{what}: error without the operator name: {m}"));
            }
            Ok(None)
        }
    }
}

pub(super) fn planned(what: &str, n: i64) -> std::result::Result<(), String> {
    if (0..=i64::from(i32::MAX)).contains(&n) {
        Ok(())
    } else {
        Err(format!("{what}: planned output length {n} outside [0, 2^31 - 1]"))
    }
}

/// Decodes `data` into one operator call sequence and runs it; `Err` on a contract violation.
pub fn run_one(data: &[u8]) -> std::result::Result<(), String> {
    let mut b = Bytes::new(data);
    match b.u8() % 6 {
        0 => fuzz_resample(&mut b),
        1 => fuzz_jitter(&mut b),
        2 => fuzz_noise(&mut b),
        3 => fuzz_points_augment(&mut b),
        4 => fuzz_points(&mut b),
        _ => super::fuzz_align::fuzz_align(&mut b),
    }
}

/// Shared by the time-series operators: a batch of (data, timestamps) with hostile shapes.
pub(super) struct Series {
    pub(super) data: Vec<Vec<u64>>,
    pub(super) ts: Vec<Ts>,
    pub(super) rows: Vec<i64>,
    pub(super) ndim: Vec<i32>,
    pub(super) ts_ndim: Vec<i32>,
    pub(super) channels: i64,
}

pub(super) fn series(b: &mut Bytes, ty: ElemType, ns: bool) -> Series {
    let n = 1 + b.below(3);
    let channels = b.pick(&[1i64, 1, 2, 3, 300, 0]);
    let mut s = Series { data: vec![], ts: vec![], rows: vec![], ndim: vec![], ts_ndim: vec![], channels };
    for _ in 0..n {
        let rows = if channels > 100 { b.len().min(4) } else { b.len() };
        let ts_rows = if b.u8() % 8 == 0 { b.len() } else { rows };
        s.data.push(buffer(b, ty, rows * channels.max(1)));
        s.ts.push(Ts::gen(b, ts_rows, ns));
        s.rows.push(rows);
        s.ndim.push(if b.u8() % 16 == 0 {
            3
        } else if channels == 1 && b.u8() % 2 == 0 {
            1
        } else {
            2
        });
        s.ts_ndim.push(if b.u8() % 16 == 0 { 2 } else { 1 });
    }
    s
}

fn fuzz_resample(b: &mut Bytes) -> std::result::Result<(), String> {
    let ty = b.data_type();
    let ns = b.u8() % 2 == 0;
    let form = b.u8() % 4;
    let cfg = ResampleConfig {
        method: b.str(&["linear", "nearest", "previous"]),
        extrapolate: b.str(&["clamp", "nan", "error"]),
        dtype: if ty == ElemType::UInt16 { "bfloat16".into() } else { b.str(&["", ""]) },
        target_rate: b.f64(),
        has_target_rate: form == 0 || form == 3,
        num_samples: b.pick(&[1i64, 2, 7, 0, -1, 100, 1 << 40]),
        has_num_samples: form == 1,
        has_target_timestamps: form == 2,
    };
    let Some(op) = ok_or_documented("resample_new", resample_new(&cfg))? else { return Ok(()) };
    let s = series(b, ty, ns);
    let targets: Vec<Ts> =
        s.ts.iter()
            .map(|_| {
                let n = b.len();
                Ts::gen(b, n, ns)
            })
            .collect();
    let samples: Vec<ResampleSampleIn> = (0..s.rows.len())
        .map(|i| ResampleSampleIn {
            data: s.data[i].as_ptr() as usize,
            data_ndim: s.ndim[i],
            rows: s.rows[i],
            channels: s.channels,
            ts: s.ts[i].ptr(),
            ts_ndim: s.ts_ndim[i],
            ts_len: s.ts[i].len(),
            targets: if form == 2 { targets[i].ptr() } else { 0 },
            targets_ndim: if form == 2 { 1 } else { 0 },
            targets_len: if form == 2 { targets[i].len() } else { 0 },
            start: b.f64(),
            has_start: b.u8() % 4 == 0,
            end: b.f64(),
            has_end: b.u8() % 4 == 0,
        })
        .collect();
    let batch = ResampleBatchIn { data_type: ty, ts_type: s.ts[0].ty(), targets_type: s.ts[0].ty() };
    let mut lens = vec![0i64; samples.len()];
    if ok_or_documented("resample_setup", resample_setup(&op, &batch, &samples, &mut lens))?.is_none() {
        return Ok(());
    }
    // The GPU backend's host-side sizing runs on the same planned batch (no device needed).
    ok_or_documented("resample_gpu_scratch_bytes", resample_gpu_scratch_bytes(&op, &batch, &samples, &lens))?;
    run_series_samples("resample", 0, &lens, s.channels, |i, o| {
        // SAFETY: `o` is sized for sample i's planned shape (run_series_samples).
        ok_or_documented("resample_run_cpu", unsafe { resample_run_cpu(&op, &batch, i, &samples[i], o) })
    })
}

/// Runs the CPU backend of a time-series operator on each planned sample: checks the planned
/// length, skips samples over MAX_RUN_ELEMS, and hands `run` output buffers sized for the planned
/// shape (8 bytes per element, the widest type, plus one spare element).
fn run_series_samples(
    what: &str,
    reach: usize,
    lens: &[i64],
    channels: i64,
    mut run: impl FnMut(usize, &ResampleOut) -> std::result::Result<Option<()>, String>,
) -> std::result::Result<(), String> {
    for (i, &n) in lens.iter().enumerate() {
        planned(what, n)?;
        if n * channels.max(1) > MAX_RUN_ELEMS {
            continue;
        }
        let mut out = vec![0u64; (n * channels.max(1)) as usize + 1];
        let mut out_ts = vec![0u64; n as usize + 1];
        let o = ResampleOut { out: out.as_mut_ptr() as usize, out_ts: out_ts.as_mut_ptr() as usize };
        reached(reach);
        run(i, &o)?;
    }
    Ok(())
}

fn fuzz_jitter(b: &mut Bytes) -> std::result::Result<(), String> {
    let ty = b.data_type();
    let ns = b.u8() % 2 == 0;
    let form = b.u8() % 3;
    let cfg = JitterConfig {
        method: b.str(&["linear", "nearest", "previous"]),
        dtype: if ty == ElemType::UInt16 { "bfloat16".into() } else { String::new() },
        target_rate: b.pick(&[30.0, 1000.0, 0.5, 0.0, -1.0, f64::NAN, f64::INFINITY, 1e30, 1e-30]),
        has_target_rate: form == 1,
        num_samples: b.pick(&[1i64, 5, 0, 1 << 35]),
        has_num_samples: form == 2,
        warp_knots: b.pick(&[0i64, 4, 64, 4, 2, 8, 1, 65, -1]),
        seed: b.u64() as i64,
    };
    let Some(mut op) = ok_or_documented("jitter_new", jitter_new(&cfg))? else { return Ok(()) };
    let s = series(b, ty, ns);
    let samples: Vec<JitterSampleIn> = (0..s.rows.len())
        .map(|i| JitterSampleIn {
            data: s.data[i].as_ptr() as usize,
            data_ndim: s.ndim[i],
            rows: s.rows[i],
            channels: s.channels,
            ts: s.ts[i].ptr(),
            ts_ndim: s.ts_ndim[i],
            ts_len: s.ts[i].len(),
            speed_lo: b.pick(&[0.8, 1.0, 0.8, 1.0, 0.5, 0.8, 0.0, -1.0, 1e-30, f64::NAN]),
            speed_hi: b.pick(&[1.2, 1.0, 3.0, 1.2, 1.5, 2.0, f64::INFINITY]),
            offset_lo: b.pick(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, f64::NAN]),
            offset_hi: b.pick(&[0.0, 0.5, 0.1, 1e30]),
            warp_strength: b.pick(&[0.0, 0.5, 0.99, 0.0, 0.3, 0.7, 0.0, 1.0, f64::NAN]),
        })
        .collect();
    let batch = JitterBatchIn { data_type: ty, ts_type: s.ts[0].ty() };
    let mut lens = vec![0i64; samples.len()];
    if ok_or_documented("jitter_setup", jitter_setup(&mut op, &batch, &samples, &mut lens))?.is_none() {
        return Ok(());
    }
    ok_or_documented("jitter_gpu_scratch_bytes", jitter_gpu_scratch_bytes(&op, &batch, &samples))?;
    run_series_samples("temporal_jitter", 1, &lens, s.channels, |i, o| {
        // SAFETY: `o` is sized for sample i's planned shape (run_series_samples).
        ok_or_documented("jitter_run_cpu", unsafe { jitter_run_cpu(&op, &batch, i, &samples[i], o) })
    })
}

fn fuzz_noise(b: &mut Bytes) -> std::result::Result<(), String> {
    let ty = b.data_type();
    let nb = b.below(3);
    let cfg = NoiseConfig {
        distribution: b.str(&["gaussian", "uniform"]),
        dtype: if ty == ElemType::UInt16 { "bfloat16".into() } else { String::new() },
        rate: b.f64(),
        has_rate: b.u8() % 2 == 0,
        low: (0..nb).map(|_| b.f64()).collect(),
        high: (0..b.below(3)).map(|_| b.f64()).collect(),
        seed: b.u64() as i64,
    };
    let Some(mut op) = ok_or_documented("noise_new", noise_new(&cfg))? else { return Ok(()) };
    let s = series(b, ty, false);
    let sigmas: Vec<Vec<f32>> = s.rows.iter().map(|_| (0..1 + b.below(3)).map(|_| b.f64() as f32).collect()).collect();
    let samples: Vec<NoiseSampleIn> = (0..s.rows.len())
        .map(|i| NoiseSampleIn {
            data: s.data[i].as_ptr() as usize,
            data_ndim: s.ndim[i],
            rows: s.rows[i],
            channels: s.channels,
            sigma: sigmas[i].as_ptr() as usize,
            sigma_len: sigmas[i].len() as i64,
            p: b.pick(&[1.0, 0.5, 0.0, 1.0, 1.0, 0.5, 1.5, f64::NAN]),
            correlation_time: b.pick(&[0.0, 0.1, 0.0, 0.1, 1.0, 0.0, -1.0, f64::INFINITY, 1e-300]),
        })
        .collect();
    if ok_or_documented("noise_setup", noise_setup(&mut op, ty, &samples))?.is_none() {
        return Ok(());
    }
    ok_or_documented("noise_gpu_scratch_bytes", noise_gpu_scratch_bytes(&op, &samples))?;
    for (i, smp) in samples.iter().enumerate() {
        let mut out = vec![0u64; (s.rows[i] * s.channels.max(1)) as usize + 1];
        // SAFETY: the output holds the input's shape (8 bytes per element).
        reached(2);
        ok_or_documented("noise_run_cpu", unsafe { noise_run_cpu(&op, ty, i, smp, out.as_mut_ptr() as usize) })?;
    }
    Ok(())
}

fn fuzz_points_augment(b: &mut Bytes) -> std::result::Result<(), String> {
    let cfg = AugPointsConfig { rotation: b.str(&["z", "so3", "none"]), seed: b.u64() as i64 };
    let Some(mut op) = ok_or_documented("points_augment_new", points_augment_new(&cfg))? else { return Ok(()) };
    let ty = if b.u8() % 8 == 0 { b.data_type() } else { ElemType::Float32 };
    let dims = b.pick(&[3i64, 4, 7, 2, 0]);
    let clouds: Vec<(i64, Vec<u64>)> = (0..1 + b.below(3))
        .map(|_| {
            let n = b.len();
            (n, buffer(b, ElemType::Float32, n * dims))
        })
        .collect();
    let mut r = || b.f64();
    let samples: Vec<AugPointsSampleIn> = clouds
        .iter()
        .map(|(n, buf)| AugPointsSampleIn {
            data: buf.as_ptr() as usize,
            ndim: 2,
            n: *n,
            dims,
            angle_lo: -1.0,
            angle_hi: r(),
            scale_lo: 1.0,
            scale_hi: r().abs(),
            tx: r().abs(),
            ty: 0.0,
            tz: r(),
            jitter: r(),
            jitter_clip: r().abs(),
            dropout: r().abs() % 1.0,
        })
        .collect();
    if ok_or_documented("points_augment_setup", points_augment_setup(&mut op, ty, &samples))?.is_none() {
        return Ok(());
    }
    ok_or_documented("points_augment_gpu_scratch_bytes", points_augment_gpu_scratch_bytes(&op, &samples))?;
    for (i, (n, _)) in clouds.iter().enumerate() {
        let mut out = vec![0f32; (n * dims) as usize + 1];
        let mut tf = [0f32; 16];
        let mut mask = vec![0u8; *n as usize + 1];
        let o = AugPointsOut {
            out: out.as_mut_ptr() as usize,
            transform: tf.as_mut_ptr() as usize,
            mask: mask.as_mut_ptr() as usize,
        };
        // SAFETY: outputs sized for [n, dims], [4, 4] and [n].
        reached(3);
        ok_or_documented("points_augment_run_cpu", unsafe { points_augment_run_cpu(&op, i, &samples[i], &o) })?;
        if tf.iter().any(|x| x.is_nan()) && samples[i].tz.is_finite() {
            return Err(format!("points_augment: NaN in the transform for finite ranges: {tf:?}"));
        }
    }
    Ok(())
}

fn fuzz_points(b: &mut Bytes) -> std::result::Result<(), String> {
    let kind = b.pick(&["voxel_downsample", "voxelize", "normalize"]);
    let mut r = || b.f64() as f32;
    let voxel: Vec<f32> = vec![r().abs(); 1];
    let range = vec![-2.0, -2.0, -2.0, r(), 2.0, 2.0];
    let cfg = PointsConfig {
        kind: kind.into(),
        voxel_size: if b.u8() % 4 == 0 { vec![b.f64() as f32, 0.5, 0.25] } else { voxel },
        origin: if b.u8() % 4 == 0 { vec![b.f64() as f32; 3] } else { vec![] },
        anchor: b.str(&["origin", "min_bound"]),
        range,
        mode: b.str(if kind == "normalize" {
            &["center", "unit_sphere", "unit_cube"]
        } else {
            &["occupancy", "count", "mean", "sparse", ""]
        }),
        min_points: b.pick(&[1i64, 2, 0]),
        max_points: b.pick(&[0i64, 0, 1, 5, -1]),
        max_voxels: b.pick(&[0i64, 0, 2, -3]),
        return_counts: b.u8() % 2 == 0,
    };
    let Some(op) = ok_or_documented("points_new", points_new(&cfg))? else { return Ok(()) };
    let ty = if b.u8() % 8 == 0 { b.data_type() } else { ElemType::Float32 };
    let cols = b.pick(&[3i64, 4, 9, 2]);
    let clouds: Vec<(i64, Vec<u64>)> = (0..1 + b.below(3))
        .map(|_| {
            let n = b.len();
            (n, buffer(b, ElemType::Float32, n * cols))
        })
        .collect();
    let samples: Vec<PointsSampleIn> = clouds
        .iter()
        .map(|(n, buf)| PointsSampleIn { data: buf.as_ptr() as usize, ndim: 2, rows: *n, cols, voxel: 0, voxel_len: 0 })
        .collect();
    let mut shapes = vec![0i64; samples.len() * 16];
    // SAFETY: per-sample voxel pointers are null (constant voxel_size).
    let Some(known) = ok_or_documented("points_setup", unsafe { points_setup(&op, ty, &samples, &mut shapes) })? else {
        return Ok(());
    };
    let descs = points_outputs(&op);
    let mut sizes = [0usize; 2];
    // SAFETY: per-sample voxel pointers are null.
    ok_or_documented("points_gpu_scratch", unsafe { points_gpu_scratch(&op, &samples, &mut sizes) })?;
    if known {
        // Dense grids of up to 2^31 - 1 cells are valid; too large to fill here.
        for i in 0..samples.len() {
            for (k, d) in descs.iter().enumerate() {
                let base = i * 16 + k * 4;
                let elems: i64 = shapes[base..base + d.ndim.max(0) as usize].iter().map(|&x| x.max(0)).product();
                if elems > MAX_RUN_ELEMS {
                    return Ok(());
                }
            }
        }
    }
    for (i, smp) in samples.iter().enumerate() {
        let sh = &mut shapes[i * 16..(i + 1) * 16];
        // SAFETY: the sample's buffer holds rows * cols floats.
        if ok_or_documented("points_cpu_compute", unsafe { points_cpu_compute(&op, i, smp, sh) })?.is_none() {
            continue;
        }
        let mut bufs: Vec<Vec<u64>> = Vec::new();
        for (k, d) in descs.iter().enumerate() {
            let dims = &sh[k * 4..k * 4 + d.ndim.max(0) as usize];
            if dims.iter().any(|&x| !(0..=i64::from(i32::MAX)).contains(&x)) {
                return Err(format!("points: output {k} shape {dims:?} out of range"));
            }
            let elems: i64 = dims.iter().product();
            bufs.push(vec![0u64; elems.max(0) as usize + 1]);
        }
        let outs: Vec<usize> = bufs.iter_mut().map(|v| v.as_mut_ptr() as usize).collect();
        // SAFETY: each output holds the elements of its reported shape (8 bytes each, the widest type).
        reached(4);
        ok_or_documented("points_cpu_write", unsafe { points_cpu_write(&op, i, &outs) })?;
    }
    Ok(())
}
