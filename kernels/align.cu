// align.cu: multi-rate streams fused onto one reference clock, one launch per ragged batch.
// common.cuh is prepended by the Rust kernel registry (src/gpu/kernels.rs).
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
// Dynamic shared memory (the host shim for tests/emulate defines its own).
#ifndef RC_EXTERN_SHARED
#define RC_EXTERN_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif

__device__ __forceinline__ double rc_al_rate_f(double a, double b, double rate, rc_i64 k) {
  double t = a + (double)k / rate;
  return t > b ? b : t;
}
__device__ __forceinline__ rc_i64 rc_al_rate_i(rc_i64 a, rc_i64 b, double rate, rc_i64 k) {
  rc_i64 t = a + __double2ll_rn((double)k / rate * 1e9);
  return t < b ? t : b;
}
__device__ __forceinline__ double rc_al_count_f(double a, double b, rc_i64 n, rc_i64 k) {
  if (k == n - 1) return b;
  if (k == 0) return a;
  return a + (b - a) * ((double)k / (double)(n - 1));
}
__device__ __forceinline__ rc_i64 rc_al_count_i(rc_i64 a, rc_i64 b, rc_i64 n, rc_i64 k) {
  if (k == n - 1) return b;
  if (k == 0) return a;
  return a + __double2ll_rn((double)(b - a) * ((double)k / (double)(n - 1)));
}

__device__ __forceinline__ double rc_al_diff(double a, double b) { return a - b; }
__device__ __forceinline__ double rc_al_diff(rc_i64 a, rc_i64 b) { return (double)(a - b); }

template <typename TS>
__device__ __forceinline__ TS rc_al_target(const RcAlignSample *s, const RcAlignParams &p, rc_i64 k);
template <>
__device__ __forceinline__ double rc_al_target<double>(const RcAlignSample *s, const RcAlignParams &p,
                                                       rc_i64 k) {
  if (p.grid == 0) return rc_al_rate_f(s->a_f, s->b_f, p.rate, k);
  if (p.grid == 1) return rc_al_count_f(s->a_f, s->b_f, p.count, k);
  return __ldg((const double *)s->targets + k);
}
template <>
__device__ __forceinline__ rc_i64 rc_al_target<rc_i64>(const RcAlignSample *s, const RcAlignParams &p,
                                                       rc_i64 k) {
  if (p.grid == 0) return rc_al_rate_i(s->a_i, s->b_i, p.rate, k);
  if (p.grid == 1) return rc_al_count_i(s->a_i, s->b_i, p.count, k);
  return __ldg((const rc_i64 *)s->targets + k);
}

// A timestamp from the descriptor's raw 8 bytes.
template <typename TS>
__device__ __forceinline__ TS rc_al_ts_bits(rc_u64 b);
template <>
__device__ __forceinline__ double rc_al_ts_bits<double>(rc_u64 b) {
  return __longlong_as_double((long long)b);
}
template <>
__device__ __forceinline__ rc_i64 rc_al_ts_bits<rc_i64>(rc_u64 b) {
  return (rc_i64)b;
}

// The last row with ts <= t in global memory, from a guess g: exponential search, then binary
// search (as resample). Needs ts[0] <= t.
template <typename TS>
__device__ __forceinline__ int rc_al_gsearch(const TS *ts, int n, TS t, int g) {
  int lo, hi;
  if (__ldg(ts + g) <= t) {
    lo = g;
    int step = 1;
    while (lo + step <= n - 1 && __ldg(ts + lo + step) <= t) { lo += step; step <<= 1; }
    hi = lo + step - 1 < n - 1 ? lo + step - 1 : n - 1;
  } else {
    hi = g - 1;
    int step = 1;
    while (hi - step >= 0 && __ldg(ts + hi - step + 1) > t) { hi -= step; step <<= 1; }
    lo = hi - step + 1 > 0 ? hi - step + 1 : 0;
  }
  while (lo < hi) {
    int mid = (lo + hi + 1) >> 1;
    if (__ldg(ts + mid) <= t) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// One stream as a block sees it: global timestamps and rows, and the shared-memory windows holding
// timestamps of rows [r0, r0 + tlen) and rows [r0, r0 + dlen).
template <typename TS, typename B>
struct RcAlView {
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
      double span = rc_al_diff(sg[wl - 1], sg[0]);
      int a = span > 0.0 ? (int)(rc_al_diff(t, sg[0]) / span * (double)(wl - 1)) : 0;
      a = a < 0 ? 0 : (a > wl - 1 ? wl - 1 : a);
      while (a > 0 && sg[a] > t) a--;
      while (a + 1 < wl && sg[a + 1] <= t) a++;
      lo = r0 + a;
    } else {
      double span = rc_al_diff(last, first);
      int g = span > 0.0 ? (int)(rc_al_diff(t, first) / span * (double)(n - 1)) : 0;
      g = g < 0 ? 0 : (g > n - 1 ? n - 1 : g);
      lo = rc_al_gsearch(ts, n, t, g);
    }
    return lo;
  }
};

// One stream as a thread of the flat kernels sees it: global timestamps and rows only.
template <typename TS, typename B>
struct RcAlGView {
  const TS *ts;
  const B *d;
  int n, c;
  __device__ __forceinline__ TS t(int j) const { return __ldg(ts + j); }
  __device__ __forceinline__ const B *row(int j) const { return d + (rc_i64)j * c; }
  // The last row with ts <= t (first <= t <= last): an interpolation guess g between the ends (in
  // float32 with a fast division: only the probes' positions depend on it, never the result), the 8
  // timestamps from g - 3 loaded together (jittered clocks put the answer there), a second probe of
  // 8 next to it on the side the first missed, else the exponential search from the probes' end.
  __device__ __forceinline__ int search(TS t, TS first, TS last) const {
    const float span = (float)rc_al_diff(last, first);
    int g = span > 0.0f ? (int)(__fdividef((float)rc_al_diff(t, first), span) * (float)(n - 1)) : 0;
    g = g < 0 ? 0 : (g > n - 1 ? n - 1 : g);
    if (n < 8) return rc_al_gsearch(ts, n, t, g);
    int a = g - 3;
#pragma unroll 1
    for (int probe = 0; probe < 2; probe++) {
      a = a < 0 ? 0 : (a > n - 8 ? n - 8 : a);
      int le = 0;
#pragma unroll
      for (int i = 0; i < 8; i++) le += __ldg(ts + a + i) <= t ? 1 : 0;
      if (le == 0) {  // below the probe (a > 0: ts[0] <= t)
        if (probe == 1) return rc_al_gsearch(ts, n, t, a);
        a -= 8;
      } else if (le == 8 && a + 8 < n) {  // above it
        if (probe == 1) return rc_al_gsearch(ts, n, t, a + 7);
        a += 8;
      } else {
        return a + le - 1;
      }
    }
    return -1;  // not reached
  }
};

// A row is missing when any channel is NaN. No early exit: the loads are independent.
template <typename E, typename V>
__device__ __forceinline__ bool rc_al_row_ok(const V &v, int j) {
  const typename E::bits *r = v.row(j);
  bool ok = true;
#pragma unroll 8
  for (int i = 0; i < v.c; i++) {
    typename E::acc x = E::load(r[i]);
    ok = ok & (x == x);
  }
  return ok;
}

// Missing-row flags of rows j, j + dir, j + 2 dir, j + 3 dir as bits 0..3 (rows outside [0, n) read
// as missing), loaded together: a walk over a run of NaN rows takes a quarter of the round trips.
template <typename E, typename V>
__device__ __forceinline__ unsigned rc_al_rows_ok4(const V &v, int j, int dir) {
  unsigned m = 0;
#pragma unroll
  for (int u = 0; u < 4; u++) {
    int r = j + u * dir;
    bool in = r >= 0 && r < v.n;
    if (rc_al_row_ok<E>(v, in ? r : j) && in) m |= 1u << u;
  }
  return m;
}

// Invalid step: i0 = i1 = row to hold, -1 for NaN, -2 for zero.
__device__ __forceinline__ void rc_al_invalid(int fill, int h, int &i0, int &i1) {
  i0 = i1 = fill == 0 ? (h >= 0 ? h : -1) : (fill == 1 ? -1 : -2);
}

// Mirror of `locate` in src/ops/align.rs. Outputs: (i0, i1, w) with i0 == i1 for a copy, i0 < 0
// for a fill (-1 NaN, -2 zero); ok = valid flag. The search for the last row with ts <= t runs in
// the shared-memory window when the window brackets t (the usual case: an interpolation guess and a
// walk of a step or two), else in global memory (interpolation guess, exponential search, binary
// search, as resample). Rows lo and lo + 1 are tested for NaN together.
template <typename TS, typename E, typename V>
__device__ __forceinline__ void rc_al_locate(const V &v, TS t, TS first, TS last,
                                             int method, double gap, int fill, int &i0, int &i1, double &w,
                                             int &ok) {
  w = 0.0;
  ok = 0;
  const int n = v.n;
  const bool hold = fill == 0;
  if (t < first || t > last) {
    int h = -1;
    if (hold) {
      if (t < first) {
        for (int j = 0; j < n; j++)
          if (rc_al_row_ok<E>(v, j)) { h = j; break; }
      } else {
        for (int j = n - 1; j >= 0; j--)
          if (rc_al_row_ok<E>(v, j)) { h = j; break; }
      }
    }
    rc_al_invalid(fill, h, i0, i1);
    return;
  }
  const int lo = v.search(t, first, last);
  // Rows lo and lo + 1 tested together (row lo stands in for a missing lo + 1).
  const bool ok_lo = rc_al_row_ok<E>(v, lo);
  const bool ok_hi = rc_al_row_ok<E>(v, lo + 1 < n ? lo + 1 : lo) && lo + 1 < n;
  const TS tlo = v.t(lo);
  if (tlo == t && ok_lo) {
    i0 = i1 = lo;
    ok = 1;
    return;
  }
  int l = -1;
  {
    int j = lo, have = 0;
    bool okj = ok_lo;
    unsigned mk = 0;
    for (;;) {
      if (okj) { l = j; break; }
      if (!hold && rc_al_diff(t, v.t(j)) > gap) break;
      if (--j < 0) break;
      if (have == 0) { mk = rc_al_rows_ok4<E>(v, j, -1); have = 4; }
      okj = mk & 1u;
      mk >>= 1;
      have--;
    }
  }
  int r = -1;
  {
    int j = lo + 1, have = 0;
    bool okj = ok_hi;
    unsigned mk = 0;
    while (j < n) {
      if (okj) { r = j; break; }
      if ((!hold || l >= 0) && rc_al_diff(v.t(j), t) > gap) break;
      if (++j >= n) break;
      if (have == 0) { mk = rc_al_rows_ok4<E>(v, j, 1); have = 4; }
      okj = mk & 1u;
      mk >>= 1;
      have--;
    }
  }
  if (l < 0 || r < 0) {
    rc_al_invalid(fill, l >= 0 ? l : r, i0, i1);
    return;
  }
  TS tl = v.t(l), tr = v.t(r);
  if (rc_al_diff(tr, tl) > gap) {
    rc_al_invalid(fill, l, i0, i1);
    return;
  }
  ok = 1;
  if (method == 2) { i0 = i1 = l; return; }
  if (method == 1) { i0 = i1 = (rc_al_diff(t, tl) <= rc_al_diff(tr, t)) ? l : r; return; }
  i0 = l;
  i1 = r;
  w = rc_al_diff(t, tl) / rc_al_diff(tr, tl);
}

__device__ __forceinline__ void rc_al_normalise(double q[4]) {
  double n = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
  if (n > 0.0) {
#pragma unroll
    for (int i = 0; i < 4; i++) q[i] = q[i] / n;
  }
}

// Mirror of `slerp` in src/ops/align_cpu.rs: float64, normalised inputs, shortest arc, unit output.
__device__ __forceinline__ void rc_al_slerp(double a[4], double b[4], double w, double r[4]) {
  rc_al_normalise(a);
  rc_al_normalise(b);
  double dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3];
  if (dot < 0.0) {
#pragma unroll
    for (int i = 0; i < 4; i++) b[i] = -b[i];
  }
  double d2 = 0.0, s2 = 0.0;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    d2 = d2 + (a[i] - b[i]) * (a[i] - b[i]);
    s2 = s2 + (a[i] + b[i]) * (a[i] + b[i]);
  }
  double th = 2.0 * atan2(sqrt(d2), sqrt(s2));
  double s = sin(th);
  double ca = 1.0 - w, cb = w;
  if (s > 0.0) {
    ca = sin((1.0 - w) * th) / s;
    cb = sin(w * th) / s;
  }
#pragma unroll
  for (int i = 0; i < 4; i++) r[i] = ca * a[i] + cb * b[i];
  rc_al_normalise(r);
}

// Row guess for time t by linear interpolation between a stream's ends, clamped to [0, n - 1].
template <typename TS>
__device__ __forceinline__ int rc_al_guess(TS t, TS first, TS last, int n) {
  double span = rc_al_diff(last, first);
  double x = span > 0.0 ? rc_al_diff(t, first) / span * (double)(n - 1) : 0.0;
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

__device__ __forceinline__ int rc_al_round16(int x) { return (x + 15) & ~15; }

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

// 16 bytes at global chunk address ga, of which only [lo, hi) may be read (2-byte pieces at the ragged ends).
__device__ __forceinline__ uint4 rc_al_load16(rc_u64 ga, rc_u64 lo, rc_u64 hi) {
  if (ga >= lo && ga + 16 <= hi) return __ldg((const uint4 *)ga);
  unsigned h[8];
#pragma unroll
  for (int b = 0; b < 8; b++) {
    rc_u64 a = ga + 2 * b;
    h[b] = (a >= lo && a < hi) ? (unsigned)__ldg((const unsigned short *)a) : 0u;
  }
  uint4 v;
  v.x = h[0] | (h[1] << 16);
  v.y = h[2] | (h[3] << 16);
  v.z = h[4] | (h[5] << 16);
  v.w = h[6] | (h[7] << 16);
  return v;
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

// The stream's channels of one fused row from a located item (i0, i1, w): linear in the accumulator
// type, quaternion groups SLERPed in float64 (mirror of `write_stream` in src/ops/align_cpu.rs).
template <typename E, typename V>
__device__ __forceinline__ void rc_al_write(const V &v, const RcAlignParams &p, int q, int i0, int i1, double w,
                                            typename E::bits *orow) {
  typedef typename E::bits B;
  typedef typename E::acc A;
  const int2 *__restrict__ cmap = (const int2 *)p.chan_map;
  const int cs = v.c;
  const int off = (int)p.streams[q].offset;
  const int ident = p.wxyz ? 0 : 3;
  const B *r0p = v.row(i0 < 0 ? 0 : i0);
  const B *r1p = v.row(i0 < 0 ? 0 : i1);
  B *o = orow + off;
  for (int c = 0; c < cs;) {
    if (__ldg(cmap + off + c).y < 0) {
      B x;
      if (i0 == -1) {
        x = E::nan();
      } else if (i0 == -2) {
        x = E::store((A)0.0f);
      } else if (i1 == i0) {
        x = r0p[c];
      } else {
        A x0 = E::load(r0p[c]), x1 = E::load(r1p[c]);
        A wa = (A)w;
        x = E::store(x0 + wa * (x1 - x0));
      }
      o[c] = x;
      c++;
      continue;
    }
    // A quaternion group starts at c (groups do not overlap, so the walk meets each at its first channel).
    if (i0 == -1) {
#pragma unroll
      for (int i = 0; i < 4; i++) o[c + i] = E::nan();
    } else if (i0 == -2) {
#pragma unroll
      for (int i = 0; i < 4; i++) o[c + i] = E::store((A)(i == ident ? 1.0f : 0.0f));
    } else {
      double a[4], r[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = (double)E::load(r0p[c + i]);
      if (i1 == i0) {
        rc_al_normalise(a);
#pragma unroll
        for (int i = 0; i < 4; i++) r[i] = a[i];
      } else {
        double b[4];
#pragma unroll
        for (int i = 0; i < 4; i++) b[i] = (double)E::load(r1p[c + i]);
        rc_al_slerp(a, b, w, r);
      }
#pragma unroll
      for (int i = 0; i < 4; i++) o[c + i] = E::store((A)r[i]);
    }
    c += 4;
  }
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
    const int it = k * ns + q, items = p.tile * ns;
    double *sw = (double *)sbuf;
    int *si = (int *)(sw + items);
    sw[it] = w;
    si[it] = i0;
    si[items + it] = i1;
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

// Split form, after the items left (i0, i1, w) in shared memory: one thread per (step, quaternion
// group) SLERPs once and writes the group's 4 channels; one thread per other output element (so
// stores are contiguous), RC_ALIGN_UNROLL elements with their loads issued before any store.
#ifndef RC_ALIGN_UNROLL
#define RC_ALIGN_UNROLL 4
#endif
// rec: the block's items as [w x items][i0 x items][i1 x items] (items = p.tile * num_streams; item
// (k, q) at k * num_streams + q, or stream-major at q * p.tile + k); rowp(q, j, cs): stream q's row j.
// Per-channel facts come from the channel map (lanes of a warp meet several streams: no divergent
// reads of the parameter block).
template <typename E, typename R>
__device__ __forceinline__ void rc_al_rows(const RcAlignSample *s, const RcAlignParams &p, rc_i64 k0, int kcount,
                                           const unsigned char *rec, bool stream_major, const R &rowp) {
  typedef typename E::bits B;
  typedef typename E::acc A;
  const int C = p.total_channels;
  const int ns = p.num_streams;
  const int items = p.tile * ns;
  const double *sw = (const double *)rec;
  const int *si0 = (const int *)(sw + items), *si1 = si0 + items;
  const int2 *__restrict__ cmap = (const int2 *)p.chan_map;
  B *__restrict__ out = (B *)s->out + k0 * C;
  const int ident = p.wxyz ? 0 : 3;
  const int nq = p.num_quats;
  for (int j = threadIdx.x; j < kcount * nq; j += blockDim.x) {
    const int k = j / nq, gi = j - k * nq;
    const int2 gq = __ldg(cmap + C + gi);
    const int q = gq.x, it = stream_major ? q * p.tile + k : k * ns + q;
    const int i0 = si0[it], i1 = si1[it];
    B *o = out + (rc_i64)k * C + gq.y;
    if (i0 == -1) {
#pragma unroll
      for (int i = 0; i < 4; i++) o[i] = E::nan();
    } else if (i0 == -2) {
#pragma unroll
      for (int i = 0; i < 4; i++) o[i] = E::store((A)(i == ident ? 1.0f : 0.0f));
    } else {
      const int2 lq = __ldg(cmap + C + nq + gq.y);  // (channel in the stream, the stream's channels)
      const int cs = lq.y, qf = lq.x;
      const B *r0 = rowp(q, i0, cs) + qf;
      double a[4], r[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = (double)E::load(r0[i]);
      if (i1 == i0) {
        rc_al_normalise(a);
#pragma unroll
        for (int i = 0; i < 4; i++) r[i] = a[i];
      } else {
        const B *r1 = rowp(q, i1, cs) + qf;
        double b[4];
#pragma unroll
        for (int i = 0; i < 4; i++) b[i] = (double)E::load(r1[i]);
        rc_al_slerp(a, b, sw[it], r);
      }
#pragma unroll
      for (int i = 0; i < 4; i++) o[i] = E::store((A)r[i]);
    }
  }
  const int total = kcount * C;
  const int bd = blockDim.x;
  // Element e = k * C + c, stepped by bd without a division per element.
  const int dk = bd / C, dc = bd - dk * C;
  int k = threadIdx.x / C, c = threadIdx.x - k * C;
  for (int base = threadIdx.x; base < total; base += RC_ALIGN_UNROLL * bd) {
    B v[RC_ALIGN_UNROLL];
    bool put[RC_ALIGN_UNROLL];
#pragma unroll
    for (int u = 0; u < RC_ALIGN_UNROLL; u++) {
      const int e = base + u * bd;
      put[u] = false;
      v[u] = E::nan();
      if (u > 0) {
        k += dk;
        c += dc;
        if (c >= C) {
          c -= C;
          k++;
        }
      }
      if (e < total) {
        const int2 m = __ldg(cmap + c);
        if (m.y < 0) {
          const int q = m.x, it = stream_major ? q * p.tile + k : k * ns + q;
          const int i0 = si0[it], i1 = si1[it];
          const int2 lq = __ldg(cmap + C + nq + c);
          const int cs = lq.y, lc = lq.x;
          put[u] = true;
          if (i0 == -1) {
            v[u] = E::nan();
          } else if (i0 == -2) {
            v[u] = E::store((A)0.0f);
          } else {
            const B b0 = rowp(q, i0, cs)[lc];
            if (i1 == i0) {
              v[u] = b0;
            } else {
              const B b1 = rowp(q, i1, cs)[lc];
              const A x0 = E::load(b0), x1 = E::load(b1);
              const A wa = (A)sw[it];
              v[u] = E::store(x0 + wa * (x1 - x0));
            }
          }
        }
      }
    }
#pragma unroll
    for (int u = 0; u < RC_ALIGN_UNROLL; u++)
      if (put[u]) out[base + u * bd] = v[u];
    k += dk;  // to the next round's first element
    c += dc;
    if (c >= C) {
      c -= C;
      k++;
    }
  }
}

// 4. A staged tile (kcount rows of C elements at sbuf + (out address mod 16)) to the output: 16-byte
// stores, 2-byte pieces at its ragged ends.
template <typename B>
__device__ __forceinline__ void rc_al_store_tile(const RcAlignSample *s, rc_i64 k0, int kcount, int C,
                                                 const unsigned char *sbuf) {
  const rc_u64 gout = s->out + (rc_u64)(k0 * C) * (rc_u64)sizeof(B);
  const rc_u64 gend = gout + (rc_u64)kcount * (rc_u64)C * (rc_u64)sizeof(B);
  const rc_u64 c0 = gout & ~15ull;
  const int nch = (int)((((gend + 15) & ~15ull) - c0) >> 4);
  for (int i = threadIdx.x; i < nch; i += blockDim.x) {
    const rc_u64 ga = c0 + 16ull * (rc_u64)i;
    const unsigned char *sp = sbuf + 16 * i;
    if (ga >= gout && ga + 16 <= gend) {
      *(uint4 *)ga = *(const uint4 *)sp;
    } else {
#pragma unroll
      for (int b = 0; b < 8; b++) {
        rc_u64 a = ga + 2 * b;
        if (a >= gout && a < gend) *(unsigned short *)a = *(const unsigned short *)(sp + 2 * b);
      }
    }
  }
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
    rc_al_rows<E>(s, p, k0, kcount, sbuf, false, [&](int q, int j, int cs) { return rc_al_rowp<B>(win[q], sbuf, j, cs); });
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

// Tuning builds (-DRC_ALIGN_VARIANTS=1, or any odd value): float32 entry points under register caps of 64, 48, 40 and 32
// registers per thread, fused (rN) or split (split_rN: items leave (i0, i1, w) in shared memory, then
// rc_al_rows writes the rows), picked per launch by ROBOCACHE_ALIGN_VARIANT, so one process times all.
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
