//! Criterion benchmark of the CPU backend of `robocache.resample` (one sample, per method and dtype).
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use half::bf16;
use robocache::dtype::{Times, TimesMut};
use robocache::ops::resample::{run_any, ResampleArgs, Window};

fn bench(c: &mut Criterion) {
    let (t, ch, n) = (2000usize, 64usize, 1000i64);
    let ts: Vec<f64> = (0..t).map(|i| i as f64 * 0.005 + (i % 7) as f64 * 1e-4).collect();
    let data: Vec<f32> = (0..t * ch).map(|i| (i as f32 * 0.37).sin()).collect();
    let data_bf: Vec<bf16> = data.iter().map(|&x| bf16::from_f32(x)).collect();
    let mut g = c.benchmark_group("resample_cpu_T2000_C64_to1000");
    g.throughput(Throughput::Bytes(((t * ch + n as usize * ch) * 4) as u64));
    for method in ["linear", "nearest", "previous"] {
        let args = ResampleArgs::parse(method, "clamp", "", None, Some(n), false).unwrap();
        let mut out = vec![0f32; n as usize * ch];
        let mut ot = vec![0f64; n as usize];
        g.bench_function(format!("f32_{method}"), |b| {
            b.iter(|| {
                run_any(
                    &args,
                    0,
                    black_box(&data),
                    ch,
                    Times::Seconds(&ts),
                    Window::default(),
                    None,
                    &mut out,
                    TimesMut::Seconds(&mut ot),
                )
                .unwrap()
            })
        });
    }
    let args = ResampleArgs::parse("linear", "clamp", "", None, Some(n), false).unwrap();
    let mut out = vec![bf16::ZERO; n as usize * ch];
    let mut ot = vec![0f64; n as usize];
    g.bench_function("bf16_linear", |b| {
        b.iter(|| {
            run_any(
                &args,
                0,
                black_box(&data_bf),
                ch,
                Times::Seconds(&ts),
                Window::default(),
                None,
                &mut out,
                TimesMut::Seconds(&mut ot),
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
