//! Property tests (proptest) of the augmentation and point-cloud bridge entries: invariants that hold
//! for any input the documentation allows (identities at zero strength, bounds, counts, monotone
//! warps), with T = 1, C = 1, wide C, single points, NaN rows, extreme values and subnormals.

use super::bridge::*;
use super::*;
use proptest::prelude::*;

fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -50.0f32..50.0,
        1 => Just(f32::NAN),
        1 => prop::sample::select(vec![1e30f32, -1e30, 1e-45, -1e-45, 0.0, -0.0]),
    ]
}

/// action_noise on one f32 sample `[t, c]` through the bridge.
fn noise(data: &[f32], c: usize, sigma: &[f32], p: f64, low: Vec<f64>, high: Vec<f64>, tau: f64) -> Vec<f32> {
    let cfg = NoiseConfig {
        distribution: "gaussian".into(),
        dtype: String::new(),
        rate: 30.0,
        has_rate: true,
        low,
        high,
        seed: 11,
    };
    let mut op = noise_new(&cfg).unwrap();
    let s = NoiseSampleIn {
        data: data.as_ptr() as usize,
        data_ndim: 2,
        rows: (data.len() / c) as i64,
        channels: c as i64,
        sigma: sigma.as_ptr() as usize,
        sigma_len: sigma.len() as i64,
        p,
        correlation_time: tau,
    };
    noise_setup(&mut op, ElemType::Float32, std::slice::from_ref(&s)).unwrap();
    let mut out = vec![0f32; data.len()];
    // SAFETY: the output has the input's shape.
    unsafe { noise_run_cpu(&op, ElemType::Float32, 0, &s, out.as_mut_ptr() as usize) }.unwrap();
    out
}

/// One cloud through a point-cloud operator; returns the outputs as raw `u64` buffers and shapes.
fn points(cfg: &PointsConfig, pts: &[f32], cols: usize) -> (Vec<Vec<u64>>, Vec<i64>) {
    let op = points_new(cfg).unwrap();
    let s = PointsSampleIn {
        data: pts.as_ptr() as usize,
        ndim: 2,
        rows: (pts.len() / cols) as i64,
        cols: cols as i64,
        voxel: 0,
        voxel_len: 0,
    };
    let mut shapes = vec![0i64; 16];
    // SAFETY: no per-sample voxel pointer; the cloud holds rows * cols floats.
    unsafe { points_setup(&op, ElemType::Float32, std::slice::from_ref(&s), &mut shapes) }.unwrap();
    unsafe { points_cpu_compute(&op, 0, &s, &mut shapes) }.unwrap();
    let descs = points_outputs(&op);
    let mut bufs: Vec<Vec<u64>> = descs
        .iter()
        .enumerate()
        .map(|(k, d)| vec![0u64; shapes[k * 4..k * 4 + d.ndim as usize].iter().product::<i64>().max(0) as usize + 1])
        .collect();
    let outs: Vec<usize> = bufs.iter_mut().map(|b| b.as_mut_ptr() as usize).collect();
    // SAFETY: each buffer holds its output's elements (8 bytes each).
    unsafe { points_cpu_write(&op, 0, &outs) }.unwrap();
    (bufs, shapes)
}

fn f32s(b: &[u64], n: usize) -> &[f32] {
    // SAFETY: `b` holds at least n f32 (allocated for that many 8-byte elements).
    unsafe { std::slice::from_raw_parts(b.as_ptr() as *const f32, n) }
}

fn i32s(b: &[u64], n: usize) -> &[i32] {
    // SAFETY: as f32s.
    unsafe { std::slice::from_raw_parts(b.as_ptr() as *const i32, n) }
}

fn points_cfg(kind: &str, voxel: f32, mode: &str) -> PointsConfig {
    PointsConfig {
        kind: kind.into(),
        voxel_size: vec![voxel],
        origin: vec![],
        anchor: "origin".into(),
        range: vec![],
        mode: mode.into(),
        min_points: 1,
        max_points: 0,
        max_voxels: 0,
        return_counts: true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn action_noise_zero_strength_is_the_identity_and_bounds_hold(
        c in prop::sample::select(vec![1usize, 3, 300]),
        t in 1usize..20,
        vals in prop::collection::vec(value(), 20 * 300),
        tau in prop::sample::select(vec![0.0f64, 0.2]),
    ) {
        let data = &vals[..t * c];
        let same = |a: f32, b: f32| a == b || (a.is_nan() && b.is_nan());
        let out = noise(data, c, &[0.0], 1.0, vec![], vec![], tau);
        prop_assert!(data.iter().zip(&out).all(|(a, b)| same(*a, *b)), "sigma 0 changed the data");
        let out = noise(data, c, &[5.0], 0.0, vec![], vec![], tau);
        prop_assert!(data.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()), "p 0 changed the data");
        let out = noise(data, c, &[5.0], 1.0, vec![-1.0], vec![2.0], tau);
        for (x, y) in data.iter().zip(&out) {
            prop_assert!(if x.is_nan() { y.is_nan() } else { (-1.0..=2.0).contains(y) }, "{} -> {}", x, y);
        }
    }

    #[test]
    fn points_augment_identity_and_rigid_rotation(
        n in prop::sample::select(vec![0usize, 1, 2, 50]),
        cols in prop::sample::select(vec![3usize, 5]),
        vals in prop::collection::vec(-100.0f32..100.0, 50 * 5),
        seed in any::<i64>(),
    ) {
        let pts = &vals[..n * cols];
        for rotation in ["none", "z", "so3"] {
            let mut op = points_augment_new(&AugPointsConfig { rotation: rotation.into(), seed }).unwrap();
            let s = AugPointsSampleIn {
                data: pts.as_ptr() as usize, ndim: 2, n: n as i64, dims: cols as i64,
                angle_lo: -3.0, angle_hi: 3.0, scale_lo: 1.0, scale_hi: 1.0, tx: 0.0, ty: 0.0, tz: 0.0,
                jitter: 0.0, jitter_clip: 0.0, dropout: 0.0,
            };
            points_augment_setup(&mut op, ElemType::Float32, std::slice::from_ref(&s)).unwrap();
            let mut out = vec![0f32; n * cols];
            let mut tf = [0f32; 16];
            let mut mask = vec![7u8; n];
            let o = AugPointsOut { out: out.as_mut_ptr() as usize, transform: tf.as_mut_ptr() as usize, mask: mask.as_mut_ptr() as usize };
            // SAFETY: outputs sized [n, cols], [4, 4], [n].
            unsafe { points_augment_run_cpu(&op, 0, &s, &o) }.unwrap();
            prop_assert!(mask.iter().all(|&m| m == 1));
            prop_assert_eq!(&tf[12..], &[0.0, 0.0, 0.0, 1.0]);
            for r in 0..n {
                let (p, q) = (&pts[r * cols..(r + 1) * cols], &out[r * cols..(r + 1) * cols]);
                let norm = |v: &[f32]| v[..3].iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
                prop_assert!((norm(p) - norm(q)).abs() <= 1e-5 * norm(p).max(1.0), "{:?} -> {:?}", p, q);
                prop_assert_eq!(&p[3..], &q[3..]);
                if rotation == "none" {
                    prop_assert!(p[..3].iter().zip(&q[..3]).all(|(a, b)| a == b));
                }
                if rotation == "z" {
                    prop_assert!((p[2] - q[2]).abs() <= 1e-5 * p[2].abs().max(1.0));
                }
            }
        }
    }

    #[test]
    fn voxel_downsample_counts_every_finite_point_once(
        n in prop::sample::select(vec![0usize, 1, 2, 40, 400]),
        vals in prop::collection::vec(value(), 400 * 4),
        voxel in prop::sample::select(vec![0.5f32, 3.0, 100.0]),
        dup in any::<bool>(),
    ) {
        let mut pts = vals[..n * 4].to_vec();
        for x in pts.iter_mut() {
            if x.abs() > 1e6 { *x = 7.0 } // keep the grid within 2^31 cells (that error has its own test)
        }
        if dup && n > 1 {
            let first = pts[..4].to_vec();
            pts[4..8].copy_from_slice(&first);
        }
        let (bufs, shapes) = points(&points_cfg("voxel_downsample", voxel, ""), &pts, 4);
        let m = shapes[0] as usize;
        let finite: Vec<[i64; 3]> = pts.chunks_exact(4).filter(|r| r[..3].iter().all(|x| x.is_finite()))
            .map(|r| [0, 1, 2].map(|a| (f64::from(r[a]) / f64::from(voxel)).floor() as i64)).collect();
        let mut distinct = finite.clone();
        distinct.sort_unstable();
        distinct.dedup();
        prop_assert_eq!(m, distinct.len());
        let counts = i32s(&bufs[1], m);
        prop_assert_eq!(counts.iter().map(|&k| k as usize).sum::<usize>(), finite.len());
        let means = f32s(&bufs[0], m * 4);
        for k in 0..m {
            let q = [0, 1, 2].map(|a| (f64::from(means[k * 4 + a]) / f64::from(voxel)).floor() as i64);
            // The mean of a voxel's points lies in the voxel (float32 rounding may touch a face).
            let near = distinct.iter().any(|d| (0..3).all(|a| (d[a] - q[a]).abs() <= 1));
            prop_assert!(near, "mean {:?} of voxel {} is in no voxel", &means[k * 4..k * 4 + 3], k);
        }
    }

    #[test]
    fn normalize_unit_sphere_fits_the_unit_ball(
        n in prop::sample::select(vec![0usize, 1, 2, 60]),
        vals in prop::collection::vec(value(), 60 * 3),
    ) {
        let pts = &vals[..n * 3];
        let (bufs, _) = points(&points_cfg("normalize", 1.0, "unit_sphere"), pts, 3);
        let out = f32s(&bufs[0], n * 3);
        let scale = f32s(&bufs[2], 1)[0];
        prop_assert!(scale.is_finite() && scale >= 0.0, "scale {}", scale);
        let fin = |r: &[f32]| r.iter().all(|x| x.is_finite());
        for (p, q) in pts.chunks_exact(3).zip(out.chunks_exact(3)) {
            if fin(p) && scale >= f32::MIN_POSITIVE {
                let r = q.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
                prop_assert!(r <= 1.0 + 1e-5, "{:?} -> {:?} (|q| = {})", p, q, r);
            }
            if !fin(p) {
                prop_assert!(q.iter().any(|x| !x.is_finite()), "a non-finite row came out finite");
            }
        }
    }

    #[test]
    fn temporal_jitter_reads_inside_the_recording_in_order(
        steps in prop::collection::vec(1e-3f64..0.5, 1..30),
        base in prop::sample::select(vec![0.0f64, 1e9, -3.0]),
        speed in (0.3f64..1.0, 1.0f64..3.0),
        offset in 0.0f64..2.0,
        warp in 0.0f64..0.95,
        n in prop::option::of(1i64..50),
    ) {
        let mut t = base;
        let ts: Vec<f64> = steps.iter().map(|s| { let v = t; t += s; v }).collect();
        let data = vec![1f32; ts.len()];
        let cfg = JitterConfig {
            method: "linear".into(), dtype: String::new(), target_rate: 0.0, has_target_rate: false,
            num_samples: n.unwrap_or(0), has_num_samples: n.is_some(), warp_knots: 4, seed: 3,
        };
        let mut op = jitter_new(&cfg).unwrap();
        let s = JitterSampleIn {
            data: data.as_ptr() as usize, data_ndim: 2, rows: ts.len() as i64, channels: 1, ts: ts.as_ptr() as usize,
            ts_ndim: 1, ts_len: ts.len() as i64, speed_lo: speed.0, speed_hi: speed.1, offset_lo: 0.0,
            offset_hi: offset, warp_strength: warp,
        };
        let b = JitterBatchIn { data_type: ElemType::Float32, ts_type: ElemType::Float64 };
        let mut lens = [0i64];
        jitter_setup(&mut op, &b, std::slice::from_ref(&s), &mut lens).unwrap();
        if let Some(n) = n {
            prop_assert_eq!(lens[0], n);
        }
        let mut out = vec![0f32; lens[0] as usize];
        let mut ot = vec![0f64; lens[0] as usize];
        let o = ResampleOut { out: out.as_mut_ptr() as usize, out_ts: ot.as_mut_ptr() as usize };
        // SAFETY: outputs sized for the planned length.
        unsafe { jitter_run_cpu(&op, &b, 0, &s, &o) }.unwrap();
        prop_assert!(ot.iter().all(|x| *x >= ts[0] && *x <= ts[ts.len() - 1]));
        prop_assert!(ot.windows(2).all(|w| w[1] >= w[0]), "warped times go backwards: {:?}", ot);
        prop_assert!(out.iter().all(|x| *x == 1.0));
    }
}
