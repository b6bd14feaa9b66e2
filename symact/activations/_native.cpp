// Native CPU kernels of the fused activations (see _native.py, which compiles and loads this file).
//
// One pass over the input for forward, one for backward (which recomputes what it needs from the
// input), LANES float32 lanes at a time with GCC vector extensions (_native.py sets LANES to the
// CPU's vector width), split over threads. float64 runs the same formulas one element at a time
// with the C library's exp, so that gradcheck and the NumPy transcriptions of the tests see the
// exact formulas. The formulas, and the behaviour at
// NaN and +-inf, are those of the Python kernels in dome.py, saf.py, apl.py and kaf.py; the tests
// compare the two paths.
//
// Layout: x is (N, C, P) contiguous; a channel's parameters are np consecutive values (params +
// c * np); grads is (C, np) in float64. Kernels: 0 PDOME family, 1 RBF, 2 mReLU, 3 hinges
// (APL / S-APL), 4 KAF, 5 Swish, 6 PSSiLU. GroupSort (groupsort.py), which is not element-wise, has
// entry points of its own at the end of the file.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#ifndef LANES
#define LANES 16
#endif
typedef float vf __attribute__((vector_size(4 * LANES)));
typedef int32_t vi __attribute__((vector_size(4 * LANES)));

template <class V> struct Lanes;
template <> struct Lanes<vf> { using S = float; static constexpr int n = LANES; };
template <> struct Lanes<double> { using S = double; static constexpr int n = 1; };
template <> struct Lanes<float> { using S = float; static constexpr int n = 1; };

template <class V> static inline V splat(typename Lanes<V>::S s) { return V{} + s; }
template <> inline double splat<double>(double s) { return s; }

static inline double hsum(vf v) {  // pairs of lanes widened to double, then halved as vectors (a tree)
    typedef double vd __attribute__((vector_size(8 * LANES)));
    vd w = __builtin_convertvector(v, vd);
    double s = 0;
    for (int h = LANES / 2; h >= 1; h /= 2)
        for (int i = 0; i < h; ++i) w[i] += w[i + h];
    s = w[0];
    return s;
}
static inline double hsum(double v) { return v; }

// exp for a vector of floats: exp(x) = 2^n exp(r), n = round(x log2 e), r = x - n ln 2 in two parts
// (Cody and Waite: n * 0.693359375 is exact), |r| <= ln(2)/2, exp(r) by its degree-7 Taylor polynomial
// (truncation below 6e-9, relative). Three variants: exp_ for any x (NaN stays NaN; -inf and results
// below 2^-126 give 0, no subnormals; overflow gives inf), expneg_ for x <= 0 or NaN, expmid_ for
// |x| < 87 or NaN; the last two skip the checks their range does not need.
static inline vf round_(vf t) {
    const float shift = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer
    return (t + shift) - shift;
}
static inline vf exp_r(vf x, vf n) {  // exp(x - n ln 2)
    vf r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    vf p = r * (1.0f / 5040) + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    return p * r + 1.0f;
}
static inline vf pow2(vi e) { return (vf)((e + 127) << 23); }  // 2^e for -126 <= e <= 127

static inline vf expmid_(vf x) {
    vf n = round_(x * 1.44269504088896341f);
    return exp_r(x, n) * pow2(__builtin_convertvector(n, vi));
}
static inline vf expneg_(vf x) {
    vf t = x * 1.44269504088896341f, n = round_(t);
    vi e = __builtin_convertvector(n, vi);
    vf y = exp_r(x, n) * pow2(e < -126 ? vi{} - 126 : e);
    return t < -126.0f ? splat<vf>(0.0f) : y;  // also -inf; NaN compares false and stays NaN
}
static inline vf exp_(vf x) {
    vf t = x * 1.44269504088896341f;
    t = t < -150.0f ? splat<vf>(-150.0f) : t;  // NaN compares false and stays NaN
    t = t > 129.0f ? splat<vf>(129.0f) : t;
    vf n = round_(t);
    vi e = __builtin_convertvector(n, vi);
    vi ec = e < -126 ? vi{} - 126 : e > 127 ? vi{} + 127 : e;  // 2^128 is not a float: 2^127 * 2
    vf y = exp_r(x, n) * pow2(ec);
    y = e > 127 ? y * 2.0f : y;
    y = t > 128.0f ? splat<vf>(std::numeric_limits<float>::infinity()) : y;
    return t < -126.0f ? splat<vf>(0.0f) : y;
}
static inline double expmid_(double x) { return std::exp(x); }
static inline double expneg_(double x) { return std::exp(x); }
static inline double exp_(double x) { return std::exp(x); }

template <class V> static inline V load(const typename Lanes<V>::S* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
}
template <class V> static inline void store(typename Lanes<V>::S* p, V v) { std::memcpy(p, &v, sizeof(V)); }

// Calls fn(x, g) -> value on every element of [0, n) in vectors of V; the last partial vector is
// padded with x = 0, g = 0 (fn must add nothing to its sums there: every kernel's terms carry g).
// With add, the values are added to out instead of stored.
template <class V, class Fn>
static inline void each(const typename Lanes<V>::S* x, const typename Lanes<V>::S* g, typename Lanes<V>::S* out,
                        int64_t n, Fn fn, bool add = false) {
    using S = typename Lanes<V>::S;
    constexpr int L = Lanes<V>::n;
    int64_t i = 0;
    for (; i + L <= n; i += L) {
        V r = fn(load<V>(x + i), g ? load<V>(g + i) : V{});
        if (out) store<V>(out + i, add ? load<V>(out + i) + r : r);
    }
    if (i < n) {
        S bx[L] = {}, bg[L] = {}, bo[L];
        std::memcpy(bx, x + i, (n - i) * sizeof(S));
        if (g) std::memcpy(bg, g + i, (n - i) * sizeof(S));
        store<V>(bo, fn(load<V>(bx), load<V>(bg)));
        for (int64_t j = 0; out && j < n - i; ++j) out[i + j] = add ? out[i + j] + bo[j] : bo[j];
    }
}

struct Ctx {
    const double* k;   // the kernel's constants
    int np;            // parameters per channel
};

// What a kernel derives once per call; the plain one just points at channel ch's parameters.
template <class S>
struct Plain {
    const S* params;
    Ctx c;
    Plain(const Ctx& c, const S* params, int64_t) : params(params), c(c) {}
    const S* at(int64_t ch) const { return params + ch * c.np; }
};

// ------------------------------------------------------------------ kernels
// Each has a Prep (built once per call), fwd(x, y, n, prep, ch) and bwd(x, g, dx, n, prep, ch, grad)
// for one segment of channel ch (grad: that channel's np gradient sums, added to).

// y = shift + scale (A - pi B), A = exp(-((x - mu)/sigma)^2), B = exp(-((x + mu)/sigma)^2) (dome.py)
struct PDome {
    template <class S> using Prep = Plain<S>;
    template <class V, class S>
    static void fwd(const S* x, S* y, int64_t n, const Plain<S>& pr, int64_t ch) {
        const S* p = pr.at(ch);
        const Ctx& c = pr.c;
        const S mu = p[0], inv = S(1) / p[1], pi = p[2], scale = S(c.k[0]), shift = S(c.k[1]);
        each<V>(x, (const S*)nullptr, y, n, [&](V x, V) {
            V z1 = (x - mu) * inv, z2 = (x + mu) * inv;
            return shift + scale * (expneg_(-z1 * z1) - pi * expneg_(-z2 * z2));
        });
    }
    template <class V, class S>
    static void bwd(const S* x, const S* g, S* dx, int64_t n, const Plain<S>& pr, int64_t ch, double* grad) {
        const S* p = pr.at(ch);
        const Ctx& c = pr.c;
        const S mu = p[0], inv = S(1) / p[1], pi = p[2], scale = S(c.k[0]);
        V smu{}, ssig{}, spi{};
        each<V>(x, g, dx, n, [&](V x, V g) {
            V z1 = (x - mu) * inv, z2 = (x + mu) * inv;
            V a = z1 * expneg_(-z1 * z1), b = expneg_(-z2 * z2), pb = pi * z2 * b;
            smu += g * (a + pb);
            ssig += g * (z1 * a - z2 * pb);
            spi += g * b;
            return g * (pb - a) * (S(2) * scale * inv);
        });
        if (!grad) return;
        const double f = 2.0 * double(scale) / double(p[1]);
        grad[0] += f * hsum(smu);
        grad[1] += f * hsum(ssig);
        grad[2] -= double(scale) * hsum(spi);
    }
};

// y = x s, s = sigmoid(beta x); dy/dx = s + beta x s (1 - s), dy/dbeta = x^2 s (1 - s); at x = +-inf the
// limit: 0 where the sigmoid tends to 0, else x (baselines.py)
struct Swish {
    template <class S> using Prep = Plain<S>;
    template <class V, class S>
    static V sig(V x, S beta) { return S(1) / (S(1) + exp_(x * -beta)); }
    template <class V, class S>
    static void fwd(const S* x, S* y, int64_t n, const Plain<S>& pr, int64_t ch) {
        const S beta = pr.at(ch)[0];
        each<V>(x, (const S*)nullptr, y, n, [&](V x, V) {
            const V inf = splat<V>(std::numeric_limits<S>::infinity());
            const S sb = beta > 0 ? S(1) : beta < 0 ? S(-1) : S(0);
            V side = ((x > S(0) ? splat<V>(1) : splat<V>(0)) - (x < S(0) ? splat<V>(1) : splat<V>(0))) * sb;
            V lim = side < S(0) ? splat<V>(0) : x;
            return (x == inf) | (x == -inf) ? lim : x * sig(x, beta);
        });
    }
    template <class V, class S>
    static void bwd(const S* x, const S* g, S* dx, int64_t n, const Plain<S>& pr, int64_t ch, double* grad) {
        const S beta = pr.at(ch)[0];
        V sb{};
        each<V>(x, g, dx, n, [&](V x, V g) {
            V s = sig(x, beta), xs1 = (s - s * s) * x;
            sb += xs1 * x * g;
            return (s + xs1 * beta) * g;
        });
        if (grad) grad[0] += hsum(sb);
    }
};

// y = x (s - b) c, s = sigmoid(a x), c = 1/(1 - b), with a = |alpha| >= 0 and 0 <= b < 1 (pssilu.py);
// dy/dx = c (s - b + a x s (1 - s)), dy/da = c x^2 s (1 - s), dy/db = c^2 x (s - 1). The products of x
// with a factor that has underflowed to exactly 0 are 0 (so the gradients at x = +-inf are the limits of
// the slope; NaN where a = 0 exactly); at x = +-inf the value is the limit.
struct PSSiLU {
    template <class S> using Prep = Plain<S>;
    // s = sigmoid(a x) from e = exp(-|a x|) <= 1 (the cheaper exponential, no overflow), r = 1/(1 + e):
    // s = r for x > 0, e r otherwise; s (1 - s) = e r^2 and s - 1 = -e r for x > 0, -r otherwise
    template <class V, class S>
    static void sig(V x, S a, V& s, V& e, V& r) {
        V ax = x * a;
        e = expneg_(ax < S(0) ? ax : -ax);
        r = S(1) / (S(1) + e);
        s = x > S(0) ? r : e * r;
    }
    template <class V>
    static V times(V x, V t) { return t == 0 ? V{} : x * t; }  // x t, and 0 where t == 0 (x = +-inf too)
    // At x = +-inf the formula gives the limit, except where it is 0 * inf: there s - b = 0, and for finite x
    // the value is 0 as well, so "0 where s == b" is exact everywhere (a NaN x keeps s NaN, and NaN out).
    template <class V, class S>
    static void fwd(const S* x, S* y, int64_t n, const Plain<S>& pr, int64_t ch) {
        const S a = pr.at(ch)[0], b = pr.at(ch)[1], c = S(1) / (S(1) - b);
        if (a == S(0)) {  // the line x (1/2 - b) c (a x would be NaN at x = +-inf)
            const S slope = (S(0.5) - b) * c;
            each<V>(x, (const S*)nullptr, y, n, [&](V x, V) { return slope == S(0) ? (x != x ? x : V{}) : x * slope; });
            return;
        }
        each<V>(x, (const S*)nullptr, y, n, [&](V x, V) {
            V s, e, r;
            sig(x, a, s, e, r);
            V d = s - b;
            return d == S(0) ? V{} : x * d * c;
        });
    }
    // constants k[0], k[1]: whether a and b need their gradients (a fixed beta skips its sum)
    template <class V, class S>
    static void bwd(const S* x, const S* g, S* dx, int64_t n, const Plain<S>& pr, int64_t ch, double* grad) {
        const S a = pr.at(ch)[0], b = pr.at(ch)[1], c = S(1) / (S(1) - b);
        const bool need_a = grad && pr.c.k[0] != 0, need_b = grad && pr.c.k[1] != 0;
        V sa{}, sb{};
        each<V>(x, g, dx, n, [&](V x, V g) {
            V s, e, r;
            sig(x, a, s, e, r);
            V t = e * r * r, xt = times(x, t);
            if (need_a) sa += times(x, xt) * g;
            if (need_b) sb += times(x, x > S(0) ? -e * r : -r) * g;
            return (s - b + a * xt) * c * g;
        });
        if (grad) {
            grad[0] += double(c) * hsum(sa);
            grad[1] += double(c) * double(c) * hsum(sb);
        }
    }
};

// y = exp(-x^2), dy/dx = -2 x y (saf.py)
struct RBF {
    template <class S> using Prep = Plain<S>;
    template <class V, class S>
    static void fwd(const S* x, S* y, int64_t n, const Plain<S>&, int64_t) {
        each<V>(x, (const S*)nullptr, y, n, [&](V x, V) { return expneg_(-x * x); });
    }
    template <class V, class S>
    static void bwd(const S* x, const S* g, S* dx, int64_t n, const Plain<S>&, int64_t, double*) {
        each<V>(x, g, dx, n, [&](V x, V g) { return S(-2) * x * expneg_(-x * x) * g; });
    }
};

// y = 1 - min(|x|, 1); dy/dx = -sign(x) on |x| < 1, else 0 (saf.py, Eq. 2 and 3)
struct MReLU {
    template <class S> using Prep = Plain<S>;
    template <class V, class S>
    static void fwd(const S* x, S* y, int64_t n, const Plain<S>&, int64_t) {
        each<V>(x, (const S*)nullptr, y, n, [&](V x, V) {
            V a = x < S(0) ? -x : x;
            a = a > S(1) ? splat<V>(1) : a;  // NaN stays NaN
            return S(1) - a;
        });
    }
    template <class V, class S>
    static void bwd(const S* x, const S* g, S* dx, int64_t n, const Plain<S>&, int64_t, double*) {
        each<V>(x, g, dx, n, [&](V x, V g) {
            V inside = (x > S(-1)) & (x < S(1)) ? splat<V>(1) : splat<V>(0);
            V sgn = (x > S(0) ? splat<V>(1) : splat<V>(0)) - (x < S(0) ? splat<V>(1) : splat<V>(0));
            return -(inside * sgn) * g;
        });
    }
};

// y = sum_s a+_s ReLU(x - b+_s) + sum_s a-_s ReLU(-x - b-_s) (apl.py); p = a+ (S+), b+ (S+), a- (S-), b- (S-);
// constants S+, S-, and whether the hinges need gradients
struct Hinge {
    template <class S> using Prep = Plain<S>;
    template <class S>
    static S limit(const S* a, const S* b, int m) {
        S slope = 0, cst = 0;
        for (int s = 0; s < m; ++s) { slope += a[s]; cst -= a[s] * b[s]; }
        return slope > 0 ? std::numeric_limits<S>::infinity() : slope < 0 ? -std::numeric_limits<S>::infinity() : cst;
    }
    template <class V, class S>
    static void fwd(const S* x, S* y, int64_t n, const Plain<S>& pr, int64_t ch) {
        const S* p = pr.at(ch);
        const int sp = int(pr.c.k[0]), sn = int(pr.c.k[1]);
        const S *ap = p, *bp = p + sp, *an = p + 2 * sp, *bn = p + 2 * sp + sn;
        const S hi = limit(ap, bp, sp), lo = limit(an, bn, sn);
        each<V>(x, (const S*)nullptr, y, n, [&](V x, V) {
            V y{};
            for (int s = 0; s < sp; ++s) { V r = x - bp[s]; y += ap[s] * (r < S(0) ? splat<V>(0) : r); }
            for (int s = 0; s < sn; ++s) { V r = -x - bn[s]; y += an[s] * (r < S(0) ? splat<V>(0) : r); }
            y = x == std::numeric_limits<S>::infinity() ? splat<V>(hi) : y;
            return x == -std::numeric_limits<S>::infinity() ? splat<V>(lo) : y;
        });
    }
    template <class V, class S>
    static void bwd(const S* x, const S* g, S* dx, int64_t n, const Plain<S>& pr, int64_t ch, double* grad) {
        const S* p = pr.at(ch);
        const int sp = int(pr.c.k[0]), sn = int(pr.c.k[1]), m = sp + sn;
        const bool hinge_grads = grad && pr.c.k[2] != 0;  // the hinges b are learnable
        V acc[2 * 64];  // per hinge: sum g ReLU(.), sum g H(.) (only the 2m used are zeroed: segments are short)
        std::fill_n(acc, 2 * m, V{});
        const S* a[2] = {p, p + 2 * sp};
        const S* b[2] = {p + sp, p + 2 * sp + sn};
        each<V>(x, g, dx, n, [&](V x, V g) {
            V slope{};
            for (int side = 0, j = 0; side < 2; ++side) {
                const int ms = side ? sn : sp;
                const V sx = side ? -x : x;
                for (int s = 0; s < ms; ++s, ++j) {
                    V r = sx - b[side][s];
                    V h = r > S(0) ? splat<V>(1) : splat<V>(0);  // sign of the ramp (NaN: 0, as torch.sign)
                    if (grad) acc[j] += g * (r < S(0) ? splat<V>(0) : r);
                    if (hinge_grads) acc[m + j] += g * h;
                    slope += side ? -a[side][s] * h : a[side][s] * h;
                }
            }
            return slope * g;
        });
        for (int side = 0, j = 0; side < 2; ++side) {
            const int ms = side ? sn : sp, off = side ? 2 * sp : 0;
            for (int s = 0; s < ms && grad; ++s, ++j) {
                grad[off + s] += hsum(acc[j]);
                grad[off + ms + s] -= double(a[side][s]) * hsum(acc[m + j]);
            }
        }
    }
};

// KAF: f(s) = sum_i alpha_i exp(-((s - d_i)/Delta)^2 / 8) (kaf.py: gamma = 1/(2 (2 Delta)^2)), by
// groups of at most 21 points around an anchor d_m: with tau = (s - d_m)/Delta and k = i - m,
// each term is exp(-tau^2/8) p^k exp(-k^2/8), p = exp(tau/4): Horner's rule in p and 1/p. Every
// group is padded to k = -10..10 with zero coefficients, so that the loops have constant bounds and
// the 21 sums of the backward pass stay in registers; tau is clamped to |tau| <= B, where every
// term is exactly 0 and p^10 is still finite.
struct KAF {
    static constexpr int K = 10, W = 2 * K + 1, MAXD = 64;  // larger dictionaries: torch kernel
    struct Group { int i0, len, m; };
    static std::vector<Group> groups(int D) {  // as numpy.array_split(arange(D), ceil(D / 21))
        const int G = (D + W - 1) / W;
        std::vector<Group> out;
        for (int gi = 0, i0 = 0; gi < G; ++gi) {
            const int len = D / G + (gi < D % G ? 1 : 0);
            out.push_back({i0, len, i0 + len / 2});
            i0 += len;
        }
        return out;
    }
    template <class S>
    struct Prep {
        std::vector<Group> gs;
        std::vector<double> scale;  // exp(-k_i^2/8)
        std::vector<S> cf;          // (C, groups, W): alpha_i exp(-k_i^2/8) at k_i + K, zero padded
        S inv, B;
        double delta, lo;
        int D;
        Prep(const Ctx& c, const S* alpha, int64_t C) : gs(groups(int(c.k[0]))), D(int(c.k[0])) {
            delta = 2.0 * c.k[1] / (c.k[0] - 1);
            lo = -c.k[1];
            inv = S(1 / delta);
            B = S(4.0 * (std::log(double(std::numeric_limits<S>::max())) - 4.0) / K);
            for (auto& gr : gs)
                for (int i = gr.i0; i < gr.i0 + gr.len; ++i) scale.push_back(std::exp(-(i - gr.m) * (i - gr.m) / 8.0));
            cf.assign(C * gs.size() * W, S(0));
            for (int64_t ch = 0; ch < C; ++ch)
                for (size_t gi = 0; gi < gs.size(); ++gi)
                    for (int i = gs[gi].i0; i < gs[gi].i0 + gs[gi].len; ++i)
                        cf[(ch * gs.size() + gi) * W + i - gs[gi].m + K] = S(alpha[ch * D + i] * scale[i]);
        }
        const S* coef(int64_t ch, size_t gi) const { return cf.data() + (ch * gs.size() + gi) * W; }
        template <class V>
        V tau(V x, size_t gi) const {
            V t = (x - S(lo + gs[gi].m * delta)) * inv;
            t = t > B ? splat<V>(B) : t;  // NaN stays NaN
            return t < -B ? splat<V>(-B) : t;
        }
    };
    template <class V, class S>
    static void fwd(const S* x, S* y, int64_t n, const Prep<S>& pr, int64_t ch) {
        for (size_t gi = 0; gi < pr.gs.size(); ++gi) {
            S c[W];
            std::copy_n(pr.coef(ch, gi), W, c);
            each<V>(x, (const S*)nullptr, y, n, [&](V x, V) {
                V tau = pr.tau(x, gi), pw = expmid_(tau * S(0.25));  // |tau / 4| <= B / 4 < 87
                return expneg_(tau * tau * S(-0.125)) * poly<V, S>(c, pw, S(1) / pw);
            }, gi > 0);
        }
    }
    // Backward in blocks of NB vectors: first dx and, per vector, w = g exp(-tau^2/8), p and 1/p; then
    // the 21 sums of w p^k, a few powers k at a time, so that their accumulators stay in registers.
    template <class V, class S>
    static void bwd(const S* x, const S* g, S* dx, int64_t n, const Prep<S>& pr, int64_t ch, double* grad) {
        constexpr int L = Lanes<V>::n, NB = 16, KB = 5;
        const S f = S(-0.25 / pr.delta);
        for (size_t gi = 0; gi < pr.gs.size(); ++gi) {
            S c[W], kc[W];
            std::copy_n(pr.coef(ch, gi), W, c);
            for (int k = 0; k < W; ++k) kc[k] = S(k - K) * c[k];
            V acc[W];
            std::fill_n(acc, W, V{});
            for (int64_t i0 = 0; i0 < n; i0 += NB * L) {
                const int64_t m = std::min<int64_t>(NB * L, n - i0);
                const int nv = int((m + L - 1) / L);
                S bx[NB * L], bg[NB * L], bo[NB * L];  // the block, zero padded (g = 0 adds nothing)
                std::memcpy(bx, x + i0, m * sizeof(S));
                std::memcpy(bg, g + i0, m * sizeof(S));
                std::fill(bx + m, bx + nv * L, S(0));
                std::fill(bg + m, bg + nv * L, S(0));
                V w[NB], pw[NB], q[NB], up[NB], down[NB];
                for (int j = 0; j < nv; ++j) {
                    V tau = pr.tau(load<V>(bx + j * L), gi);
                    pw[j] = expmid_(tau * S(0.25));  // |tau / 4| <= B / 4 < 87
                    q[j] = S(1) / pw[j];
                    w[j] = load<V>(bg + j * L) * expneg_(tau * tau * S(-0.125));
                    if (dx) store<V>(bo + j * L, w[j] * (tau * poly<V, S>(c, pw[j], q[j]) - poly<V, S>(kc, pw[j], q[j])) * f);
                    up[j] = down[j] = w[j];
                    acc[K] += w[j];
                }
                if (dx)
                    for (int64_t j = 0; j < m; ++j) dx[i0 + j] = gi ? dx[i0 + j] + bo[j] : bo[j];
                if (!grad) continue;
                for (int k0 = 1; k0 <= K; k0 += KB) {
                    V a[KB], b[KB];
                    for (int k = 0; k < KB; ++k) a[k] = b[k] = V{};
                    for (int j = 0; j < nv; ++j) {
                        V u = up[j], d = down[j];
                        for (int k = 0; k < KB; ++k) {
                            u = u * pw[j];
                            d = d * q[j];
                            a[k] += u;
                            b[k] += d;
                        }
                        up[j] = u;
                        down[j] = d;
                    }
                    for (int k = 0; k < KB && k0 + k <= K; ++k) {
                        acc[K + k0 + k] += a[k];
                        acc[K - k0 - k] += b[k];
                    }
                }
            }
            const Group& gr = pr.gs[gi];
            for (int i = gr.i0; grad && i < gr.i0 + gr.len; ++i) grad[i] += pr.scale[i] * hsum(acc[i - gr.m + K]);
        }
    }
    // sum_k c[k + K] p^k (q = 1/p)
    template <class V, class S>
    static inline V poly(const S* c, V p, V q) {
        V h = splat<V>(c[W - 1]), hn = splat<V>(c[0]);
        for (int k = K - 1; k >= 0; --k) h = h * p + c[k + K];
        for (int k = 1; k < K; ++k) hn = hn * q + c[k];
        return h + hn * q;
    }
};

// ------------------------------------------------------------------ driver

template <class K, class V, class S>
static void run(bool backward, const S* x, const S* g, S* y, double* grads, int64_t numel, int64_t C, int64_t P,
                const S* params, const Ctx& ctx, int threads) {
    if (numel < 65536) threads = 1;
    threads = std::max(1, threads);
    const typename K::template Prep<S> prep(ctx, params, C);
    std::vector<std::vector<double>> part(threads, std::vector<double>(grads ? C * ctx.np : 0, 0.0));
    auto work = [&](int t) {
        // thread t takes elements [lo, hi), cut at vector boundaries, segment by segment (one channel each)
        const int64_t per = ((numel + threads - 1) / threads + LANES - 1) / LANES * LANES;
        const int64_t lo = std::min(numel, t * per), hi = std::min(numel, lo + per);
        for (int64_t e = lo; e < hi;) {
            const int64_t row = e / P, end = std::min(hi, (row + 1) * P);
            const int64_t ch = row % C;
            if (backward)
                K::template bwd<V, S>(x + e, g + e, y ? y + e : nullptr, end - e, prep, ch,
                                      grads ? part[t].data() + ch * ctx.np : nullptr);
            else
                K::template fwd<V, S>(x + e, y + e, end - e, prep, ch);
            e = end;
        }
    };
    // OpenMP: in a process with torch this is torch's own libgomp (same soname), so one pool of threads
    // serves both; a second pool would spin against torch's between calls
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int t = 0; t < threads; ++t) work(t);
    if (grads) {
        std::fill(grads, grads + C * ctx.np, 0.0);
        for (auto& pt : part)
            for (int64_t i = 0; i < C * ctx.np; ++i) grads[i] += pt[i];
    }
}

template <class V, class S>
static int dispatch(int kernel, bool backward, const void* x, const void* g, void* y, double* grads, int64_t numel,
                    int64_t C, int64_t P, const void* params, int np, const double* consts, int threads) {
    const Ctx ctx{consts, np};
    auto go = [&](auto k) {
        run<decltype(k), V, S>(backward, (const S*)x, (const S*)g, (S*)y, grads, numel, C, P, (const S*)params, ctx,
                               threads);
        return 0;
    };
    switch (kernel) {
        case 0: return go(PDome{});
        case 1: return go(RBF{});
        case 2: return go(MReLU{});
        case 3: return (consts[0] + consts[1] <= 64) ? go(Hinge{}) : 2;
        case 4: return consts[0] <= KAF::MAXD ? go(KAF{}) : 2;
        case 5: return go(Swish{});
        case 6: return go(PSSiLU{});
    }
    return 1;
}

// ------------------------------------------------------------------ GroupSort (groupsort.py)
// x is (outer, G, P) contiguous: every (o, p) holds one group of G values at stride P (P = 1: the
// group's values lie side by side, as in a channels-last or 2-D input). Each group is sorted
// ascending by odd-even transposition (G passes of compare-exchanges, swap where a > b: a NaN is never
// swapped, ties keep their order); backward recomputes the swaps from x and applies them to the
// incoming gradient in reverse order (the transpose of the permutation). For G = 2, 3, 4 and 8 the
// group size is a compile-time constant (the network unrolls, its vectors stay in registers); other
// sizes up to GS_MAXG run the same network with run-time bounds. Vectors of LANES positions p at a
// time; where P = 1, blocks of LANES groups transposed into G vectors; the rest one group at a time.
static constexpr int GS_MAXG = 16;

template <int FG, class V>
struct SortNet {  // FG > 0: the group size as a constant (every loop below unrolls)
    using M = decltype(V{} > V{});
    template <class Fn>
    static inline void pairs(int G, Fn fn) {  // fn(step, i): compare-exchange number step, of i and i + 1
        if (FG) G = FG;
        for (int pass = 0; pass < G; ++pass)
            for (int i = pass % 2; i + 1 < G; i += 2) fn(pass * (G / 2) + i / 2, i);
    }
    static inline void cmpx(V& a, V& b, M& m) {
        m = a > b;
        V lo = m ? b : a, hi = m ? a : b;
        a = lo;
        b = hi;
    }
    static inline void sort(V* v, int G) {
        M m;
        pairs(G, [&](int, int i) { cmpx(v[i], v[i + 1], m); });
    }
    static inline void unsort(V* v, V* g, int G) {  // g := P^T g, P the permutation that sorts v
        if (FG) G = FG;
        M ms[(FG ? FG : GS_MAXG) * (FG ? FG : GS_MAXG) / 2 + 1];
        pairs(G, [&](int step, int i) { cmpx(v[i], v[i + 1], ms[step]); });
        for (int pass = G - 1; pass >= 0; --pass)
            for (int j = (G - pass % 2) / 2 - 1; j >= 0; --j) {  // the pairs in reverse: i = pass % 2 + 2 j
                const int i = pass % 2 + 2 * j;
                const M m = ms[pass * (G / 2) + i / 2];
                V a = m ? g[i + 1] : g[i], b = m ? g[i] : g[i + 1];
                g[i] = a;
                g[i + 1] = b;
            }
    }
};

// One group (or LANES groups) at x + p, members P apart; FG > 0: the group size as a constant.
template <int FG, class V, class S>
static inline void gs_block(bool backward, const S* x, const S* g, S* out, int G, int64_t P, int64_t p) {
    if (FG) G = FG;
    V v[GS_MAXG], w[GS_MAXG];
    for (int k = 0; k < G; ++k) v[k] = load<V>(x + k * P + p);
    if (!backward) {
        SortNet<FG, V>::sort(v, G);
        for (int k = 0; k < G; ++k) store<V>(out + k * P + p, v[k]);
        return;
    }
    for (int k = 0; k < G; ++k) w[k] = load<V>(g + k * P + p);
    SortNet<FG, V>::unsort(v, w, G);
    for (int k = 0; k < G; ++k) store<V>(out + k * P + p, w[k]);
}

template <int FG, class V, class S>
static void groupsort(bool backward, const S* x, const S* g, S* out, int64_t outer, int G, int64_t P,
                      int threads) {
    constexpr int L = Lanes<V>::n;
    if (FG) G = FG;
    if (outer * G * P < 65536) threads = 1;
    threads = std::max(1, threads);
    if (P == 1) {  // groups side by side: blocks of L groups, transposed into G vectors of L lanes
        const int64_t blocks = (outer + L - 1) / L;
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t blk = 0; blk < blocks; ++blk) {
            const int64_t o0 = blk * L, m = std::min<int64_t>(L, outer - o0);
            S bx[GS_MAXG * L] = {}, bg[GS_MAXG * L] = {}, bo[GS_MAXG * L];
            for (int64_t l = 0; l < m; ++l)
                for (int k = 0; k < G; ++k) {
                    bx[k * L + l] = x[(o0 + l) * G + k];
                    if (g) bg[k * L + l] = g[(o0 + l) * G + k];
                }
            gs_block<FG, V, S>(backward, bx, g ? bg : nullptr, bo, G, L, 0);
            for (int64_t l = 0; l < m; ++l)
                for (int k = 0; k < G; ++k) out[(o0 + l) * G + k] = bo[k * L + l];
        }
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t o = 0; o < outer; ++o) {
        const int64_t base = o * G * P;
        const S* gb = g ? g + base : nullptr;
        int64_t p = 0;
        for (; p + L <= P; p += L) gs_block<FG, V, S>(backward, x + base, gb, out + base, G, P, p);
        for (; p < P; ++p) gs_block<FG, S, S>(backward, x + base, gb, out + base, G, P, p);
    }
}

template <class V, class S>
static int groupsort_any(int G, bool backward, const void* x, const void* g, void* out, int64_t outer, int64_t P,
                         int threads) {
    const S *xs = (const S*)x, *gs = (const S*)g;
    S* os = (S*)out;
    switch (G) {
        case 2: groupsort<2, V, S>(backward, xs, gs, os, outer, G, P, threads); break;
        case 3: groupsort<3, V, S>(backward, xs, gs, os, outer, G, P, threads); break;
        case 4: groupsort<4, V, S>(backward, xs, gs, os, outer, G, P, threads); break;
        case 8: groupsort<8, V, S>(backward, xs, gs, os, outer, G, P, threads); break;
        default: groupsort<0, V, S>(backward, xs, gs, os, outer, G, P, threads);
    }
    return 0;
}

extern "C" {
// returns 0 on success, 1 for an unknown kernel, 2 for unsupported sizes
int symact_forward(int kernel, int is_double, const void* x, void* y, int64_t numel, int64_t C, int64_t P,
                   const void* params, int np, const double* consts, int threads) {
    return is_double ? dispatch<double, double>(kernel, false, x, nullptr, y, nullptr, numel, C, P, params, np, consts, threads)
                     : dispatch<vf, float>(kernel, false, x, nullptr, y, nullptr, numel, C, P, params, np, consts, threads);
}

// dx (nullable): the input's gradient; grads (nullable): (C, np) parameter gradients, overwritten
int symact_backward(int kernel, int is_double, const void* x, const void* g, void* dx, double* grads, int64_t numel,
                    int64_t C, int64_t P, const void* params, int np, const double* consts, int threads) {
    return is_double ? dispatch<double, double>(kernel, true, x, g, dx, grads, numel, C, P, params, np, consts, threads)
                     : dispatch<vf, float>(kernel, true, x, g, dx, grads, numel, C, P, params, np, consts, threads);
}

// GroupSort: out = x sorted in groups (forward, g = nullptr) or dx = P^T g (backward); returns 2 for G
// over GS_MAXG
int symact_groupsort(int is_double, int backward, const void* x, const void* g, void* out, int64_t outer, int64_t G,
                     int64_t P, int threads) {
    if (G < 1 || G > GS_MAXG) return 2;
    return is_double ? groupsort_any<double, double>(int(G), backward, x, g, out, outer, P, threads)
                     : groupsort_any<vf, float>(int(G), backward, x, g, out, outer, P, threads);
}
}
