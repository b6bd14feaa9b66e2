// Native CPU kernels of the fused activations (see _native.py, which compiles and loads this file).
//
// One pass over the input for forward, one for backward (which recomputes what it needs from the
// input), 16 float32 lanes at a time with GCC vector extensions, split over threads. float64 runs
// the same formulas one element at a time with the C library's exp, so that gradcheck and the
// NumPy transcriptions of the tests see the exact formulas. The formulas, and the behaviour at
// NaN and +-inf, are those of the Python kernels in dome.py, saf.py, apl.py and kaf.py; the tests
// compare the two paths.
//
// Layout: x is (N, C, P) contiguous; a channel's parameters are np consecutive values (params +
// c * np); grads is (C, np) in float64. Kernels: 0 PDOME family, 1 RBF, 2 mReLU, 3 hinges
// (APL / S-APL), 4 KAF, 5 Swish.
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

template <class V> static inline V splat(typename Lanes<V>::S s) { return V{} + s; }
template <> inline double splat<double>(double s) { return s; }

static inline double hsum(vf v) {
    double s = 0;
    for (int i = 0; i < LANES; ++i) s += v[i];
    return s;
}
static inline double hsum(double v) { return v; }

// exp for a vector of floats: exp(x) = 2^n exp(r), n = round(x log2 e), r = x - n ln 2 in two parts
// (Cody and Waite: n * 0.693359375 is exact), |r| <= ln(2)/2, exp(r) by its degree-7 Taylor polynomial
// (truncation below 6e-9, relative). NaN stays NaN; -inf and results below 2^-126 give 0 (no
// subnormals); overflow gives inf.
static inline vf exp_(vf x) {
    vf t = x * 1.44269504088896341f;
    t = t < -150.0f ? splat<vf>(-150.0f) : t;  // NaN compares false and stays NaN
    t = t > 129.0f ? splat<vf>(129.0f) : t;
    const float shift = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer
    vf n = (t + shift) - shift;
    vf r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    vf p = r * (1.0f / 5040) + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    vi e = __builtin_convertvector(n, vi);
    vi ec = e < -126 ? vi{} - 126 : e > 127 ? vi{} + 127 : e;  // 2^128 is not a float: 2^127 * 2
    vf y = p * (vf)((ec + 127) << 23);
    y = e > 127 ? y * 2.0f : y;
    y = t > 128.0f ? splat<vf>(std::numeric_limits<float>::infinity()) : y;
    return t < -126.0f ? splat<vf>(0.0f) : y;
}
static inline double exp_(double x) { return std::exp(x); }

template <class V> static inline V load(const typename Lanes<V>::S* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
}
template <class V> static inline void store(typename Lanes<V>::S* p, V v) { std::memcpy(p, &v, sizeof(V)); }

// Calls fn(x, g) -> value on every element of [0, n) in vectors of V; the last partial vector is
// padded with x = 0, g = 0 (fn must add nothing to its sums there: every kernel's terms carry g).
template <class V, class Fn>
static inline void each(const typename Lanes<V>::S* x, const typename Lanes<V>::S* g, typename Lanes<V>::S* out,
                        int64_t n, Fn fn) {
    using S = typename Lanes<V>::S;
    constexpr int L = Lanes<V>::n;
    int64_t i = 0;
    for (; i + L <= n; i += L) {
        V r = fn(load<V>(x + i), g ? load<V>(g + i) : V{});
        if (out) store<V>(out + i, r);
    }
    if (i < n) {
        S bx[L] = {}, bg[L] = {}, bo[L];
        std::memcpy(bx, x + i, (n - i) * sizeof(S));
        if (g) std::memcpy(bg, g + i, (n - i) * sizeof(S));
        store<V>(bo, fn(load<V>(bx), load<V>(bg)));
        if (out) std::memcpy(out + i, bo, (n - i) * sizeof(S));
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
            return shift + scale * (exp_(-z1 * z1) - pi * exp_(-z2 * z2));
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
            V a = z1 * exp_(-z1 * z1), b = exp_(-z2 * z2), pb = pi * z2 * b;
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

// y = exp(-x^2), dy/dx = -2 x y (saf.py)
struct RBF {
    template <class S> using Prep = Plain<S>;
    template <class V, class S>
    static void fwd(const S* x, S* y, int64_t n, const Plain<S>&, int64_t) {
        each<V>(x, (const S*)nullptr, y, n, [&](V x, V) { return exp_(-x * x); });
    }
    template <class V, class S>
    static void bwd(const S* x, const S* g, S* dx, int64_t n, const Plain<S>&, int64_t, double*) {
        each<V>(x, g, dx, n, [&](V x, V g) { return S(-2) * x * exp_(-x * x) * g; });
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
// each term is exp(-tau^2/8) p^k exp(-k^2/8), p = exp(tau/4): Horner's rule in p and 1/p.
struct KAF {
    struct Group { int i0, len, m; };
    static std::vector<Group> groups(int D) {  // as numpy.array_split(arange(D), ceil(D / 21))
        const int G = (D + 20) / 21;
        std::vector<Group> out;
        for (int gi = 0, i0 = 0; gi < G; ++gi) {
            const int len = D / G + (gi < D % G ? 1 : 0);
            out.push_back({i0, len, i0 + len / 2});
            i0 += len;
        }
        return out;
    }
    template <class S>
    static S bound(int kmax) {  // |tau| beyond which every term is exactly 0 and p^k would overflow
        return S(4.0 * (std::log(double(std::numeric_limits<S>::max())) - 4.0) / std::max(kmax, 1));
    }
    // h = sum_k c_k p^k over a group (c: the group's coefficients, scaled by exp(-k^2/8))
    template <class V, class S>
    static inline V poly(const S* cf, const Group& gr, V p, V q) {
        const int last = gr.i0 + gr.len - 1;
        V h = splat<V>(cf[last]);
        for (int i = last - 1; i >= gr.m; --i) h = h * p + cf[i];
        if (gr.m > gr.i0) {
            V hn = splat<V>(cf[gr.i0]);
            for (int i = gr.i0 + 1; i < gr.m; ++i) hn = hn * q + cf[i];
            h += hn * q;
        }
        return h;
    }
    // groups, anchors, clamps, exp(-k^2/8), and every channel's Horner coefficients c_i and k_i c_i
    template <class S>
    struct Prep {
        std::vector<Group> gs;
        std::vector<S> anchor, B;
        std::vector<double> scale;
        std::vector<S> cf, kcf;  // (C, D)
        S inv;
        double delta;
        int D;
        Prep(const Ctx& c, const S* alpha, int64_t C) : gs(groups(int(c.k[0]))), D(int(c.k[0])) {
            delta = 2.0 * c.k[1] / (c.k[0] - 1);
            inv = S(1 / delta);
            std::vector<int> k(D);
            for (auto& gr : gs) {
                anchor.push_back(S(-c.k[1] + gr.m * delta));
                B.push_back(bound<S>(std::max(gr.m - gr.i0, gr.i0 + gr.len - 1 - gr.m)));
                for (int i = gr.i0; i < gr.i0 + gr.len; ++i) {
                    k[i] = i - gr.m;
                    scale.push_back(std::exp(-k[i] * k[i] / 8.0));
                }
            }
            cf.resize(C * D);
            kcf.resize(C * D);
            for (int64_t ch = 0; ch < C; ++ch)
                for (int i = 0; i < D; ++i) {
                    cf[ch * D + i] = S(alpha[ch * D + i] * scale[i]);
                    kcf[ch * D + i] = S(k[i]) * cf[ch * D + i];
                }
        }
    };
    static constexpr int MAXD = 64;  // larger dictionaries run the torch kernel
    // one channel's setup in locals (so that the compiler keeps it in registers)
    template <class S>
    struct Local {
        int ng;
        Group gs[(MAXD + 20) / 21];
        S anchor[(MAXD + 20) / 21], B[(MAXD + 20) / 21], cf[MAXD], kcf[MAXD];
        Local(const Prep<S>& pr, int64_t ch) : ng(int(pr.gs.size())) {
            for (int gi = 0; gi < ng; ++gi) { gs[gi] = pr.gs[gi]; anchor[gi] = pr.anchor[gi]; B[gi] = pr.B[gi]; }
            std::copy_n(pr.cf.data() + ch * pr.D, pr.D, cf);
            std::copy_n(pr.kcf.data() + ch * pr.D, pr.D, kcf);
        }
        template <class V>
        V tau(V x, int gi, S inv) const {
            V t = (x - anchor[gi]) * inv;
            t = t > B[gi] ? splat<V>(B[gi]) : t;  // NaN stays NaN
            return t < -B[gi] ? splat<V>(-B[gi]) : t;
        }
    };
    template <class V, class S>
    static void fwd(const S* x, S* y, int64_t n, const Prep<S>& pr, int64_t ch) {
        const Local<S> lc(pr, ch);
        const S inv = pr.inv;
        each<V>(x, (const S*)nullptr, y, n, [&](V x, V) {
            V y{};
            for (int gi = 0; gi < lc.ng; ++gi) {
                V tau = lc.tau(x, gi, inv), pw = exp_(tau * S(0.25));
                y += exp_(tau * tau * S(-0.125)) * poly<V, S>(lc.cf, lc.gs[gi], pw, S(1) / pw);
            }
            return y;
        });
    }
    template <class V, class S>
    static void bwd(const S* x, const S* g, S* dx, int64_t n, const Prep<S>& pr, int64_t ch, double* grad) {
        const Local<S> lc(pr, ch);
        const S inv = pr.inv;
        const bool want_dx = dx != nullptr, want_grad = grad != nullptr;
        V acc[MAXD];  // sum g exp(-tau^2/8) p^k, per dictionary point (only the D used are zeroed)
        std::fill_n(acc, pr.D, V{});
        each<V>(x, g, dx, n, [&](V x, V g) {
            V d{};
            for (int gi = 0; gi < lc.ng; ++gi) {
                const Group gr = lc.gs[gi];
                V tau = lc.tau(x, gi, inv), pw = exp_(tau * S(0.25)), q = S(1) / pw, e0 = exp_(tau * tau * S(-0.125));
                if (want_dx) d += e0 * (tau * poly<V, S>(lc.cf, gr, pw, q) - poly<V, S>(lc.kcf, gr, pw, q));
                if (!want_grad) continue;
                V w = g * e0, pk = w;
                acc[gr.m] += w;
                for (int i = gr.m + 1; i < gr.i0 + gr.len; ++i) { pk = pk * pw; acc[i] += pk; }
                pk = w;
                for (int i = gr.m - 1; i >= gr.i0; --i) { pk = pk * q; acc[i] += pk; }
            }
            return d * g * S(-0.25 / pr.delta);
        });
        if (want_grad)
            for (int i = 0; i < pr.D; ++i) grad[i] += pr.scale[i] * hsum(acc[i]);
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
    }
    return 1;
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
}
