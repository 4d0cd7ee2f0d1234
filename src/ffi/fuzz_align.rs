//! The fuzz driver's `robocache.align` part (see `fuzz.rs`): 1-9 streams with hostile shapes,
//! timestamps, clocks and quaternion groups through `align_new` / `align_setup` / `align_run_cpu`.

use super::bridge::*;
use super::fuzz::{ok_or_documented, planned, series, Bytes, Ts, MAX_RUN_ELEMS};
use super::*;

pub(super) fn fuzz_align(b: &mut Bytes) -> std::result::Result<(), String> {
    let ty = b.data_type();
    let ns = b.u8() % 2 == 0;
    let streams = 1 + b.below(4) + usize::from(b.u8() % 32 == 0) * 5;
    let clock = b.u8() % 4;
    let with_ref = clock == 2;
    let methods: Vec<String> = if b.u8() % 2 == 0 {
        (0..streams + usize::from(b.u8() % 16 == 0)).map(|_| b.str(&["linear", "nearest", "previous"])).collect()
    } else {
        vec![]
    };
    let max_gap: Vec<f64> = if b.u8() % 2 == 0 { (0..streams).map(|_| b.f64()).collect() } else { vec![] };
    let quaternions: Vec<i64> = (0..2 * b.below(3)).map(|_| i64::from(b.u8() % 5) - 1).collect();
    let cfg = AlignConfig {
        num_inputs: (2 * streams + usize::from(with_ref)) as i32 - i32::from(b.u8() % 32 == 0),
        methods,
        max_gap,
        quaternions,
        quaternion_order: b.str(&["xyzw", "wxyz"]),
        fill: b.str(&["hold", "nan", "zero"]),
        span: b.str(&["intersection", "union"]),
        dtype: if ty == ElemType::UInt16 { "bfloat16".into() } else { String::new() },
        target_rate: b.f64(),
        has_target_rate: clock == 0 || clock == 3,
        num_samples: b.pick(&[1i64, 4, 0, 1 << 33]),
        has_num_samples: clock == 1,
    };
    let Some(op) = ok_or_documented("align_new", align_new(&cfg))? else { return Ok(()) };
    let ns_streams = align_num_streams(&op);
    let per: Vec<_> = (0..ns_streams).map(|_| series(b, ty, ns)).collect();
    let batch = per.iter().map(|s| s.rows.len()).min().unwrap_or(0);
    let refs_ts: Vec<Ts> = (0..batch)
        .map(|_| {
            let n = b.len();
            Ts::gen(b, n, ns)
        })
        .collect();
    let mut ins = Vec::new();
    for i in 0..batch {
        for s in &per {
            ins.push(AlignStreamIn {
                data: s.data[i].as_ptr() as usize,
                data_ndim: s.ndim[i],
                rows: s.rows[i],
                channels: s.channels,
                data_type: ty,
                ts: s.ts[i].ptr(),
                ts_ndim: s.ts_ndim[i],
                ts_len: s.ts[i].len(),
                ts_type: s.ts[i].ty(),
            });
        }
    }
    let refs: Vec<AlignRefIn> = refs_ts
        .iter()
        .map(|r| AlignRefIn { ts: if with_ref { r.ptr() } else { 0 }, ndim: 1, len: r.len(), ts_type: r.ty() })
        .collect();
    let mut lens = vec![0i64; batch];
    let Some(total) = ok_or_documented("align_setup", align_setup(&op, &ins, &refs, &mut lens))? else {
        return Ok(());
    };
    let mut sizes = [0usize; 2];
    ok_or_documented("align_gpu_scratch", align_gpu_scratch(&op, &ins, &refs, &lens, &mut sizes))?;
    let total = total.max(1);
    for i in 0..batch {
        planned("align", lens[i])?;
        if lens[i] * total > MAX_RUN_ELEMS {
            continue;
        }
        let mut out = vec![0u64; (lens[i] * total) as usize + 1];
        let mut valid = vec![0u8; (lens[i] as usize) * ns_streams + 1];
        let mut out_ts = vec![0u64; lens[i] as usize + 1];
        let o = AlignOut {
            out: out.as_mut_ptr() as usize,
            valid: valid.as_mut_ptr() as usize,
            out_ts: out_ts.as_mut_ptr() as usize,
        };
        let chunk = &ins[i * ns_streams..(i + 1) * ns_streams];
        super::fuzz::reached(5);
        // SAFETY: outputs sized for the planned [n, total], [n, streams] and [n].
        ok_or_documented("align_run_cpu", unsafe { align_run_cpu(&op, i, chunk, &refs[i], &o) })?;
        if valid[..lens[i] as usize * ns_streams].iter().any(|&v| v > 1) {
            return Err("align: valid flags other than 0/1".into());
        }
    }
    Ok(())
}
