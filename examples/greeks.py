"""Black-Scholes option prices and their Greeks by automatic differentiation.

For a batch of European calls, delta (dV/dS), gamma (d2V/dS2), vega (dV/dsigma)
and rho (dV/dr) come from ft.grad and ft.hessian of the price function, and are
checked against the analytic Black-Scholes formulas and against bump-and-reprice
finite differences.

Run: python examples/greeks.py
"""
from math import erf, exp, log, pi, sqrt

import numpy as np

import ftrans as ft
import ftrans.numpy as fnp
from ftrans.scipy.stats import norm


def call_price(spot, strike, maturity, rate, volatility):
    d1 = (fnp.log(spot / strike) + (rate + 0.5 * volatility ** 2) * maturity) / (volatility * fnp.sqrt(maturity))
    d2 = d1 - volatility * fnp.sqrt(maturity)
    return spot * norm.cdf(d1) - strike * fnp.exp(-rate * maturity) * norm.cdf(d2)


def analytic_greeks(S, K, T, r, sigma):
    d1 = (log(S / K) + (r + 0.5 * sigma ** 2) * T) / (sigma * sqrt(T))
    d2 = d1 - sigma * sqrt(T)
    pdf = exp(-0.5 * d1 ** 2) / sqrt(2 * pi)
    cdf = lambda x: 0.5 * (1 + erf(x / sqrt(2)))
    return {"delta": cdf(d1), "gamma": pdf / (S * sigma * sqrt(T)), "vega": S * pdf * sqrt(T),
            "rho": K * T * exp(-r * T) * cdf(d2)}


def main():
    # a batch of European calls: spot, strike, maturity (years), rate, volatility
    S = np.array([100.0, 90.0, 120.0, 100.0, 105.0])
    K = np.array([100.0, 100.0, 100.0, 80.0, 110.0])
    T = np.array([1.0, 0.5, 2.0, 0.25, 1.5])
    r = np.array([0.05, 0.03, 0.01, 0.04, 0.02])
    sigma = np.array([0.2, 0.3, 0.25, 0.15, 0.35])
    batch = (S, K, T, r, sigma)

    # each price depends only on its own option's inputs, so the gradient of the
    # summed prices holds every option's derivative at once (one reverse pass)
    total = lambda *args: fnp.sum(call_price(*args))
    delta = ft.grad(total, argnums=0)(*batch)
    gamma = np.diagonal(ft.hessian(total, argnums=0)(*batch))
    vega = ft.grad(total, argnums=4)(*batch)
    rho = ft.grad(total, argnums=3)(*batch)
    ad = {"delta": delta, "gamma": gamma, "vega": vega, "rho": rho}

    exact = {k: np.array([analytic_greeks(*option)[k] for option in zip(*batch)]) for k in ad}
    h = 1e-3
    price = lambda **bumped: call_price(**{**dict(spot=S, strike=K, maturity=T, rate=r, volatility=sigma), **bumped})
    bumped = {"delta": (price(spot=S + h) - price(spot=S - h)) / (2 * h),
              "gamma": (price(spot=S + h) - 2 * price() + price(spot=S - h)) / h ** 2,
              "vega": (price(volatility=sigma + h) - price(volatility=sigma - h)) / (2 * h),
              "rho": (price(rate=r + h) - price(rate=r - h)) / (2 * h)}

    print(f"{'S':>6} {'K':>6} {'T':>5} {'price':>9} {'delta':>8} {'gamma':>8} {'vega':>8} {'rho':>9}")
    for i in range(len(S)):
        print(f"{S[i]:6.1f} {K[i]:6.1f} {T[i]:5.2f} {price()[i]:9.4f} {delta[i]:8.4f} {gamma[i]:8.5f} "
              f"{vega[i]:8.4f} {rho[i]:9.4f}")
    for name in ad:
        vs_analytic = np.max(np.abs(ad[name] - exact[name]) / np.maximum(1.0, np.abs(exact[name])))
        vs_bump = np.max(np.abs(ad[name] - bumped[name]) / np.maximum(1.0, np.abs(bumped[name])))
        print(f"{name:5s}: max rel. difference to analytic {vs_analytic:.1e}, to bump-and-reprice {vs_bump:.1e}")
        assert vs_analytic < 1e-10, "AD Greeks must match Black-Scholes"
        assert vs_bump < 1e-3, "AD Greeks must match bump-and-reprice"


if __name__ == "__main__":
    main()
