// align.cu: multi-rate streams fused onto one reference clock, one launch per ragged batch: the
// tiled form (RcAlignParams::design 0). The Rust kernel registry (src/gpu/kernels.rs) prepends
// common.cuh and align_core.cu (the search, rc_al_locate, SLERP and the row writers both forms share).
//
// v5 layout: each block takes one tile of `p.tile` consecutive reference steps of one sample, all
// streams (`tile_sample[blockIdx.x]` names the sample; RcAlignSample::tile_begin its first block).
// 1. Setup (one thread per stream, then thread 0): per stream, the rows the tile most likely needs
//    (interpolation guesses for the tile's first and last step between the stream's ends, which the
//    descriptor carries, widened by p.margin + rows >> p.margin_shift rows each side), and their
//    places in dynamic shared memory: the output tile's staging area, every stream's timestamps,
//    then every dense stream's rows (a stream with more than p.sparse rows per step keeps its rows in
//    global memory: it needs only a few of them). A window cut short by the budget (p.smem), or one
//    the guess missed, only sends the steps it misses to global memory.
// 2. Copy: all windows at once in 16-byte chunks, by cp.async on sm_80+ (else loads through
//    registers); the ragged first and last chunk of a window in 2-byte pieces, so nothing outside
//    the inputs is read. Shared memory mirrors global memory modulo 16.
// 3. Steps: one thread per (stream, step), stream-major (a warp holds one stream's steps: one control
//    path). It finds the last row at or before its step time (same float64/int64 arithmetic as the Rust
//    CPU backend, compiled with --fmad=false), walks over missing (NaN) rows, applies max_gap and the
//    fill policy (mirror of `locate` in src/ops/align.rs), writes its valid flag, and writes its
//    stream's channels of the fused row (linear in the accumulator type; quaternion groups SLERPed in
//    float64) into the staged output tile. Rows come from the shared windows, else global memory.
// 4. Store: the staged tile (contiguous in the output) leaves in 16-byte stores.
// Four barriers; on the fast path every global load is a coalesced 16-byte chunk of step 2.

// 16-byte loads a thread issues before storing them in the copy step.
#ifndef RC_ALIGN_COPY_UNROLL
#define RC_ALIGN_COPY_UNROLL 8
#endif
// Blocks per SM the register allocation must allow (-DRC_ALIGN_MIN_BLOCKS=n to tune).
#ifndef RC_ALIGN_MIN_BLOCKS
#define RC_ALIGN_MIN_BLOCKS 1
#endif
#ifndef RC_ALIGN_VARIANTS
#define RC_ALIGN_VARIANTS 0
#endif

// One stream as a block sees it: global timestamps and rows, and the shared-memory windows holding
// timestamps of rows [r0, r0 + tlen) and rows [r0, r0 + dlen).
template <typename TS, typename B>
struct RcAlView {
  static constexpr bool kSlot = false;  // rc_al_locate: rows_ok2 as RcAlRView's (the rows to its slot)
  const TS *ts;
  const B *d;
  const TS *wts;
  const B *wd;
  int n, c, r0, tlen, dlen;
  __device__ __forceinline__ TS t(int j) const {
    unsigned u = (unsigned)(j - r0);
    return u < (unsigned)tlen ? wts[u] : __ldg(ts + j);
  }
  __device__ __forceinline__ const B *row(int j) const {
    unsigned u = (unsigned)(j - r0);
    return u < (unsigned)dlen ? wd + (rc_i64)u * c : d + (rc_i64)j * c;
  }
  // The last row with ts <= t (first <= t <= last): in the shared-memory window when it brackets t
  // (an interpolation guess and a walk of a step or two), else in global memory.
  __device__ __forceinline__ int search(TS t, TS first, TS last) const {
    int lo;
    const int wl = tlen;
    const TS *sg = wts;
    if (wl > 0 && sg[0] <= t && (t < sg[wl - 1] || r0 + wl == n)) {
      // Interpolation guess inside the window, then a walk to the last entry <= t (the result is the
      // binary search's).
      double span = rc_diff(sg[wl - 1], sg[0]);
      int a = span > 0.0 ? (int)(rc_diff(t, sg[0]) / span * (double)(wl - 1)) : 0;
      a = a < 0 ? 0 : (a > wl - 1 ? wl - 1 : a);
      while (a > 0 && sg[a] > t) a--;
      while (a + 1 < wl && sg[a + 1] <= t) a++;
      lo = r0 + a;
    } else {
      double span = rc_diff(last, first);
      int g = span > 0.0 ? (int)(rc_diff(t, first) / span * (double)(n - 1)) : 0;
      g = g < 0 ? 0 : (g > n - 1 ? n - 1 : g);
      lo = rc_al_gsearch(ts, n, t, g);
    }
    return lo;
  }
  // Missing-row flags of rows lo (bit 0) and lo + 1 (bit 1; clear past the end), tested together
  // (row lo stands in for a missing lo + 1).
  template <typename E>
  __device__ __forceinline__ unsigned rows_ok2(int lo) const {
    return rc_al_rows_ok2<E>(*this, lo);
  }
};

// Row guess for time t by linear interpolation between a stream's ends, clamped to [0, n - 1].
template <typename TS>
__device__ __forceinline__ int rc_al_guess(TS t, TS first, TS last, int n) {
  double span = rc_diff(last, first);
  double x = span > 0.0 ? rc_diff(t, first) / span * (double)(n - 1) : 0.0;
  x = x < 0.0 ? 0.0 : (x > (double)(n - 1) ? (double)(n - 1) : x);
  return (int)x;
}

// A stream as a block keeps it in shared memory: its global timestamps and rows, its ends (raw 8
// bytes), rows, the window's first row and rows wanted, and the windows: timestamps of rows
// [r0, r0 + tlen) at byte toff, rows [r0, r0 + dlen) at byte doff.
struct RcAlWin {
  rc_u64 ts, d, first, last;
  int n, r0, rows, tlen, dlen, toff, doff, pad;
};
// One global byte range [src, src + bytes) copied to shared memory: its 16-byte chunks start at
// byte soff (so shared and global addresses agree modulo 16); chunk0: its first chunk in the block's
// flat chunk numbering.
struct RcAlSeg {
  rc_u64 src;
  int bytes, soff, chunk0, pad;
};

// Rows of `row_bytes` starting at global address src that fit at byte `off` of a `cap`-byte buffer.
__device__ __forceinline__ int rc_al_fit(int rows, int row_bytes, rc_u64 src, int off, int cap) {
  int room = cap - off - (int)(src & 15);
  if (room <= 0 || rows <= 0) return 0;
  int most = room / row_bytes;
  return rows < most ? rows : most;
}

// 1a. Setup, one thread per stream: the stream's facts and the rows its windows should hold.
template <typename TS>
__device__ __forceinline__ void rc_al_want(const RcAlignSample *s, const RcAlignParams &p, rc_i64 k0, int kcount,
                                           int q, RcAlWin *win) {
  const int n = (int)s->len[q];
  const rc_u64 fb = s->first[q], lb = s->last[q];
  const TS first = rc_al_ts_bits<TS>(fb), last = rc_al_ts_bits<TS>(lb);
  const TS ta = rc_al_target<TS>(s, p, k0), tb = rc_al_target<TS>(s, p, k0 + kcount - 1);
  int ga = rc_al_guess(ta, first, last, n), gb = rc_al_guess(tb, first, last, n);
  int m = p.margin + (n >> p.margin_shift);
  int g0 = (ga < gb ? ga : gb) - m, g1 = (ga < gb ? gb : ga) + m + 1;
  g0 = g0 < 0 ? 0 : g0;
  g1 = g1 > n - 1 ? n - 1 : g1;
  RcAlWin w;
  w.ts = s->ts[q];
  w.d = s->data[q];
  w.first = fb;
  w.last = lb;
  w.n = n;
  w.r0 = g0;
  w.rows = g1 - g0 + 1;
  w.tlen = w.dlen = w.toff = w.doff = w.pad = 0;
  win[q] = w;
}

// 1b. Setup, thread 0: the output tile's staging area, then every stream's timestamp window, then
// every dense stream's row window, in shared memory (each cut where the budget ends); the copy's
// segments. Writes win, seg and *stage (byte offset of the staged tile, -1: stores go straight out).
// split: the items' (i0, i1, w) take the staging area's place (rc_al_block's split form).
template <typename B>
__device__ __forceinline__ void rc_al_place(const RcAlignSample *s, const RcAlignParams &p, rc_i64 k0, int kcount,
                                            bool split, RcAlWin *win, RcAlSeg *seg, int *stage) {
  const int ns = p.num_streams;
  const int C = p.total_channels;
  const int es = (int)sizeof(B);
  const int cap = p.smem & ~15;
  const rc_u64 gout = s->out + (rc_u64)(k0 * C) * (rc_u64)es;
  const int obytes = kcount * C * es;
  int off = 0;
  *stage = -1;
  const int need = rc_al_round16((int)(gout & 15) + obytes);
  if (split) {
    off = 16 * p.tile * ns;  // the (i0, i1, w) of every item (the host sizes p.smem to hold them)
  } else if (need <= cap / 2) {
    *stage = (int)(gout & 15);
    off = need;
  }
  for (int q = 0; q < ns; q++) {
    const rc_u64 src = win[q].ts + (rc_u64)win[q].r0 * 8ull;
    const int len = rc_al_fit(win[q].rows, 8, src, off, cap);
    win[q].tlen = len;
    win[q].toff = off + (int)(src & 15);
    seg[q].src = src;
    seg[q].bytes = len * 8;
    seg[q].soff = off;
    if (len > 0) off += rc_al_round16((int)(src & 15) + len * 8);
  }
  for (int q = 0; q < ns; q++) {
    const int rb = (int)p.streams[q].channels * es;
    const rc_u64 src = win[q].d + (rc_u64)win[q].r0 * (rc_u64)rb;
    const bool dense = (rc_i64)win[q].rows <= (rc_i64)p.sparse * (rc_i64)kcount;
    const int len = dense ? rc_al_fit(win[q].rows, rb, src, off, cap) : 0;
    win[q].dlen = len;
    win[q].doff = off + (int)(src & 15);
    seg[ns + q].src = src;
    seg[ns + q].bytes = len * rb;
    seg[ns + q].soff = off;
    if (len > 0) off += rc_al_round16((int)(src & 15) + len * rb);
  }
  int chunks = 0;
  for (int i = 0; i < 2 * ns; i++) {
    seg[i].chunk0 = chunks;
    if (seg[i].bytes > 0) chunks += rc_al_round16((int)(seg[i].src & 15) + seg[i].bytes) >> 4;
  }
  seg[2 * ns].chunk0 = chunks;
}

// 2. Copy every segment's chunks to shared memory. On sm_80 and later (RC_ALIGN_ASYNC=1) whole chunks
// go by cp.async (every chunk in flight at once, no registers held); else, and for the ragged chunks,
// RC_ALIGN_COPY_UNROLL loads in flight per thread through registers.
#ifndef RC_ALIGN_ASYNC
#define RC_ALIGN_ASYNC 1
#endif
#if RC_ALIGN_ASYNC && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define RC_AL_CP_ASYNC 1
#else
#define RC_AL_CP_ASYNC 0
#endif
__device__ __forceinline__ void rc_al_copy(const RcAlSeg *seg, int nseg, unsigned char *sbuf) {
  const int total = seg[nseg].chunk0;
  const int bd = blockDim.x;
  int sg = 0;
#if RC_AL_CP_ASYNC
  for (int i = threadIdx.x; i < total; i += bd) {
    while (i >= seg[sg + 1].chunk0) sg++;
    const RcAlSeg g = seg[sg];
    const int c = i - g.chunk0;
    const rc_u64 ga = (g.src & ~15ull) + 16ull * (rc_u64)c;
    const rc_u64 hi = g.src + (rc_u64)g.bytes;
    unsigned char *dst = sbuf + g.soff + 16 * c;
    if (ga >= g.src && ga + 16 <= hi) {
      rc_u64 sa;
      asm volatile("cvta.to.shared.u64 %0, %1;" : "=l"(sa) : "l"(dst));
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"((unsigned)sa), "l"(ga) : "memory");
    } else {
      *(uint4 *)dst = rc_al_load16(ga, g.src, hi);
    }
  }
  asm volatile("cp.async.wait_all;" ::: "memory");
#else
  for (int base = threadIdx.x; base < total; base += RC_ALIGN_COPY_UNROLL * bd) {
    uint4 v[RC_ALIGN_COPY_UNROLL];
    int sa[RC_ALIGN_COPY_UNROLL];
#pragma unroll
    for (int u = 0; u < RC_ALIGN_COPY_UNROLL; u++) {
      int i = base + u * bd;
      sa[u] = -1;
      if (i < total) {
        while (i >= seg[sg + 1].chunk0) sg++;
        const RcAlSeg g = seg[sg];
        const int c = i - g.chunk0;
        const rc_u64 ga = (g.src & ~15ull) + 16ull * (rc_u64)c;
        v[u] = rc_al_load16(ga, g.src, g.src + (rc_u64)g.bytes);
        sa[u] = g.soff + 16 * c;
      }
    }
#pragma unroll
    for (int u = 0; u < RC_ALIGN_COPY_UNROLL; u++)
      if (sa[u] >= 0) *(uint4 *)(sbuf + sa[u]) = v[u];
  }
#endif
}

// 3. One (stream q, step k) item: locate, valid flag, the stream's channels of the fused row (split:
// its (i0, i1, w) to shared memory instead, for rc_al_rows).
template <typename TS, typename E>
__device__ __forceinline__ void rc_al_item(const RcAlignSample *s, const RcAlignParams &p, const RcAlWin &wq,
                                           unsigned char *sbuf, int q, rc_i64 k0, int k, bool split,
                                           typename E::bits *orow) {
  typedef typename E::bits B;
  const int ns = p.num_streams;
  const TS t = rc_al_target<TS>(s, p, k0 + k);
  if (q == 0) ((TS *)s->out_ts)[k0 + k] = t;
  RcAlView<TS, B> v;
  v.ts = (const TS *)wq.ts;
  v.d = (const B *)wq.d;
  v.wts = (const TS *)(sbuf + wq.toff);
  v.wd = (const B *)(sbuf + wq.doff);
  v.n = wq.n;
  v.c = (int)p.streams[q].channels;
  v.r0 = wq.r0;
  v.tlen = wq.tlen;
  v.dlen = wq.dlen;
  int i0, i1, ok;
  double w;
  rc_al_locate<TS, E>(v, t, rc_al_ts_bits<TS>(wq.first), rc_al_ts_bits<TS>(wq.last), p.streams[q].method,
                      p.streams[q].max_gap, p.fill, i0, i1, w, ok);
  ((unsigned char *)s->valid)[(k0 + k) * ns + q] = (unsigned char)ok;
  if (split) {
    rc_al_put_rec(sbuf, p.tile * ns, k * ns + q, i0, i1, w);
    return;
  }
  rc_al_write<E>(v, p, q, i0, i1, w, orow);
}

// A stream's row j: from the block's shared window when it holds row j, else global memory.
template <typename B>
__device__ __forceinline__ const B *rc_al_rowp(const RcAlWin &w, const unsigned char *sbuf, int j, int c) {
  unsigned u = (unsigned)(j - w.r0);
  return u < (unsigned)w.dlen ? (const B *)(sbuf + w.doff) + (rc_i64)u * c : (const B *)w.d + (rc_i64)j * c;
}

template <typename TS, typename E>
__device__ __forceinline__ void rc_al_block(const RcAlignSample *s, const RcAlignParams &p, rc_i64 k0, int kcount,
                                            bool split, unsigned char *sbuf, RcAlWin *win, RcAlSeg *seg,
                                            int *stage) {
  typedef typename E::bits B;
  const int ns = p.num_streams;
  const int C = p.total_channels;
  for (int q = threadIdx.x; q < ns; q += blockDim.x) rc_al_want<TS>(s, p, k0, kcount, q, win);
  __syncthreads();
  if (threadIdx.x == 0) rc_al_place<B>(s, p, k0, kcount, split, win, seg, stage);
  __syncthreads();
  rc_al_copy(seg, 2 * ns, sbuf);
  __syncthreads();
  const int st = *stage;
  const int K = p.tile;
  for (int j = threadIdx.x; j < K * ns; j += blockDim.x) {
    const int q = j / K, k = j - q * K;
    if (k >= kcount) continue;
    B *orow = st >= 0 ? (B *)(sbuf + st) + (rc_i64)k * C : (B *)s->out + (k0 + k) * C;
    rc_al_item<TS, E>(s, p, win[q], sbuf, q, k0, k, split, orow);
  }
  if (split) {
    __syncthreads();
    rc_al_rows<E>(s, p, k0, kcount, sbuf, false,
                  [&](int q, int j, int cs) { return rc_al_rowp<B>(win[q], sbuf, j, cs); });
    return;
  }
  if (st < 0) return;
  __syncthreads();
  rc_al_store_tile<B>(s, k0, kcount, C, sbuf);
}

template <typename E>
__device__ __forceinline__ void rc_align(const RcAlignSample *__restrict__ samples,
                                         const int *__restrict__ tile_sample, const RcAlignParams &p, bool split) {
  RC_EXTERN_SHARED(sbuf);
  __shared__ RcAlWin win[RC_ALIGN_MAX_STREAMS];
  __shared__ RcAlSeg seg[2 * RC_ALIGN_MAX_STREAMS + 1];
  __shared__ int stage;
  const RcAlignSample *s = samples + __ldg(tile_sample + blockIdx.x);
  const rc_i64 k0 = ((rc_i64)blockIdx.x - s->tile_begin) * p.tile;
  const rc_i64 left = s->num_out - k0;
  const int kcount = left < p.tile ? (int)left : p.tile;
  if (kcount <= 0) return;  // uniform across the block
  if (p.ts_int) rc_al_block<rc_i64, E>(s, p, k0, kcount, split, sbuf, win, seg, &stage);
  else rc_al_block<double, E>(s, p, k0, kcount, split, sbuf, win, seg, &stage);
}

#define RC_ALIGN_ENTRY(E, SUFFIX, MIN_BLOCKS, SPLIT)                                         \
  extern "C" __global__ void __launch_bounds__(256, MIN_BLOCKS)                              \
      align_##SUFFIX(const RcAlignSample *__restrict__ samples,                              \
                     const int *__restrict__ tile_sample, RcAlignParams p) {                 \
    rc_align<E>(samples, tile_sample, p, SPLIT);                                             \
  }
#define RC_ALIGN(E, SUFFIX) RC_ALIGN_ENTRY(E, SUFFIX, RC_ALIGN_MIN_BLOCKS, false)

// float32 at 64 registers per thread (__launch_bounds__(256, 4)): 60.1 us against 91.4 us uncapped
// (110 registers) at the benchmark shape on an H200, the same code as the tuning entry point
// align_f32_r64 that was measured (benchmarks/results/gpu_align_h200_notes.md). The other dtypes keep
// the bounds their GPU checks ran with (RC_ALIGN_MIN_BLOCKS).
RC_ALIGN_ENTRY(RcF32, f32, 4, false)
RC_ALIGN(RcF64, f64)
RC_ALIGN(RcF16, f16)
RC_ALIGN(RcBF16, bf16)

// Tuning builds (-DRC_ALIGN_VARIANTS=1, or any odd value): float32 entry points under register caps of
// 64, 48, 40 and 32 registers per thread, fused (rN) or split (split_rN: items leave (i0, i1, w) in
// shared memory, then rc_al_rows writes the rows), picked per launch by ROBOCACHE_ALIGN_VARIANT, so one
// process times all.
#if RC_ALIGN_VARIANTS & 1
RC_ALIGN_ENTRY(RcF32, f32_r64, 4, false)
RC_ALIGN_ENTRY(RcF32, f32_r48, 5, false)
RC_ALIGN_ENTRY(RcF32, f32_r40, 6, false)
RC_ALIGN_ENTRY(RcF32, f32_r32, 8, false)
RC_ALIGN_ENTRY(RcF32, f32_split, 1, true)
RC_ALIGN_ENTRY(RcF32, f32_split_r64, 4, true)
RC_ALIGN_ENTRY(RcF32, f32_split_r48, 5, true)
RC_ALIGN_ENTRY(RcF32, f32_split_r40, 6, true)
#endif
