//! Property tests (proptest) of the bridge entries the C++ operators call: argument validation and
//! the CPU backends, against independent re-statements of the documented rules. Random shapes with
//! T = 1, C = 1 and wide C, all-NaN data, extreme values, duplicate and unsorted timestamps, int64
//! nanoseconds near 2^62.

use super::bridge::*;
use super::*;
use proptest::prelude::*;

fn cfg_resample(method: &str, extrapolate: &str, targets: bool, rate: Option<f64>, n: Option<i64>) -> ResampleConfig {
    ResampleConfig {
        method: method.into(),
        extrapolate: extrapolate.into(),
        dtype: String::new(),
        target_rate: rate.unwrap_or(0.0),
        has_target_rate: rate.is_some(),
        num_samples: n.unwrap_or(0),
        has_num_samples: n.is_some(),
        has_target_timestamps: targets,
    }
}

/// One f32 sample through resample's bridge entries with explicit targets; `Err` is the message.
fn resample_once<T: Copy + Default>(
    cfg: &ResampleConfig,
    data: &[f32],
    c: usize,
    ts: &[T],
    tg: &[T],
    ts_type: ElemType,
) -> std::result::Result<(Vec<f32>, Vec<T>), String> {
    let op = resample_new(cfg).map_err(|e| e.to_string())?;
    let s = ResampleSampleIn {
        data: data.as_ptr() as usize,
        data_ndim: 2,
        rows: (data.len() / c) as i64,
        channels: c as i64,
        ts: ts.as_ptr() as usize,
        ts_ndim: 1,
        ts_len: ts.len() as i64,
        targets: tg.as_ptr() as usize,
        targets_ndim: 1,
        targets_len: tg.len() as i64,
        start: 0.0,
        has_start: false,
        end: 0.0,
        has_end: false,
    };
    let b = ResampleBatchIn { data_type: ElemType::Float32, ts_type, targets_type: ts_type };
    let mut n = [0i64];
    resample_setup(&op, &b, std::slice::from_ref(&s), &mut n).map_err(|e| e.to_string())?;
    let mut out = vec![0f32; n[0] as usize * c];
    let mut out_ts = vec![T::default(); n[0] as usize];
    let o = ResampleOut { out: out.as_mut_ptr() as usize, out_ts: out_ts.as_mut_ptr() as usize };
    // SAFETY: buffers sized for the planned [n, c] and [n].
    unsafe { resample_run_cpu(&op, &b, 0, &s, &o) }.map_err(|e| e.to_string())?;
    Ok((out, out_ts))
}

/// The documented resampling rules, restated: a target on a timestamp takes that row; linear is
/// `d[i] + w (d[i+1] - d[i])` in f32 with `w` from f64 time differences; nearest ties to the earlier.
fn reference(data: &[f32], c: usize, ts: &[f64], t: f64, method: &str, nan_outside: bool) -> Vec<f32> {
    let n = ts.len();
    let row = |i: usize| data[i * c..(i + 1) * c].to_vec();
    if t < ts[0] || t > ts[n - 1] {
        return if nan_outside {
            vec![f32::NAN; c]
        } else if t < ts[0] {
            row(0)
        } else {
            row(n - 1)
        };
    }
    let i = ts.iter().rposition(|&x| x <= t).unwrap_or(0);
    if i == n - 1 || ts[i] == t {
        return row(i);
    }
    match method {
        "previous" => row(i),
        "nearest" => row(if t - ts[i] <= ts[i + 1] - t { i } else { i + 1 }),
        _ => {
            let w = ((t - ts[i]) / (ts[i + 1] - ts[i])) as f32;
            (0..c).map(|k| data[i * c + k] + w * (data[(i + 1) * c + k] - data[i * c + k])).collect()
        }
    }
}

fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -100.0f32..100.0,
        1 => Just(f32::NAN),
        1 => prop::sample::select(vec![1e30f32, -1e30, 1e-45, -1e-45, 0.0, -0.0]),
    ]
}

/// Strictly increasing timestamps from a base and positive steps.
fn increasing(base: f64, steps: &[f64]) -> Vec<f64> {
    let mut t = base;
    steps
        .iter()
        .map(|s| {
            let v = t;
            t += s;
            v
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn resample_matches_the_documented_rules(
        c in prop::sample::select(vec![1usize, 1, 3, 300]),
        steps in prop::collection::vec(1e-3f64..1.0, 1..24),
        base in prop::sample::select(vec![0.0f64, 1e9, -50.0]),
        vals in prop::collection::vec(value(), 24 * 300),
        all_nan in any::<bool>(),
        tgs in prop::collection::vec(-0.5f64..1.5, 0..20),
        method in prop::sample::select(vec!["linear", "nearest", "previous"]),
        nan_outside in any::<bool>(),
    ) {
        let ts = increasing(base, &steps);
        let span = ts[ts.len() - 1] - ts[0];
        let mut tg: Vec<f64> = tgs.iter().map(|x| ts[0] + x * span.max(1.0)).collect();
        tg.extend_from_slice(&ts[..ts.len().min(3)]); // exact hits and duplicates
        let data: Vec<f32> = if all_nan { vec![f32::NAN; ts.len() * c] } else { vals[..ts.len() * c].to_vec() };
        let cfg = cfg_resample(method, if nan_outside { "nan" } else { "clamp" }, true, None, None);
        let (out, out_ts) = resample_once(&cfg, &data, c, &ts, &tg, ElemType::Float64).unwrap();
        prop_assert_eq!(&out_ts, &tg);
        for (k, &t) in tg.iter().enumerate() {
            let r = reference(&data, c, &ts, t, method, nan_outside);
            for ch in 0..c {
                prop_assert!(same(out[k * c + ch], r[ch]), "target {} channel {}: {} vs {}", k, ch, out[k * c + ch], r[ch]);
            }
        }
    }

    #[test]
    fn resample_nanoseconds_near_2_62_match_seconds_relative(
        steps in prop::collection::vec(1i64..50_000_000, 1..20),
        base in prop::sample::select(vec![4_611_686_018_427_387_904i64, i64::MAX - 2_000_000_000, -4_611_686_018_427_387_904]),
        vals in prop::collection::vec(-10.0f32..10.0, 20),
        picks in prop::collection::vec(0.0f64..1.0, 1..10),
    ) {
        let mut ts = vec![base];
        for s in &steps[..steps.len() - 1] {
            ts.push(ts[ts.len() - 1] + s);
        }
        let span = ts[ts.len() - 1] - ts[0];
        let tg: Vec<i64> = picks.iter().map(|p| ts[0] + (p * span as f64) as i64).collect();
        let data = &vals[..ts.len()];
        let cfg = cfg_resample("linear", "clamp", true, None, None);
        let (out, _) = resample_once(&cfg, data, 1, &ts, &tg, ElemType::Int64).unwrap();
        // Relative to the first timestamp the values are exact in f64: same rules, same result.
        let rel: Vec<f64> = ts.iter().map(|t| (t - ts[0]) as f64).collect();
        for (k, t) in tg.iter().enumerate() {
            let r = reference(data, 1, &rel, (t - ts[0]) as f64, "linear", false);
            prop_assert!(same(out[k], r[0]), "{} vs {}", out[k], r[0]);
        }
    }

    #[test]
    fn resample_timestamp_validation_is_exact(
        ts in prop::collection::vec(prop_oneof![8 => -10.0f64..10.0, 1 => Just(f64::NAN), 1 => Just(f64::INFINITY)], 1..12),
        sorted in any::<bool>(),
    ) {
        let mut ts = ts;
        if sorted {
            ts.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        }
        let data = vec![0f32; ts.len()];
        let r = resample_once(&cfg_resample("linear", "clamp", false, None, Some(3)), &data, 1, &ts, &[], ElemType::Float64);
        let bad_finite = ts.iter().position(|t| !t.is_finite());
        let bad_order = (1..ts.len()).find(|&i| ts[i] <= ts[i - 1]);
        match (bad_finite, bad_order, r) {
            (Some(i), _, Err(e)) => prop_assert!(e.starts_with(&format!("robocache.resample: sample 0: timestamps[{i}] is ")), "{}", e),
            (None, Some(i), Err(e)) => prop_assert!(e.starts_with(&format!("robocache.resample: sample 0: timestamps not strictly increasing at index {i}: ")), "{}", e),
            (None, None, Ok((out, ot))) => prop_assert!(out.len() == 3 && ot.len() == 3),
            (f, o, r) => prop_assert!(false, "finite {:?} order {:?} gave {:?}", f, o, r.map(|x| x.0.len())),
        }
    }

    #[test]
    fn resample_argument_validation_is_exact(
        method in prop::sample::select(vec!["linear", "nearest", "previous", "cubic", ""]),
        extrapolate in prop::sample::select(vec!["clamp", "nan", "error", "wrap"]),
        rate in prop::option::of(prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(0.0), Just(-1.0), 1e-30f64..1e30]),
        n in prop::option::of(prop_oneof![Just(0i64), Just(-1), Just(1i64 << 31), 1i64..100_000]),
        targets in any::<bool>(),
    ) {
        let r = resample_new(&cfg_resample(method, extrapolate, targets, rate, n));
        let forms = usize::from(rate.is_some()) + usize::from(n.is_some()) + usize::from(targets);
        let ok = ["linear", "nearest", "previous"].contains(&method)
            && ["clamp", "nan", "error"].contains(&extrapolate)
            && forms == 1
            && rate.is_none_or(|r| r.is_finite() && r > 0.0)
            && n.is_none_or(|n| (1..=i64::from(i32::MAX)).contains(&n));
        match r {
            Ok(_) => prop_assert!(ok),
            Err(e) => {
                prop_assert!(!ok, "{}", e);
                prop_assert!(e.to_string().starts_with("robocache.resample: invalid argument `"), "{}", e);
            }
        }
    }

    #[test]
    fn align_onto_its_own_timestamps_is_the_identity(
        c in prop::sample::select(vec![1usize, 2, 300]),
        steps in prop::collection::vec(1e-3f64..1.0, 1..16),
        vals in prop::collection::vec(-1e30f32..1e30, 16 * 300),
    ) {
        let ts = increasing(5.0, &steps);
        let data = &vals[..ts.len() * c];
        let cfg = AlignConfig {
            num_inputs: 3, methods: vec![], max_gap: vec![], quaternions: vec![], quaternion_order: "xyzw".into(),
            fill: "hold".into(), span: "intersection".into(), dtype: String::new(), target_rate: 0.0,
            has_target_rate: false, num_samples: 0, has_num_samples: false,
        };
        let op = align_new(&cfg).unwrap();
        let s = AlignStreamIn {
            data: data.as_ptr() as usize, data_ndim: 2, rows: ts.len() as i64, channels: c as i64,
            data_type: ElemType::Float32, ts: ts.as_ptr() as usize, ts_ndim: 1, ts_len: ts.len() as i64,
            ts_type: ElemType::Float64,
        };
        let r = AlignRefIn { ts: ts.as_ptr() as usize, ndim: 1, len: ts.len() as i64, ts_type: ElemType::Float64 };
        let mut n = [0i64];
        let total = align_setup(&op, std::slice::from_ref(&s), std::slice::from_ref(&r), &mut n).unwrap();
        prop_assert_eq!((n[0] as usize, total as usize), (ts.len(), c));
        let mut out = vec![0f32; ts.len() * c];
        let mut valid = vec![9u8; ts.len()];
        let mut ot = vec![0f64; ts.len()];
        let o = AlignOut { out: out.as_mut_ptr() as usize, valid: valid.as_mut_ptr() as usize, out_ts: ot.as_mut_ptr() as usize };
        // SAFETY: outputs sized for [T, C], [T, 1], [T].
        unsafe { align_run_cpu(&op, 0, std::slice::from_ref(&s), &r, &o) }.unwrap();
        prop_assert_eq!(&out[..], data);
        prop_assert!(valid.iter().all(|&v| v == 1));
        prop_assert_eq!(&ot, &ts);
    }
}

#[test]
fn align_union_clock_spanning_more_than_2_63_ns_is_an_error() {
    // Regression (found by the bridge fuzzer): two valid streams, one near -2^62 ns and one near
    // 2^62 ns; the union clock's span wrapped and planned a negative length.
    let cfg = AlignConfig {
        num_inputs: 4,
        methods: vec![],
        max_gap: vec![],
        quaternions: vec![],
        quaternion_order: "xyzw".into(),
        fill: "hold".into(),
        span: "union".into(),
        dtype: String::new(),
        target_rate: 1.0,
        has_target_rate: true,
        num_samples: 0,
        has_num_samples: false,
    };
    let op = align_new(&cfg).unwrap();
    let t0 = [i64::MIN + 10, i64::MIN + 20];
    let t1 = [i64::MAX - 20, i64::MAX - 10];
    let d = [0f32; 2];
    let s = |t: &[i64; 2]| AlignStreamIn {
        data: d.as_ptr() as usize,
        data_ndim: 2,
        rows: 2,
        channels: 1,
        data_type: ElemType::Float32,
        ts: t.as_ptr() as usize,
        ts_ndim: 1,
        ts_len: 2,
        ts_type: ElemType::Int64,
    };
    let r = AlignRefIn { ts: 0, ndim: 1, len: 0, ts_type: ElemType::Int64 };
    let mut n = [0i64];
    let e = align_setup(&op, &[s(&t0), s(&t1)], &[r], &mut n).unwrap_err().to_string();
    assert!(e.starts_with("robocache.align: sample 0: the clock's span") && e.contains("more than 2^63 - 1 ns"), "{e}");
}
