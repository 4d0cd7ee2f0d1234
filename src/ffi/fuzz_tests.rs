//! The bounded fuzz run that CI executes (cargo-fuzz needs a nightly toolchain; `fuzz/` holds that
//! target for local use): seeded random byte strings through [`super::fuzz::run_one`], i.e. through
//! every bridge entry of the CPU backend, for `ROBOCACHE_FUZZ_SECS` seconds (default 20) or
//! `ROBOCACHE_FUZZ_ITERS` inputs (default 4,000,000), whichever ends first. A failure prints the seed,
//! the iteration and the input bytes; `ROBOCACHE_FUZZ_SEED` replays a run.

use super::fuzz::run_one;
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// splitmix64: a tiny seeded generator, enough to drive the byte decoder.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn bounded_fuzz_of_the_bridge_entries() {
    let seed = env_u64("ROBOCACHE_FUZZ_SEED", 0x0005_eed0_f0dd);
    let limit = Duration::from_secs(env_u64("ROBOCACHE_FUZZ_SECS", 20));
    let iters = env_u64("ROBOCACHE_FUZZ_ITERS", 4_000_000);
    let start = Instant::now();
    let mut state = seed;
    let mut done = 0u64;
    // Panics are caught at the bridge and reported as errors; keep the default hook from printing each.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failure = None;
    while done < iters && start.elapsed() < limit {
        let len = (next(&mut state) % 600) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next(&mut state) as u8).collect();
        let t = Instant::now();
        let r = run_one(&bytes);
        let slow = t.elapsed() > Duration::from_secs(10);
        if let Err(e) = r.and_then(|_| if slow { Err(format!("took {:?} (a hang?)", t.elapsed())) } else { Ok(()) }) {
            failure = Some(format!("seed {seed:#x}, input {done}: {e}\nbytes: {bytes:02x?}"));
            break;
        }
        done += 1;
    }
    std::panic::set_hook(hook);
    if let Some(f) = failure {
        panic!("{f}");
    }
    let reached: Vec<u64> =
        super::fuzz::REACHED_RUN.iter().map(|a| a.load(std::sync::atomic::Ordering::Relaxed)).collect();
    println!(
        "fuzzed the bridge with {done} inputs in {:.1} s (seed {seed:#x}); reached the CPU run entries \
         (resample, temporal_jitter, action_noise, points_augment, points, align): {reached:?}",
        start.elapsed().as_secs_f64()
    );
    assert!(reached.iter().all(|&n| n > 0), "some operator's run entry was never reached: {reached:?}");
    assert!(done > 0);
}

#[test]
fn empty_and_tiny_inputs_are_handled() {
    for n in 0..64u8 {
        let bytes: Vec<u8> = (0..n).collect();
        run_one(&bytes).unwrap();
        run_one(&vec![n; n as usize]).unwrap();
        run_one(&vec![0xff; n as usize * 7]).unwrap();
    }
}
