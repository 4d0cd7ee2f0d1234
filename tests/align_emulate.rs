//! `kernels/align.cu` built for the CPU with the host shim in `tests/emulate/` (g++), run on the GPU
//! path's own packing (`Phase::Emulate`: descriptors, tile map, channel map and timestamps exactly as
//! the device gets them), against the CPU backend, bit for bit: float32 / float64 / bfloat16 data,
//! float64-second and int64-nanosecond timestamps, every fill, clock form and method, quaternion
//! groups, ragged random batches with time gaps and NaN runs, under launch knob sets that send the
//! kernel down each of its paths (shared-memory windows, global-memory searches and rows, cut
//! windows and unstaged stores), the float32 split form, and the flat forms of kernels/align_flat.cu
//! (flat, staged, locate + gather, rows, regs) and the sweep of kernels/align_sweep.cu (small blocks, and a
//! shared-memory budget that sends its stores to global memory). Needs no GPU; needs a C++ compiler (the plugin build has one).

use std::path::PathBuf;
use std::process::Command;

use half::bf16;
use robocache::dtype::{DType, Times, TimesMut};
use robocache::gpu::Stream;
use robocache::ops::align::{plan_any, AlignArgs, Layout, RawArgs};
use robocache::ops::align_cpu::{run_any, Wide};
use robocache::ops::align_gpu::{run_gpu, scratch_bytes, Emulator, GpuSample, Phase};

/// xorshift64*: a small deterministic generator (the seed is printed on failure).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

/// The emulator library, built with `defines` (e.g. `-DRC_ALIGN_WIDE=1`).
fn build_emulator(name: &str, defines: &[&str]) -> libloading::Library {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("tests/emulate/align_emulator.cc");
    let lib = std::env::temp_dir().join(format!("robocache-align-emulator-{name}-{}.so", std::process::id()));
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let st = Command::new(&cxx)
        .args(defines)
        .args(["-std=c++17", "-O1", "-ffp-contract=off", "-shared", "-fPIC", "-Wno-unknown-pragmas", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("{cxx} (a C++ compiler) is needed to build {}: {e}", src.display()));
    assert!(st.success(), "building the align emulator failed");
    // SAFETY: the library was just built from tests/emulate/align_emulator.cc; it has no initialisers.
    unsafe { libloading::Library::new(&lib) }.expect("load the align emulator")
}

/// One stream of one sample: row-major data (as f64, converted per dtype) and timestamps in seconds.
struct Stream1 {
    data: Vec<f64>,
    ts: Vec<f64>,
}

/// A ragged batch: per sample, per stream, jittered timestamps over about one window, with a time gap
/// (rows removed) and NaN runs; quaternion groups hold unit quaternions.
fn random_batch(rng: &mut Rng, batch: usize, specs: &[(f64, usize)], quats: &[(usize, usize)]) -> Vec<Vec<Stream1>> {
    (0..batch)
        .map(|_| {
            let base = rng.unit() * 1000.0;
            let dur = 0.3 + 2.7 * rng.unit();
            specs
                .iter()
                .enumerate()
                .map(|(s, &(rate, c))| {
                    let t = ((dur * rate * (0.8 + 0.4 * rng.unit())) as usize).max(1);
                    let mut ts = Vec::with_capacity(t);
                    let mut x = base + 0.2 * rng.unit() - 0.1;
                    for _ in 0..t {
                        ts.push(x);
                        x += (1.0 + 0.3 * (2.0 * rng.unit() - 1.0)) / rate;
                    }
                    let scale = 0.1 + 10.0 * rng.unit();
                    let mut data: Vec<f64> = (0..t * c).map(|_| (2.0 * rng.unit() - 1.0) * scale).collect();
                    for &(_, f) in quats.iter().filter(|(q, _)| *q == s) {
                        for r in 0..t {
                            let q: Vec<f64> = (0..4).map(|_| 2.0 * rng.unit() - 1.0).collect();
                            let n = q.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-9);
                            for i in 0..4 {
                                data[r * c + f + i] = q[i] / n;
                            }
                        }
                    }
                    if t > 5 {
                        for _ in 0..rng.below(3) {
                            let a = rng.below(t);
                            let ch = rng.below(c);
                            for r in a..(a + 1 + rng.below(5)).min(t) {
                                data[r * c + ch] = f64::NAN;
                            }
                        }
                    }
                    let mut keep = vec![true; t];
                    if t > 10 && rng.unit() < 0.7 {
                        let a = 1 + rng.below(t - 6);
                        for k in keep.iter_mut().skip(a).take(1 + rng.below((t / 4).max(1))) {
                            *k = false;
                        }
                    }
                    let rows: Vec<usize> = (0..t).filter(|&r| keep[r]).collect();
                    Stream1 {
                        data: rows.iter().flat_map(|&r| data[r * c..(r + 1) * c].to_vec()).collect(),
                        ts: rows.iter().map(|&r| ts[r]).collect(),
                    }
                })
                .collect()
        })
        .collect()
}

/// Timestamps of one batch in the case's kind: seconds as given, or nanoseconds kept strictly increasing.
enum TsVec {
    S(Vec<f64>),
    N(Vec<i64>),
}
impl TsVec {
    fn new(x: &[f64], ns: bool) -> Self {
        if !ns {
            return TsVec::S(x.to_vec());
        }
        let mut v: Vec<i64> = x.iter().map(|t| (t * 1e9).round() as i64).collect();
        for i in 1..v.len() {
            v[i] = v[i].max(v[i - 1] + 1);
        }
        TsVec::N(v)
    }
    fn times(&self) -> Times<'_> {
        match self {
            TsVec::S(v) => Times::Seconds(v),
            TsVec::N(v) => Times::Nanos(v),
        }
    }
}

fn bits<T: Copy>(x: &[T]) -> &[u8] {
    // SAFETY: plain old data viewed as bytes.
    unsafe { std::slice::from_raw_parts(x.as_ptr() as *const u8, std::mem::size_of_val(x)) }
}

/// Runs one case through the CPU backend and through the emulated kernel; asserts bitwise equality.
#[allow(clippy::too_many_arguments)]
fn check_case<E: Wide + Copy>(
    emulate: Emulator,
    conv: fn(f64) -> E,
    dtype: DType,
    args: &AlignArgs,
    layout: &Layout,
    batch: &[Vec<Stream1>],
    reference: Option<&[TsVec]>,
    ns: bool,
    what: &str,
) {
    let nsamp = batch.len();
    let nstreams = layout.channels.len();
    let data: Vec<Vec<Vec<E>>> =
        batch.iter().map(|s| s.iter().map(|st| st.data.iter().map(|&v| conv(v)).collect()).collect()).collect();
    let times: Vec<Vec<TsVec>> = batch.iter().map(|s| s.iter().map(|st| TsVec::new(&st.ts, ns)).collect()).collect();
    let mut gpu_out: Vec<(Vec<E>, Vec<u8>, TsVec)> = Vec::new();
    let mut cpu_out: Vec<(Vec<E>, Vec<u8>, TsVec)> = Vec::new();
    for i in 0..nsamp {
        let rows: Vec<usize> = batch[i].iter().map(|st| st.ts.len()).collect();
        let tv: Vec<Times<'_>> = times[i].iter().map(|t| t.times()).collect();
        let rf = reference.map(|r| r[i].times());
        let n = plan_any(args, i, &rows, &tv, rf).expect("plan") as usize;
        let zero_ts = || if ns { TsVec::N(vec![-1; n]) } else { TsVec::S(vec![f64::NAN; n]) };
        let mut c = (vec![E::nan(); n * layout.total], vec![0xFFu8; n * nstreams], zero_ts());
        let dref: Vec<&[E]> = data[i].iter().map(|d| d.as_slice()).collect();
        let ot = match &mut c.2 {
            TsVec::S(v) => TimesMut::Seconds(v),
            TsVec::N(v) => TimesMut::Nanos(v),
        };
        run_any(args, layout, i, &dref, &tv, rf, &mut c.0, &mut c.1, ot).expect("cpu backend");
        cpu_out.push(c);
        gpu_out.push((vec![conv(0.0); n * layout.total], vec![0xAAu8; n * nstreams], zero_ts()));
    }
    for o in gpu_out.iter_mut() {
        // SAFETY: poison the output bytes (any bit pattern is a valid float).
        unsafe { std::ptr::write_bytes(o.0.as_mut_ptr() as *mut u8, 0xFF, o.0.len() * std::mem::size_of::<E>()) };
    }
    let samples: Vec<GpuSample<'_>> = (0..nsamp)
        .map(|i| GpuSample {
            data: data[i].iter().map(|d| d.as_ptr() as u64).collect(),
            rows: batch[i].iter().map(|st| st.ts.len()).collect(),
            times: times[i].iter().map(|t| t.times()).collect(),
            reference: reference.map(|r| r[i].times()),
            out: gpu_out[i].0.as_ptr() as u64,
            valid: gpu_out[i].1.as_ptr() as u64,
            out_ts: match &gpu_out[i].2 {
                TsVec::S(v) => v.as_ptr() as u64,
                TsVec::N(v) => v.as_ptr() as u64,
            },
            num_out: cpu_out[i].1.len() / nstreams,
        })
        .collect();
    let need = scratch_bytes(&samples, layout.total).1; // emulation: the host buffer is the device scratch
    let mut scratch = vec![0u128; need.div_ceil(16).max(1)];
    // SAFETY: the scratch viewed as bytes, 16-byte aligned as the packing expects.
    let host = unsafe { std::slice::from_raw_parts_mut(scratch.as_mut_ptr() as *mut u8, scratch.len() * 16) };
    let dev = host.as_ptr() as u64;
    // SAFETY: Phase::Emulate: every pointer is host memory valid for the planned shapes; the stream
    // argument carries the emulator's address.
    unsafe { run_gpu(args, layout, dtype, &samples, host, dev, need, emulate as *const () as Stream, Phase::Emulate) }
        .expect("emulated launch");
    for i in 0..nsamp {
        let (g, c) = (&gpu_out[i], &cpu_out[i]);
        assert_eq!(g.1, c.1, "{what}: sample {i}: valid flags differ");
        let (gt, ct) = match (&g.2, &c.2) {
            (TsVec::S(a), TsVec::S(b)) => (bits(a).to_vec(), bits(b).to_vec()),
            (TsVec::N(a), TsVec::N(b)) => (bits(a).to_vec(), bits(b).to_vec()),
            _ => unreachable!(),
        };
        assert_eq!(gt, ct, "{what}: sample {i}: output timestamps differ");
        if let Some(e) = bits(&g.0)
            .chunks(std::mem::size_of::<E>())
            .zip(bits(&c.0).chunks(std::mem::size_of::<E>()))
            .position(|(a, b)| a != b)
        {
            panic!(
                "{what}: sample {i}: fused element {e} (step {}, channel {}) differs",
                e / layout.total,
                e % layout.total
            );
        }
    }
}

#[test]
fn emulated_kernel_matches_cpu_backend_bit_for_bit() {
    // The kernels as built by default, and with RC_ALIGN_WIDE=1 (the flat forms' 16-byte loads).
    let libs = [
        build_emulator("default", &[]),
        build_emulator("wide", &["-DRC_ALIGN_WIDE=1"]),
        build_emulator("probe4", &["-DRC_AL_PROBE=4"]),
    ];
    // SAFETY: the symbols have the Emulator signature (tests/emulate/align_emulator.cc).
    let emu =
        |w: usize, name: &[u8]| -> Emulator { unsafe { *libs[w].get::<Emulator>(name).expect("emulator symbol") } };
    let seed = std::env::var("ROBOCACHE_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_a11e_u64);
    let mut rng = Rng(seed | 1);
    // Launch knob sets (read by the GPU path per launch). The tiled form: defaults (rows in global
    // memory); every stream's rows in shared-memory windows; rows and most searches in global memory
    // with an odd tile; a shared-memory budget too small for the output tile and most windows; the
    // split form (float32 tuning entry point) under the first two. The flat forms (flat, staged,
    // locate + gather, rows), each at its own tile and at an odd one, then built with RC_ALIGN_WIDE=1
    // ("WIDE": the emulator library, not a launch knob). The sweep: its default rows per block, small
    // blocks with few threads, and shared-memory budgets that send some or all stores to global memory.
    let knob_sets: [&[(&str, &str)]; 31] = [
        &[],
        &[("DESIGN", "tiled")],
        &[("DESIGN", "tiled"), ("SPARSE", "1000000")],
        &[("DESIGN", "tiled"), ("SPARSE", "0"), ("MARGIN", "0"), ("MARGIN_SHIFT", "31"), ("TILE", "5")],
        &[("DESIGN", "tiled"), ("SMEM", "256"), ("TILE", "64")],
        &[("DESIGN", "tiled"), ("VARIANT", "split"), ("SPARSE", "1000000")],
        &[
            ("DESIGN", "tiled"),
            ("VARIANT", "split"),
            ("SPARSE", "0"),
            ("MARGIN", "0"),
            ("MARGIN_SHIFT", "31"),
            ("TILE", "5"),
        ],
        &[("DESIGN", "flat")],
        &[("DESIGN", "flat"), ("TILE", "5")],
        &[("DESIGN", "staged")],
        &[("DESIGN", "staged"), ("TILE", "3")],
        &[("DESIGN", "gather")],
        &[("DESIGN", "gather"), ("TILE", "5")],
        &[("DESIGN", "rows")],
        &[("DESIGN", "rows"), ("TILE", "5")],
        &[("WIDE", "1"), ("DESIGN", "flat")],
        &[("WIDE", "1"), ("DESIGN", "staged")],
        &[("WIDE", "1"), ("DESIGN", "staged"), ("TILE", "3")],
        &[("WIDE", "1"), ("DESIGN", "gather")],
        &[("WIDE", "1"), ("DESIGN", "rows"), ("TILE", "5")],
        &[("DESIGN", "regs")],
        &[("DESIGN", "regs"), ("TILE", "3")],
        &[("WIDE", "1"), ("DESIGN", "regs")],
        &[("PROBE4", "1"), ("DESIGN", "staged")],
        &[("PROBE4", "1"), ("DESIGN", "regs"), ("TILE", "3")],
        &[("DESIGN", "sweep")],
        &[("DESIGN", "sweep"), ("TILE", "32"), ("BLOCK", "64")],
        &[("DESIGN", "sweep"), ("TILE", "40"), ("SMEM", "256")],
        &[("WIDE", "1"), ("DESIGN", "sweep"), ("TILE", "32")],
        &[("DESIGN", "sweep"), ("TILE", "64"), ("BLOCK", "32")],
        &[("DESIGN", "sweep"), ("TILE", "32"), ("SMEM", "2048")],
    ];
    let all = ["TILE", "SMEM", "SPARSE", "MARGIN", "MARGIN_SHIFT", "THREADS", "BLOCK", "VARIANT", "DESIGN"];
    let mut cases = 0;
    for knobs in knob_sets {
        for k in all {
            std::env::remove_var(format!("ROBOCACHE_ALIGN_{k}"));
        }
        let w = if knobs.contains(&("PROBE4", "1")) { 2 } else { usize::from(knobs.contains(&("WIDE", "1"))) };
        for (k, v) in knobs.iter().filter(|(k, _)| *k != "WIDE" && *k != "PROBE4") {
            std::env::set_var(format!("ROBOCACHE_ALIGN_{k}"), v);
        }
        let (e32, e64, ebf) =
            (emu(w, b"emulate_align_f32"), emu(w, b"emulate_align_f64"), emu(w, b"emulate_align_bf16"));
        let e32s = emu(w, b"emulate_align_f32_split");
        let split = knobs.iter().any(|(k, _)| *k == "VARIANT");
        assert!(!split || knobs.contains(&("DESIGN", "tiled")), "the split form is a tiled entry point");
        let dtypes: &[DType] = if split { &[DType::F32] } else { &[DType::F32, DType::F64, DType::BF16] };
        for &dtype in dtypes {
            for ns in [false, true] {
                for fill in ["hold", "nan", "zero"] {
                    for form in ["rate", "count", "reference"] {
                        let nstreams = 1 + rng.below(8);
                        let specs: Vec<(f64, usize)> = (0..nstreams)
                            .map(|_| (rng.pick(&[15.0, 30.0, 100.0, 200.0, 500.0]), rng.pick(&[1, 3, 4, 7, 9])))
                            .collect();
                        let mut quats = Vec::new();
                        for (s, &(_, c)) in specs.iter().enumerate() {
                            if c >= 4 && rng.unit() < 0.7 {
                                quats.push((s, rng.below(c - 3)));
                            }
                        }
                        let nsamp = 1 + rng.below(9);
                        let batch = random_batch(&mut rng, nsamp, &specs, &quats);
                        let methods: Vec<String> =
                            (0..nstreams).map(|_| rng.pick(&["linear", "nearest", "previous"]).to_string()).collect();
                        let gaps: Vec<f64> =
                            specs.iter().map(|&(r, _)| rng.pick(&[f64::INFINITY, 3.0 / r, 1.5 / r, 0.05])).collect();
                        let qflat: Vec<i64> = quats.iter().flat_map(|&(s, f)| [s as i64, f as i64]).collect();
                        let span = if form == "count" || rng.unit() < 0.5 { "union" } else { "intersection" };
                        let order = rng.pick(&["xyzw", "wxyz"]);
                        let (rate, count) = match form {
                            "rate" => (Some(rng.pick(&[10.0, 50.0, 333.0])), None),
                            "count" => (None, Some(1 + rng.below(89) as i64)),
                            _ => (None, None),
                        };
                        let raw = RawArgs {
                            num_inputs: 2 * nstreams + usize::from(form == "reference"),
                            methods: &methods,
                            max_gap: &gaps,
                            quaternions: &qflat,
                            quaternion_order: order,
                            fill,
                            span,
                            dtype: if dtype == DType::BF16 { "bfloat16" } else { "" },
                            target_rate: rate,
                            num_samples: count,
                        };
                        let args = AlignArgs::parse(&raw).expect("args");
                        let layout =
                            Layout::new(&args, &specs.iter().map(|s| s.1).collect::<Vec<_>>()).expect("layout");
                        let reference: Option<Vec<TsVec>> = (form == "reference").then(|| {
                            batch
                                .iter()
                                .map(|s| {
                                    let lo = s.iter().map(|st| st.ts[0]).fold(f64::INFINITY, f64::min) - 0.05;
                                    let hi =
                                        s.iter().map(|st| st.ts[st.ts.len() - 1]).fold(f64::NEG_INFINITY, f64::max)
                                            + 0.05;
                                    let mut x: Vec<f64> =
                                        (0..rng.below(120)).map(|_| lo + (hi - lo) * rng.unit()).collect();
                                    x.sort_by(f64::total_cmp);
                                    TsVec::new(&x, ns)
                                })
                                .collect()
                        });
                        let what =
                            format!("seed {seed:#x} knobs {knobs:?} {dtype:?} ns={ns} fill={fill} {form} N={nstreams}");
                        let rf = reference.as_deref();
                        match dtype {
                            DType::F32 => check_case(
                                if split { e32s } else { e32 },
                                |v| v as f32,
                                dtype,
                                &args,
                                &layout,
                                &batch,
                                rf,
                                ns,
                                &what,
                            ),
                            DType::F64 => check_case(e64, |v| v, dtype, &args, &layout, &batch, rf, ns, &what),
                            _ => check_case(ebf, bf16::from_f64, dtype, &args, &layout, &batch, rf, ns, &what),
                        }
                        cases += 1;
                    }
                }
            }
        }
    }
    for k in all {
        std::env::remove_var(format!("ROBOCACHE_ALIGN_{k}"));
    }
    assert_eq!(cases, 29 * 54 + 2 * 18);
}
