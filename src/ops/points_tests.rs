//! Unit tests of `points.rs`: argument validation, grid checks and small worked examples.

use super::*;

fn args(kind: &str, mode: &str, voxel: &[f32]) -> PointsArgs {
    PointsArgs::parse(&RawArgs {
        kind,
        mode,
        voxel_size: voxel,
        min_points: 1,
        range: &[0.0, 0.0, 0.0, 1.0, 1.0, 1.0],
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn downsample_means_counts_and_coordinate_order() {
    let mut a = args("voxel_downsample", "", &[1.0]);
    a.return_counts = true;
    let p = [2.5, 0.1, 0.1, 10.0, 0.2, 0.3, 0.4, 1.0, f32::NAN, 0.0, 0.0, 5.0, 2.1, 0.9, 0.2, 20.0, 0.6, 0.5, 0.5, 3.0];
    let o = run_cpu(&a, 0, &p, 4, [1.0; 3]).unwrap();
    let OutBuf::F32(m, s) = &o[0] else { panic!() };
    assert_eq!(s, &vec![2, 4]);
    let mean = |a: f32, b: f32| ((f64::from(a) + f64::from(b)) / 2.0) as f32;
    // Voxel (0, 0, 0) (rows 1 and 4) before voxel (2, 0, 0) (rows 0 and 3), though row 0 comes first.
    assert_eq!(&m[..4], &[mean(0.2, 0.6), mean(0.3, 0.5), mean(0.4, 0.5), 2.0]);
    assert_eq!(&m[4..], &[mean(2.5, 2.1), mean(0.1, 0.9), mean(0.1, 0.2), 15.0]);
    assert_eq!(o[1], OutBuf::I32(vec![2, 2], vec![2]));
}

#[test]
fn bad_arguments_are_named() {
    let bad = |voxel: &[f32]| {
        PointsArgs::parse(&RawArgs { kind: "voxel_downsample", voxel_size: voxel, min_points: 1, ..Default::default() })
            .unwrap_err()
            .to_string()
    };
    assert!(bad(&[0.0]).contains("voxel_size must be finite and > 0"), "{}", bad(&[0.0]));
    assert!(bad(&[f32::NAN]).contains("> 0"));
    assert!(bad(&[1.0, 2.0]).contains("1 or 3 values"));
    let e = PointsArgs::parse(&RawArgs {
        kind: "voxelize",
        voxel_size: &[1.0],
        range: &[0.0, 0.0, 0.0, 1.0, 0.0, 1.0],
        min_points: 1,
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("empty range"), "{e}");
}

#[test]
fn grid_span_is_checked() {
    let a = args("voxel_downsample", "", &[1e-6]);
    let p = [-3e3f32, 0.0, 0.0, 3e3, 0.0, 0.0];
    let e = run_cpu(&a, 2, &p, 3, [1e-6; 3]).unwrap_err().to_string();
    assert!(e.starts_with("robocache.voxel_downsample: sample 2:") && e.contains("2^31"), "{e}");
}

#[test]
fn voxelize_dense_and_sparse_agree() {
    let p = [0.1f32, 0.1, 0.1, 0.15, 0.12, 0.1, 0.9, 0.9, 0.9, 1.5, 0.0, 0.0];
    let a = args("voxelize", "count", &[0.5]);
    let o = run_cpu(&a, 0, &p, 3, [0.5; 3]).unwrap();
    assert_eq!(o[0], OutBuf::I32(vec![2, 0, 0, 0, 0, 0, 0, 1], vec![2, 2, 2]));
    let mut s = args("voxelize", "sparse", &[0.5]);
    s.max_voxels = 1;
    let o = run_cpu(&s, 0, &p, 3, [0.5; 3]).unwrap();
    assert_eq!(o[0], OutBuf::I32(vec![0, 0, 0], vec![1, 3]));
    assert_eq!(o[2], OutBuf::I32(vec![2], vec![1]));
}

#[test]
fn normalize_modes() {
    let p = [0.0f32, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 4.0, 0.0];
    let (c, s) = norm_params(NormMode::UnitCube, &p, 3);
    assert_eq!((c, s), ([1.0, 2.0, 0.0], 4.0));
    let (c, s) = norm_params(NormMode::Center, &p, 3);
    assert_eq!(s, 1.0);
    assert!((c[0] - 2.0 / 3.0).abs() < 1e-15);
}

#[test]
fn voxels_sorted_lexicographically_by_coordinate() {
    let a = args("voxel_downsample", "", &[1.0]);
    // Voxels (1, -1, 0), (-1, 5, 2), (-1, 5, -3), (0, 0, 0), (-1, -2, 9) in input order.
    let p = [1.5f32, -0.5, 0.5, -0.5, 5.5, 2.5, -0.5, 5.5, -2.5, 0.5, 0.5, 0.5, -0.5, -1.5, 9.5];
    let o = run_cpu(&a, 0, &p, 3, [1.0; 3]).unwrap();
    let OutBuf::F32(m, _) = &o[0] else { panic!() };
    let q: Vec<[i64; 3]> = m.chunks(3).map(|r| [0, 1, 2].map(|k| r[k].floor() as i64)).collect();
    assert_eq!(q, vec![[-1, -2, 9], [-1, 5, -3], [-1, 5, 2], [0, 0, 0], [1, -1, 0]]);
    let mut s = args("voxelize", "sparse", &[0.25]);
    s.max_voxels = 2;
    let p = [0.9f32, 0.1, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.9, 0.12, 0.1, 0.9];
    let o = run_cpu(&s, 0, &p, 3, [0.25; 3]).unwrap();
    // Counts: (0, 0, 3) has 2; (0, 3, 0) and (3, 0, 0) have 1: the tie goes to (0, 3, 0), the earlier
    // in coordinate order (not in the input).
    assert_eq!(o[0], OutBuf::I32(vec![0, 0, 3, 0, 3, 0], vec![2, 3]));
    assert_eq!(o[2], OutBuf::I32(vec![2, 1], vec![2]));
}

#[test]
fn long_voxels_sum_in_32_interleaved_partials() {
    let a = args("voxel_downsample", "", &[1.0]);
    // 100 points in one voxel, values chosen so that the summation order shows in float64.
    let xs: Vec<f32> = (0..100).map(|k| 0.5 + (k as f32) * 1e-3 + if k % 7 == 0 { 3e-8 } else { 0.0 }).collect();
    let p: Vec<f32> = xs.iter().flat_map(|x| [*x, 0.25, 0.75]).collect();
    let o = run_cpu(&a, 0, &p, 3, [1.0; 3]).unwrap();
    let OutBuf::F32(m, _) = &o[0] else { panic!() };
    let mut part = [0f64; 32];
    for (k, x) in xs.iter().enumerate() {
        part[k % 32] += f64::from(*x);
    }
    for o in [16, 8, 4, 2, 1] {
        for i in 0..o {
            part[i] += part[i + o];
        }
    }
    assert_eq!(m[0], (part[0] / 100.0) as f32);
    assert_eq!(&m[1..], &[0.25, 0.75]);
}
