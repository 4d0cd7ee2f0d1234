// cuda_fiber_shim.h: enough of CUDA C for the host compiler to build kernels that cooperate within
// a block (__syncthreads, warp shuffles, ballots, __match_any_sync, shared memory) as plain C++, for
// tests on machines without a GPU (tests/python/test_points.py). Each CUDA thread of a block is a
// fiber (ucontext); fibers run round-robin and switch at every barrier and warp collective, so a
// block behaves as on the GPU for code whose collectives are reached by whole warps. Blocks run one
// after another in launch order (x fastest, then y): a block that waits on an earlier one (decoupled
// look-back through tickets) finds it finished. Not for float16.
#pragma once
#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda_shim_common.h"

struct ulonglong2 { unsigned long long x, y; };
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
inline uint2 make_uint2(unsigned a, unsigned b) { return {a, b}; }
inline int2 make_int2(int a, int b) { return {a, b}; }

struct RcFiber {
  ucontext_t ctx;
  rc_dim3 tid;
  bool done;
};
static RcFiber *rc_cur = nullptr;
static ucontext_t rc_main;
static rc_dim3 blockIdx, blockDim, gridDim;
#define threadIdx (rc_cur->tid)

inline void rc_yield() { swapcontext(&rc_cur->ctx, &rc_main); }

// Block barrier.
static unsigned rc_bar_count = 0, rc_bar_gen = 0;
inline void __syncthreads() {
  unsigned g = rc_bar_gen;
  if (++rc_bar_count == blockDim.x) {
    rc_bar_count = 0;
    rc_bar_gen++;
  } else {
    while (rc_bar_gen == g) rc_yield();
  }
}

// Block vote: whether any thread's p is non-zero.
static int rc_bar_or = 0;
inline int __syncthreads_or(int p) {
  if (p) rc_bar_or = 1;
  __syncthreads();
  const int r = rc_bar_or;
  __syncthreads();
  if (threadIdx.x == 0) rc_bar_or = 0;
  __syncthreads();
  return r;
}

// Warp barrier and exchange slots (warps of 32 lanes; whole warps reach every collective).
static unsigned rc_wcount[32], rc_wgen[32];
static unsigned long long rc_slot[32][32];
inline void rc_warp_barrier() {
  unsigned w = threadIdx.x / 32, g = rc_wgen[w];
  if (++rc_wcount[w] == 32) {
    rc_wcount[w] = 0;
    rc_wgen[w]++;
  } else {
    while (rc_wgen[w] == g) rc_yield();
  }
}
inline void __syncwarp(unsigned = 0xffffffffu) { rc_warp_barrier(); }
template <typename T> inline unsigned long long rc_bits(T v) {
  unsigned long long b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <typename T> inline T rc_unbits(unsigned long long b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}
// Deposits v, waits for the warp, reads lane src's value (own value when src is out of range).
template <typename T> inline T rc_exchange(T v, int src) {
  unsigned w = threadIdx.x / 32;
  rc_slot[w][threadIdx.x % 32] = rc_bits(v);
  rc_warp_barrier();
  T out = (src >= 0 && src < 32) ? rc_unbits<T>(rc_slot[w][src]) : v;
  rc_warp_barrier();
  return out;
}
template <typename T> inline T __shfl_sync(unsigned, T v, int src) { return rc_exchange(v, src); }
template <typename T> inline T __shfl_up_sync(unsigned, T v, unsigned d) {
  int l = threadIdx.x % 32;
  return rc_exchange(v, l - (int)d);
}
template <typename T> inline T __shfl_down_sync(unsigned, T v, unsigned d) {
  int l = threadIdx.x % 32;
  return rc_exchange(v, l + (int)d);
}
template <typename T> inline T __shfl_xor_sync(unsigned, T v, int m) {
  int l = threadIdx.x % 32;
  return rc_exchange(v, l ^ m);
}
template <typename T> inline T __ldg(const T *q) { return *q; }
inline void __nanosleep(unsigned) {}
// Every lane's value: mask of the lanes for which f(value) holds.
template <typename F> inline unsigned rc_vote(unsigned long long v, F f) {
  unsigned w = threadIdx.x / 32;
  rc_slot[w][threadIdx.x % 32] = v;
  rc_warp_barrier();
  unsigned m = 0;
  for (int l = 0; l < 32; l++)
    if (f(rc_slot[w][l])) m |= 1u << l;
  rc_warp_barrier();
  return m;
}
inline unsigned __ballot_sync(unsigned, bool p) { return rc_vote(p ? 1 : 0, [](unsigned long long x) { return x != 0; }); }
inline bool __all_sync(unsigned, bool p) { return __ballot_sync(0xffffffffu, p) == 0xffffffffu; }
template <typename T> inline unsigned __match_any_sync(unsigned, T v) {
  unsigned long long b = rc_bits(v);
  return rc_vote(b, [b](unsigned long long x) { return x == b; });
}

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }
inline int __clz(unsigned x) { return x ? __builtin_clz(x) : 32; }
inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
inline long long __double_as_longlong(double d) { return (long long)rc_bits(d); }
template <typename T> inline T atomicAdd(T *p, T v) {
  T o = *p;
  *p = o + v;
  return o;
}
inline unsigned atomicMin(unsigned *p, unsigned v) {
  unsigned o = *p;
  if (v < o) *p = v;
  return o;
}
inline unsigned atomicMax(unsigned *p, unsigned v) {
  unsigned o = *p;
  if (v > o) *p = v;
  return o;
}
inline unsigned long long atomicMax(unsigned long long *p, unsigned long long v) {
  unsigned long long o = *p;
  if (v > o) *p = v;
  return o;
}
using std::floor;
using std::sqrt;

// Runs kernel(args...) on a grid of (gx, gy) blocks of `threads` fibers.
static std::vector<std::vector<char>> rc_stacks;
static void (*rc_entry_fn)(void *) = nullptr;
static void *rc_entry_arg = nullptr;
static void rc_fiber_main() {
  rc_entry_fn(rc_entry_arg);
  rc_cur->done = true;
  swapcontext(&rc_cur->ctx, &rc_main);
}
template <typename F> inline void rc_launch(unsigned gx, unsigned gy, unsigned threads, F body) {
  const size_t stack = 256 * 1024;
  if (rc_stacks.size() < threads) rc_stacks.resize(threads);
  for (auto &s : rc_stacks)
    if (s.size() < stack) s.resize(stack);
  std::vector<RcFiber> fibers(threads);
  gridDim = {gx, gy, 1};
  blockDim = {threads, 1, 1};
  rc_entry_fn = [](void *f) { (*static_cast<F *>(f))(); };
  rc_entry_arg = &body;
  for (unsigned y = 0; y < gy; y++)
    for (unsigned x = 0; x < gx; x++) {
      blockIdx = {x, y, 0};
      rc_bar_count = 0;
      std::memset(rc_wcount, 0, sizeof(rc_wcount));
      for (unsigned t = 0; t < threads; t++) {
        RcFiber &f = fibers[t];
        f.tid = {t, 0, 0};
        f.done = false;
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = rc_stacks[t].data();
        f.ctx.uc_stack.ss_size = stack;
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, rc_fiber_main, 0);
      }
      for (bool left = true; left;) {
        left = false;
        for (unsigned t = 0; t < threads; t++) {
          if (fibers[t].done) continue;
          rc_cur = &fibers[t];
          swapcontext(&rc_main, &fibers[t].ctx);
          left = left || !fibers[t].done;
        }
      }
    }
  rc_cur = nullptr;
}
