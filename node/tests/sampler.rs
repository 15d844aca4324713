//! A chi-square goodness-of-fit test of the noise sampler against the exact discrete Gaussian
//! pmf `∝ exp(−x²/2σ²)`, bin by bin over the central values (tails pooled so that every bin
//! expects at least 5 draws), at three noise scales: the default query (ρ = 0.05, σ ≈ 3.16), a
//! whole quarter's budget at once (ρ = 1, σ ≈ 0.71) and the smallest ρ a query may ask
//! (0.001, σ ≈ 22.4). The unit test in `zcdp.rs` checks mean, variance, tails and P(0); a
//! sampler can pass those and still have the wrong shape (missing or doubled values, an
//! asymmetric or wrongly scaled centre), which this catches.
//!
//! Threshold: the 1 − 10⁻⁶ quantile of χ² with the bins' degrees of freedom (Wilson–Hilferty),
//! so a correct sampler fails about once in a million runs per scale.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test, bench or example: failing loudly is the point

use vrs_node::disclosure::zcdp::{Noise, Sigma, os_rng};

/// Upper 1 − 10⁻⁶ quantile of χ²_k (Wilson–Hilferty; z = 4.753).
fn chi2_critical(k: f64) -> f64 {
    let z = 4.753;
    let a = 2.0 / (9.0 * k);
    k * (1.0 - a + z * a.sqrt()).powi(3)
}

fn chi_square(l2_sq: u64, rho_micro: u64, n: usize) -> (f64, f64, usize) {
    let sigma = Sigma::for_release(l2_sq, rho_micro);
    let s = sigma.as_f64();
    let noise = Noise::new(sigma).unwrap();
    let mut rng = os_rng().unwrap();
    let reach = (12.0 * s).ceil() as i64 + 2;
    let weight = |x: i64| (-(x as f64).powi(2) / (2.0 * s * s)).exp();
    let norm: f64 = (-reach..=reach).map(weight).sum();
    // Central bins each expecting ≥ 5 draws; everything beyond pooled into two tails.
    let mut k = 0i64;
    while n as f64 * weight(k + 1) / norm >= 5.0 {
        k += 1;
    }
    let bins = (2 * k + 1) as usize + 2; // −k..=k, then (< −k) and (> k)
    let mut seen = vec![0u64; bins];
    for _ in 0..n {
        let x = noise.sample(&mut rng).unwrap();
        let b = if x < -k {
            bins - 2
        } else if x > k {
            bins - 1
        } else {
            (x + k) as usize
        };
        seen[b] += 1;
    }
    let tail: f64 = ((k + 1)..=reach).map(weight).sum::<f64>() / norm;
    let mut stat = 0.0;
    for (b, &o) in seen.iter().enumerate() {
        let p = if b < bins - 2 {
            weight(b as i64 - k) / norm
        } else {
            tail
        };
        let e = p * n as f64;
        if e > 0.0 {
            stat += (o as f64 - e).powi(2) / e;
        }
    }
    let df = (bins - 1) as f64;
    (stat, chi2_critical(df), bins)
}

#[test]
fn the_sampler_fits_the_discrete_gaussian_bin_by_bin() {
    for (l2, rho) in [(1u64, 50_000u64), (1, 1_000_000), (1, 1_000)] {
        let (stat, critical, bins) = chi_square(l2, rho, 40_000);
        eprintln!(
            "SAMPLER Δ₂²={l2} ρ={rho}µ: χ² = {stat:.1} over {bins} bins (critical {critical:.1})"
        );
        assert!(
            stat < critical,
            "ρ={rho}µ: χ² {stat} ≥ {critical} over {bins} bins"
        );
    }
}

/// The test can fail: draws from a discrete Gaussian of a 20 % larger σ (what an off-by-√2
/// or a wrong ρ would give, only milder) are rejected against the nominal pmf.
#[test]
fn the_fit_rejects_a_wrongly_scaled_sampler() {
    let nominal = Sigma::for_release(1, 50_000).as_f64();
    let wrong = Noise::new(Sigma::for_release(144, 50_000 * 100)).unwrap(); // σ × 1.2
    assert!((wrong.sigma().as_f64() / nominal - 1.2).abs() < 1e-3);
    let mut rng = os_rng().unwrap();
    let n = 40_000;
    let k = 8i64;
    let weight = |x: i64| (-(x as f64).powi(2) / (2.0 * nominal * nominal)).exp();
    let norm: f64 = (-200..=200).map(weight).sum();
    let mut seen = vec![0u64; (2 * k + 3) as usize];
    for _ in 0..n {
        let x = wrong.sample(&mut rng).unwrap();
        let b = if x < -k {
            seen.len() - 2
        } else if x > k {
            seen.len() - 1
        } else {
            (x + k) as usize
        };
        seen[b] += 1;
    }
    let tail: f64 = ((k + 1)..=200).map(weight).sum::<f64>() / norm;
    let stat: f64 = seen
        .iter()
        .enumerate()
        .map(|(b, &o)| {
            let p = if b < seen.len() - 2 {
                weight(b as i64 - k) / norm
            } else {
                tail
            };
            let e = p * n as f64;
            (o as f64 - e).powi(2) / e
        })
        .sum();
    assert!(stat > chi2_critical((seen.len() - 1) as f64), "χ² {stat}");
}
