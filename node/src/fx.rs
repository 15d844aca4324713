//! Exchange rates the node's operator configures, to convert fee amounts to USD at import.
//!
//! Rates are USD per one unit of the currency (`EUR = 1.08`). USD itself is always 1. A fee in a
//! currency without a rate is rejected at import with a clear reason, so no band is ever guessed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vrs_core::codes::Currency;

/// USD per unit, by currency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FxRates(BTreeMap<Currency, f64>);

/// A rate that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("exchange rate for {0} must be a positive finite number")]
pub struct FxError(pub Currency);

impl FxRates {
    /// Rates from pairs; each must be positive and finite.
    pub fn new(rates: impl IntoIterator<Item = (Currency, f64)>) -> Result<FxRates, FxError> {
        let map: BTreeMap<Currency, f64> = rates.into_iter().collect();
        map.iter().try_for_each(|(c, r)| {
            if r.is_finite() && *r > 0.0 {
                Ok(())
            } else {
                Err(FxError(*c))
            }
        })?;
        Ok(FxRates(map))
    }

    /// Checks rates read from a file.
    pub fn check(&self) -> Result<(), FxError> {
        self.0.iter().try_for_each(|(c, r)| {
            if r.is_finite() && *r > 0.0 {
                Ok(())
            } else {
                Err(FxError(*c))
            }
        })
    }

    /// The amount in whole USD, if the currency has a rate.
    pub fn to_usd(&self, amount: f64, currency: Currency) -> Option<i64> {
        let rate = if currency == Currency::USD {
            1.0
        } else {
            *self.0.get(&currency)?
        };
        let usd = (amount * rate).round();
        // Amounts are validated to ≤ 1e9 and rates finite; clamp anyway so a cast never wraps.
        Some(usd.clamp(0.0, 9.0e15) as i64)
    }

    /// Sample rates for development and the demo (approximate 2024 averages).
    pub fn sample() -> FxRates {
        let pairs = [
            ("EUR", 1.08),
            ("GBP", 1.27),
            ("THB", 0.028),
            ("IDR", 0.000063),
            ("MYR", 0.21),
            ("AUD", 0.66),
            ("AFN", 0.014),
            ("PKR", 0.0036),
            ("BDT", 0.0087),
            ("MMK", 0.00048),
            ("LKR", 0.0033),
            ("IRR", 0.000024),
            ("TRY", 0.031),
            ("VND", 0.00004),
            ("PHP", 0.018),
            ("INR", 0.012),
            ("CNY", 0.14),
            ("KHR", 0.00025),
            ("LAK", 0.000047),
            ("NPR", 0.0075),
            ("MXN", 0.058),
            ("XOF", 0.0016),
            ("LYD", 0.21),
            ("NGN", 0.00075),
        ];
        FxRates(
            pairs
                .into_iter()
                .filter_map(|(c, r)| c.parse().ok().map(|c| (c, r)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_and_refuses_unknown_currencies() {
        let fx = FxRates::sample();
        assert_eq!(fx.to_usd(100.0, "EUR".parse().unwrap()), Some(108));
        assert_eq!(fx.to_usd(250.0, Currency::USD), Some(250));
        assert_eq!(fx.to_usd(1.0, "CHF".parse().unwrap()), None);
        assert!(FxRates::new([("EUR".parse().unwrap(), -1.0)]).is_err());
        assert!(FxRates::new([("EUR".parse().unwrap(), f64::NAN)]).is_err());
    }
}
