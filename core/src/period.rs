//! Periods: months, quarters and years.
//!
//! A record is dated to a [`Month`]; quarters and years are derived. Periods are written
//! `YYYY-MM`, `YYYY-Qn` and `YYYY`; in the store a month is the integer `YYYYMM`, a quarter `YYYYn`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Years a period may fall in: the data model covers modern records only.
pub const MIN_YEAR: u16 = 1990;
/// The last year a period may fall in.
pub const MAX_YEAR: u16 = 2100;

/// A period that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {what} (expected {expected}, years {MIN_YEAR}-{MAX_YEAR})")]
pub struct PeriodError {
    /// The offending text, trimmed to 20 characters.
    pub value: String,
    /// What was expected: "period" (a month, quarter or year) or "month".
    what: &'static str,
    /// How it is written.
    expected: &'static str,
}

impl PeriodError {
    fn new(value: &str) -> Self {
        Self {
            value: value.chars().take(20).collect(),
            what: "period",
            expected: "YYYY-MM, YYYY-Qn or YYYY",
        }
    }

    /// A text that is not a month: where only a month will do (a record's period), the
    /// message says so rather than listing quarters and years it would refuse too.
    fn not_a_month(value: &str) -> Self {
        Self {
            what: "month",
            expected: "YYYY-MM",
            ..Self::new(value)
        }
    }
}

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month {
    year: u16,
    month: u8,
}

impl Month {
    /// January of the first year a month can name.
    pub const FIRST: Month = Month {
        year: MIN_YEAR,
        month: 1,
    };

    /// A month, if the year is in range and the month is 1–12.
    pub fn new(year: u16, month: u8) -> Option<Month> {
        ((MIN_YEAR..=MAX_YEAR).contains(&year) && (1..=12).contains(&month))
            .then_some(Month { year, month })
    }

    /// The year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month, 1–12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The quarter, 1–4.
    pub fn quarter(self) -> u8 {
        (self.month - 1) / 3 + 1
    }

    /// Storage form `YYYYMM`.
    pub fn to_int(self) -> i64 {
        i64::from(self.year) * 100 + i64::from(self.month)
    }

    /// From the storage form `YYYYMM`.
    pub fn from_int(v: i64) -> Option<Month> {
        let year = u16::try_from(v / 100).ok()?;
        let month = u8::try_from(v % 100).ok()?;
        Month::new(year, month)
    }

    /// Storage form of the quarter, `YYYYn`.
    pub fn quarter_int(self) -> i64 {
        i64::from(self.year) * 10 + i64::from(self.quarter())
    }

    /// The quarter as text, `YYYY-Qn`.
    pub fn quarter_label(self) -> String {
        format!("{}-Q{}", self.year, self.quarter())
    }

    /// The next month.
    pub fn succ(self) -> Option<Month> {
        if self.month == 12 {
            Month::new(self.year + 1, 1)
        } else {
            Month::new(self.year, self.month + 1)
        }
    }

    /// Number of months from `self` to `other` inclusive (0 when `other` is earlier).
    pub fn span_to(self, other: Month) -> u32 {
        let a = i64::from(self.year) * 12 + i64::from(self.month);
        let b = i64::from(other.year) * 12 + i64::from(other.month);
        u32::try_from(b - a + 1).unwrap_or(0)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = PeriodError;
    fn from_str(s: &str) -> Result<Month, PeriodError> {
        match PeriodSpec::from_str(s) {
            Ok(PeriodSpec::Month(m)) => Ok(m),
            _ => Err(PeriodError::not_a_month(s)),
        }
    }
}

impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A period as a person writes it in a query bound: a month, a quarter or a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodSpec {
    /// `YYYY-MM`
    Month(Month),
    /// `YYYY-Qn`
    Quarter(u16, u8),
    /// `YYYY`
    Year(u16),
}

impl PeriodSpec {
    /// The first month the period covers.
    pub fn first_month(self) -> Month {
        match self {
            PeriodSpec::Month(m) => m,
            PeriodSpec::Quarter(y, q) => Month {
                year: y,
                month: (q - 1) * 3 + 1,
            },
            PeriodSpec::Year(y) => Month { year: y, month: 1 },
        }
    }

    /// The last month the period covers.
    pub fn last_month(self) -> Month {
        match self {
            PeriodSpec::Month(m) => m,
            PeriodSpec::Quarter(y, q) => Month {
                year: y,
                month: q * 3,
            },
            PeriodSpec::Year(y) => Month { year: y, month: 12 },
        }
    }
}

fn parse_year(s: &str) -> Option<u16> {
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: u16 = s.parse().ok()?;
    (MIN_YEAR..=MAX_YEAR).contains(&y).then_some(y)
}

impl FromStr for PeriodSpec {
    type Err = PeriodError;
    fn from_str(s: &str) -> Result<PeriodSpec, PeriodError> {
        let err = || PeriodError::new(s);
        let (year, rest) = match s.split_once('-') {
            Some((y, r)) => (y, Some(r)),
            None => (s, None),
        };
        let year = parse_year(year).ok_or_else(err)?;
        match rest {
            None => Ok(PeriodSpec::Year(year)),
            Some(r) if r.len() == 2 && r.starts_with('Q') => match r.as_bytes()[1] {
                q @ b'1'..=b'4' => Ok(PeriodSpec::Quarter(year, q - b'0')),
                _ => Err(err()),
            },
            Some(r) if r.len() == 2 && r.bytes().all(|b| b.is_ascii_digit()) => {
                let m: u8 = r.parse().map_err(|_| err())?;
                Month::new(year, m).map(PeriodSpec::Month).ok_or_else(err)
            }
            Some(_) => Err(err()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_error_says_a_month_is_expected() {
        let e = "2024-Q1".parse::<Month>().unwrap_err().to_string();
        assert_eq!(
            e,
            "\"2024-Q1\" is not a month (expected YYYY-MM, years 1990-2100)"
        );
        let e = "2024-13".parse::<Month>().unwrap_err().to_string();
        assert!(e.contains("is not a month (expected YYYY-MM"), "{e}");
        // Where quarters and years are accepted, the message lists them.
        let e = "2024-Q5".parse::<PeriodSpec>().unwrap_err().to_string();
        assert!(e.contains("expected YYYY-MM, YYYY-Qn or YYYY"), "{e}");
    }
    use proptest::prelude::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            "2024-03"
                .parse::<PeriodSpec>()
                .map(|p| p.first_month().to_int()),
            Ok(202403)
        );
        let q: PeriodSpec = "2024-Q2".parse().unwrap();
        assert_eq!(
            (q.first_month().to_int(), q.last_month().to_int()),
            (202404, 202406)
        );
        let y: PeriodSpec = "2019".parse().unwrap();
        assert_eq!(
            (y.first_month().to_int(), y.last_month().to_int()),
            (201901, 201912)
        );
    }

    #[test]
    fn rejects_malformed_periods() {
        for bad in [
            "2024-13",
            "2024-00",
            "2024-Q5",
            "24-01",
            "2024-1",
            "1800",
            "2024-03-01",
            "",
            "2024-",
            "+024",
        ] {
            assert!(bad.parse::<PeriodSpec>().is_err(), "{bad} accepted");
        }
    }

    proptest! {
        #[test]
        fn month_round_trips(year in MIN_YEAR..=MAX_YEAR, month in 1u8..=12) {
            let m = Month::new(year, month).unwrap();
            prop_assert_eq!(m.to_string().parse::<Month>(), Ok(m));
            prop_assert_eq!(Month::from_int(m.to_int()), Some(m));
            prop_assert!((1..=4).contains(&m.quarter()));
        }
    }
}
