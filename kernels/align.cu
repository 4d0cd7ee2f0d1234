// align.cu: multi-rate streams fused onto one reference clock, one launch per ragged batch.
// common.cuh is prepended by the Rust kernel registry (src/gpu/kernels.rs).
//
// Each block takes one tile of `tile` consecutive reference steps of one sample, all streams
// (`tile_sample[blockIdx.x]` names the sample; RcAlignSample::tile_begin its first block).
// Phase 0: each stream's ends, and a window of its timestamps around the tile's time range (an
// interpolation guess plus a margin) copied to shared memory with coalesced loads, so the searches
// below need no dependent global loads (a step the window misses searches global memory); inside
// the window a step's row is an interpolation guess plus a short walk (RC_ALIGN_WALK).
// Phase 1: one thread per (stream, step) computes the step time (the same float64/int64 arithmetic
// as the Rust CPU backend, compiled with --fmad=false), finds the last row at or before it, walks
// over missing (NaN) rows to the nearest valid rows on each side (rows tested several at a time),
// applies max_gap and the fill policy, writes the valid flag and leaves (i0, i1, w) in shared
// memory (mirror of `locate` in src/ops/align.rs). Quaternion groups: one thread per (step, group)
// SLERPs in float64 once and writes the group's 4 channels. Phase 2: every other fused channel,
// one thread per output element, so stores are contiguous; each thread issues RC_ALIGN_UNROLL
// elements' loads before storing; (step, channel) of an element by a multiply-high
// (RC_ALIGN_FASTDIV); the streams' data pointers sit in shared memory.

#define RC_ALIGN_MAX_TILE 256
// (step, stream) items per block: tile * num_streams <= this (src/ops/align_gpu.rs tile_for).
#define RC_ALIGN_MAX_ITEMS 1024
// Timestamps (all streams) a block caches in shared memory (-DRC_ALIGN_WINDOW=n, static shared
// memory stays under 48 KB up to about 3600).
#ifndef RC_ALIGN_WINDOW
#define RC_ALIGN_WINDOW 2560
#endif
// Output elements per thread whose loads are issued before any store (-DRC_ALIGN_UNROLL=n to tune).
// Search inside the timestamp window: 1 = interpolation guess and walk, 0 = binary search.
#ifndef RC_ALIGN_WALK
#define RC_ALIGN_WALK 1
#endif
// Output element -> (step, channel) by a multiply-high instead of an integer division.
#ifndef RC_ALIGN_FASTDIV
#define RC_ALIGN_FASTDIV 1
#endif
#ifndef RC_ALIGN_UNROLL
#define RC_ALIGN_UNROLL 4
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

// A row is missing when any channel is NaN. No early exit: the loads are independent, so they
// are all in flight at once instead of one round trip per channel.
template <typename E>
__device__ __forceinline__ bool rc_al_row_ok(const typename E::bits *__restrict__ d, int j, int c) {
  const typename E::bits *r = d + (rc_i64)j * c;
  bool ok = true;
#pragma unroll 8
  for (int i = 0; i < c; i++) {
    typename E::acc x = E::load(__ldg(r + i));
    ok = ok & (x == x);
  }
  return ok;
}

// Missing-row flags of rows j, j + dir, j + 2 dir, j + 3 dir as bits 0..3 (rows outside [0, n) read
// as missing), loaded together: a walk over a run of NaN rows takes a quarter of the round trips.
template <typename E>
__device__ __forceinline__ unsigned rc_al_rows_ok4(const typename E::bits *__restrict__ d, int j, int dir, int n,
                                                   int c) {
  unsigned m = 0;
#pragma unroll
  for (int u = 0; u < 4; u++) {
    int r = j + u * dir;
    bool in = r >= 0 && r < n;
    if (rc_al_row_ok<E>(d, in ? r : j, c) && in) m |= 1u << u;
  }
  return m;
}

// Invalid step: i0 = i1 = row to hold, -1 for NaN, -2 for zero.
__device__ __forceinline__ void rc_al_invalid(int fill, int h, int &i0, int &i1) {
  i0 = i1 = fill == 0 ? (h >= 0 ? h : -1) : (fill == 1 ? -1 : -2);
}

// The block's cached window of one stream's timestamps: rows [s0, s0 + len) at sts[off..].
struct RcAlSeg {
  int s0, len, off, pad;
};

// Timestamp j of a stream: from the block's shared-memory window when it holds row j.
template <typename TS>
__device__ __forceinline__ TS rc_al_ts(const TS *__restrict__ ts, const TS *sg, const RcAlSeg &g, int j) {
  unsigned u = (unsigned)(j - g.s0);
  return u < (unsigned)g.len ? sg[u] : __ldg(ts + j);
}

// Mirror of `locate` in src/ops/align.rs. Outputs: (i0, i1, w) with i0 == i1 for a copy, i0 < 0
// for a fill (-1 NaN, -2 zero); ok = valid flag. The search for the last row with ts <= t runs in
// the block's shared-memory window when the window brackets t (the usual case), else in global
// memory (interpolation guess, exponential search, binary search, as resample). The rows on either
// side of t are tested for NaN with independent loads, so both are in flight at once.
template <typename TS, typename E>
__device__ __forceinline__ void rc_al_locate(const TS *__restrict__ ts, const typename E::bits *__restrict__ d,
                                             int n, int c, TS t, TS first, TS last, const TS *sg,
                                             const RcAlSeg &sgd, int method, double gap, int fill, int &i0,
                                             int &i1, double &w, int &ok) {
  w = 0.0;
  ok = 0;
  const bool hold = fill == 0;
  if (t < first || t > last) {
    int h = -1;
    if (hold) {
      if (t < first) {
        for (int j = 0; j < n; j++)
          if (rc_al_row_ok<E>(d, j, c)) { h = j; break; }
      } else {
        for (int j = n - 1; j >= 0; j--)
          if (rc_al_row_ok<E>(d, j, c)) { h = j; break; }
      }
    }
    rc_al_invalid(fill, h, i0, i1);
    return;
  }
  int lo;
  const int wl = sgd.len;
  if (wl > 0 && sg[0] <= t && (t < sg[wl - 1] || sgd.s0 + wl == n)) {
#if RC_ALIGN_WALK
    // Interpolation guess inside the window, then a walk to the last entry <= t (rows are near
    // uniform in time, so the walk is a step or two; the result is the binary search's).
    double span = rc_al_diff(sg[wl - 1], sg[0]);
    int a = span > 0.0 ? (int)(rc_al_diff(t, sg[0]) / span * (double)(wl - 1)) : 0;
    a = a < 0 ? 0 : (a > wl - 1 ? wl - 1 : a);
    while (a > 0 && sg[a] > t) a--;
    while (a + 1 < wl && sg[a + 1] <= t) a++;
#else
    int a = 0, b = wl - 1;
    while (a < b) {
      int mid = (a + b + 1) >> 1;
      if (sg[mid] <= t) a = mid; else b = mid - 1;
    }
#endif
    lo = sgd.s0 + a;
  } else {
    // Last index with ts <= t: interpolation guess, exponential search, binary search.
    double span = rc_al_diff(last, first);
    int g = span > 0.0 ? (int)(rc_al_diff(t, first) / span * (double)(n - 1)) : 0;
    g = g < 0 ? 0 : (g > n - 1 ? n - 1 : g);
    int hi;
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
  }
  // Rows lo and lo + 1 tested together (row n - 1 stands in for a missing lo + 1).
  const bool ok_lo = rc_al_row_ok<E>(d, lo, c);
  const bool ok_hi = rc_al_row_ok<E>(d, lo + 1 < n ? lo + 1 : lo, c) && lo + 1 < n;
  const TS tlo = rc_al_ts(ts, sg, sgd, lo);
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
      if (!hold && rc_al_diff(t, rc_al_ts(ts, sg, sgd, j)) > gap) break;
      if (--j < 0) break;
      if (have == 0) { mk = rc_al_rows_ok4<E>(d, j, -1, n, c); have = 4; }
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
      if ((!hold || l >= 0) && rc_al_diff(rc_al_ts(ts, sg, sgd, j), t) > gap) break;
      if (++j >= n) break;
      if (have == 0) { mk = rc_al_rows_ok4<E>(d, j, 1, n, c); have = 4; }
      okj = mk & 1u;
      mk >>= 1;
      have--;
    }
  }
  if (l < 0 || r < 0) {
    rc_al_invalid(fill, l >= 0 ? l : r, i0, i1);
    return;
  }
  TS tl = rc_al_ts(ts, sg, sgd, l), tr = rc_al_ts(ts, sg, sgd, r);
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

// Mirror of `slerp` in src/ops/align.rs: float64, normalised inputs, shortest arc, unit output.
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

template <typename E>
__device__ __forceinline__ typename E::bits rc_al_from_f64(double x) {
  return E::store((typename E::acc)x);
}

// Row guess for time t by linear interpolation between a stream's ends, clamped to [0, n - 1].
template <typename TS>
__device__ __forceinline__ int rc_al_guess(TS t, TS first, TS last, int n) {
  double span = rc_al_diff(last, first);
  double x = span > 0.0 ? rc_al_diff(t, first) / span * (double)(n - 1) : 0.0;
  x = x < 0.0 ? 0.0 : (x > (double)(n - 1) ? (double)(n - 1) : x);
  return (int)x;
}

// Phase 0: each stream's ends, and the window of its timestamps the tile's steps most likely
// fall in (interpolation guesses for the tile's first and last step, widened by a margin), then
// the windows' places in shared memory (in stream order, cut where the buffer ends). A window
// that misses a step only costs that step a search in global memory.
template <typename TS>
__device__ __forceinline__ void rc_al_windows(const RcAlignSample *s, const RcAlignParams &p, rc_i64 k0, int kcount,
                                              TS *sfirst, TS *slast, RcAlSeg *seg, TS *sts) {
  const int ns = p.num_streams;
  for (int q = threadIdx.x; q < ns; q += blockDim.x) {
    const TS *ts = (const TS *)s->ts[q];
    const int n = (int)s->len[q];
    TS first = __ldg(ts), last = __ldg(ts + n - 1);
    TS ta = rc_al_target<TS>(s, p, k0), tb = rc_al_target<TS>(s, p, k0 + kcount - 1);
    sfirst[q] = first;
    slast[q] = last;
    int m = 16 + (n >> 7);
    int g0 = rc_al_guess(ta, first, last, n) - m, g1 = rc_al_guess(tb, first, last, n) + m + 1;
    g0 = g0 < 0 ? 0 : g0;
    g1 = g1 > n - 1 ? n - 1 : g1;
    seg[q].s0 = g0;
    seg[q].len = g1 - g0 + 1;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int off = 0;
    for (int q = 0; q < ns; q++) {
      int len = seg[q].len;
      int room = RC_ALIGN_WINDOW - off;
      len = len < room ? len : room;
      seg[q].len = len;
      seg[q].off = off;
      off += len;
    }
    seg[RC_ALIGN_MAX_STREAMS].off = off;
  }
  __syncthreads();
  // Coalesced copy of every window, four loads in flight per thread.
  const int total = seg[RC_ALIGN_MAX_STREAMS].off;
  const int bd = blockDim.x;
  for (int base = threadIdx.x; base < total; base += 4 * bd) {
    TS v[4];
#pragma unroll
    for (int u = 0; u < 4; u++) {
      int i = base + u * bd;
      if (i < total) {
        int q = 0;
        while (q + 1 < ns && i >= seg[q + 1].off) q++;
        v[u] = __ldg((const TS *)s->ts[q] + seg[q].s0 + (i - seg[q].off));
      }
    }
#pragma unroll
    for (int u = 0; u < 4; u++) {
      int i = base + u * bd;
      if (i < total) sts[i] = v[u];
    }
  }
}

template <typename TS, typename E>
__device__ __forceinline__ void rc_al_phase1(const RcAlignSample *s, const RcAlignParams &p,
                                             const RcAlignStream *st, rc_i64 k0, int kcount, int *si0,
                                             int *si1, double *sw, double *sts_raw, double *sends, RcAlSeg *seg) {
  TS *sts = (TS *)sts_raw;
  TS *sfirst = (TS *)sends, *slast = (TS *)sends + RC_ALIGN_MAX_STREAMS;
  rc_al_windows<TS>(s, p, k0, kcount, sfirst, slast, seg, sts);
  __syncthreads();
  const int ns = p.num_streams;
  const int items = kcount * ns;
  TS *out_ts = (TS *)s->out_ts;
  unsigned char *valid = (unsigned char *)s->valid;
  // Stream-major: neighbouring threads take neighbouring steps of one stream (one control path per
  // warp); results go to shared memory step-major ([k * ns + q]).
  for (int j = threadIdx.x; j < items; j += blockDim.x) {
    int q = j / kcount, k = j - q * kcount;
    int it = k * ns + q;
    TS t = rc_al_target<TS>(s, p, k0 + k);
    if (q == 0) out_ts[k0 + k] = t;
    int i0, i1, ok;
    double w;
    const RcAlSeg g = seg[q];
    rc_al_locate<TS, E>((const TS *)s->ts[q], (const typename E::bits *)s->data[q], (int)s->len[q],
                        (int)st[q].channels, t, sfirst[q], slast[q], sts + g.off, g, st[q].method,
                        st[q].max_gap, p.fill, i0, i1, w, ok);
    valid[(k0 + k) * ns + q] = (unsigned char)ok;
    si0[it] = i0;
    si1[it] = i1;
    sw[it] = w;
  }
}

template <typename E>
__device__ __forceinline__ void rc_align(const RcAlignSample *__restrict__ samples,
                                         const int *__restrict__ tile_sample, const RcAlignParams &p) {
  typedef typename E::bits B;
  typedef typename E::acc A;
  __shared__ int si0[RC_ALIGN_MAX_ITEMS];
  __shared__ int si1[RC_ALIGN_MAX_ITEMS];
  __shared__ double sw[RC_ALIGN_MAX_ITEMS];
  __shared__ double sts[RC_ALIGN_WINDOW];
  __shared__ double sends[2 * RC_ALIGN_MAX_STREAMS];
  __shared__ RcAlSeg seg[RC_ALIGN_MAX_STREAMS + 1];
  __shared__ RcAlignStream st[RC_ALIGN_MAX_STREAMS];
  if (threadIdx.x == 0) {
#pragma unroll
    for (int q = 0; q < RC_ALIGN_MAX_STREAMS; q++) st[q] = p.streams[q];
  }
  __shared__ rc_u64 sdata[RC_ALIGN_MAX_STREAMS];
  const RcAlignSample *s = samples + __ldg(tile_sample + blockIdx.x);
  for (int q = threadIdx.x; q < p.num_streams; q += blockDim.x) sdata[q] = s->data[q];
  const rc_i64 k0 = ((rc_i64)blockIdx.x - s->tile_begin) * p.tile;
  const rc_i64 left = s->num_out - k0;
  const int kcount = left < p.tile ? (int)left : p.tile;
  __syncthreads();
  if (kcount <= 0) return;  // uniform across the block

  if (p.ts_int) rc_al_phase1<rc_i64, E>(s, p, st, k0, kcount, si0, si1, sw, sts, sends, seg);
  else rc_al_phase1<double, E>(s, p, st, k0, kcount, si0, si1, sw, sts, sends, seg);
  __syncthreads();

  const int C = p.total_channels;
  const int ns = p.num_streams;
  const int2 *__restrict__ cmap = (const int2 *)p.chan_map;
  B *__restrict__ out = (B *)s->out + k0 * C;
  const int ident = p.wxyz ? 0 : 3;

  // Quaternion groups: one thread per (step, group) SLERPs once and writes the group's 4 channels
  // (the group list follows the channel map: (stream, first fused channel) per group).
  const int nq = p.num_quats;
  const int qitems = kcount * nq;
  for (int j = threadIdx.x; j < qitems; j += blockDim.x) {
    int k = j / nq, gi = j - k * nq;
    int2 gq = __ldg(cmap + C + gi);
    int q = gq.x;
    int it = k * ns + q;
    int i0 = si0[it], i1 = si1[it];
    B *o = out + (rc_i64)k * C + gq.y;
    if (i0 == -1) {
#pragma unroll
      for (int i = 0; i < 4; i++) o[i] = E::nan();
    } else if (i0 == -2) {
#pragma unroll
      for (int i = 0; i < 4; i++) o[i] = E::store((A)(i == ident ? 1.0f : 0.0f));
    } else {
      const B *__restrict__ d = (const B *)sdata[q];
      int cs = (int)st[q].channels;
      int qf = gq.y - (int)st[q].offset;  // stream-local first channel of the group
      double a[4], r[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = (double)E::load(__ldg(d + (rc_i64)i0 * cs + qf + i));
      if (i1 == i0) {
        rc_al_normalise(a);
#pragma unroll
        for (int i = 0; i < 4; i++) r[i] = a[i];
      } else {
        double b[4];
#pragma unroll
        for (int i = 0; i < 4; i++) b[i] = (double)E::load(__ldg(d + (rc_i64)i1 * cs + qf + i));
        rc_al_slerp(a, b, sw[it], r);
      }
#pragma unroll
      for (int i = 0; i < 4; i++) o[i] = rc_al_from_f64<E>(r[i]);
    }
  }

  // Every other channel: one thread per output element, contiguous stores; RC_ALIGN_UNROLL
  // elements per thread with their loads issued before any store. Missing or filled steps load row 0 (every
  // stream has a row) and discard it, so the loads need no branch.
  const int total = kcount * C;
  const int bd = blockDim.x;
#if RC_ALIGN_FASTDIV
  // e / C as a multiply-high: exact while e * C < 2^32 (e < total = kcount * C), else a division.
  const unsigned long long cmul = 0xFFFFFFFFull / (unsigned)C + 1;
  const bool fast = (unsigned long long)total * (unsigned long long)C < (1ull << 32);
#endif
  for (int base = threadIdx.x; base < total; base += RC_ALIGN_UNROLL * bd) {
    B v[RC_ALIGN_UNROLL];
    bool put[RC_ALIGN_UNROLL];
#pragma unroll
    for (int u = 0; u < RC_ALIGN_UNROLL; u++) {
      int e = base + u * bd;
      put[u] = false;
      v[u] = E::nan();
      if (e < total) {
#if RC_ALIGN_FASTDIV
        int k = fast ? (int)(((unsigned long long)(unsigned)e * cmul) >> 32) : e / C;
#else
        int k = e / C;
#endif
        int c = e - k * C;
        int2 m = __ldg(cmap + c);
        if (m.y < 0) {
          int q = m.x;
          int it = k * ns + q;
          int i0 = si0[it], i1 = si1[it];
          int cs = (int)st[q].channels;
          int lc = c - (int)st[q].offset;
          const B *__restrict__ d = (const B *)sdata[q];
          int r0 = i0 < 0 ? 0 : i0, r1 = i0 < 0 ? 0 : i1;
          B b0 = __ldg(d + (rc_i64)r0 * cs + lc), b1 = __ldg(d + (rc_i64)r1 * cs + lc);
          put[u] = true;
          if (i0 == -1) {
            v[u] = E::nan();
          } else if (i0 == -2) {
            v[u] = E::store((A)0.0f);
          } else if (i1 == i0) {
            v[u] = b0;
          } else {
            A x0 = E::load(b0), x1 = E::load(b1);
            A w = (A)sw[it];
            v[u] = E::store(x0 + w * (x1 - x0));
          }
        }
      }
    }
#pragma unroll
    for (int u = 0; u < RC_ALIGN_UNROLL; u++)
      if (put[u]) out[base + u * bd] = v[u];
  }
}

// Blocks per SM the register allocation must allow (-DRC_ALIGN_MIN_BLOCKS=n to tune).
#ifndef RC_ALIGN_MIN_BLOCKS
#define RC_ALIGN_MIN_BLOCKS 1
#endif

#define RC_ALIGN(E, SUFFIX)                                                                  \
  extern "C" __global__ void __launch_bounds__(256, RC_ALIGN_MIN_BLOCKS)                     \
      align_##SUFFIX(const RcAlignSample *__restrict__ samples,                              \
                     const int *__restrict__ tile_sample, RcAlignParams p) {                 \
    rc_align<E>(samples, tile_sample, p);                                                    \
  }

RC_ALIGN(RcF32, f32)
RC_ALIGN(RcF64, f64)
RC_ALIGN(RcF16, f16)
RC_ALIGN(RcBF16, bf16)
