//! A seeded generator of realistic synthetic incident records, for demos, tests and load.
//!
//! Each reporting country has a table of smuggling routes (origin → transits → destination, a mode
//! per leg, a weight, a median fee in USD, a yearly trend, a seasonal pattern and the profile of the
//! people moved). Countries without a table get a generic profile. Records are produced one at a
//! time by an iterator, month by month, so millions of them never sit in memory; the same
//! [`SynthConfig`] always gives the same records on the same build. See `docs/SYNTHETIC.md`.
//!
//! How one record is drawn:
//!
//! 1. The month's share of the total follows every route's season and trend; within the month a
//!    route is picked by its weight for that month.
//! 2. The incident is detected on a leg that enters or leaves the reporting country; that leg's mode
//!    is the incident's mode, and the place type and methods follow from it (air → airport and
//!    document fraud or visa abuse; sea → at sea or a landing site, concealment in a vessel; land →
//!    green border on foot with a guide, border post with vehicles, documents or corruption).
//! 3. Migrant groups, smugglers, fees (in the origin's, the reporting country's or US currency),
//!    dead and missing are drawn from distributions that depend on the route and the mode.

use std::collections::BTreeSet;
use std::io::{self, Write};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vrs_core::codes::{
    AgeGroup, Country, Currency, FeeScope, Method, Mode, PaymentMode, PlaceType, Sex, SmugglerRole,
    SmugglerStage,
};
use vrs_core::period::Month;

use crate::fx::FxRates;
use crate::import::template::CsvWriter;
use crate::record::{Fee, IncidentRecord, Leg, MigrantGroup, RecordKind, Smuggler};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthConfig {
    /// The reporting country: every incident takes place there.
    pub country: Country,
    /// Number of incidents to generate.
    pub incidents: u64,
    /// Seed of the random generator; with the other fields it fixes every record.
    pub seed: u64,
    /// First month covered.
    pub start: Month,
    /// Number of months covered (at least one is used; months past the last valid year are dropped).
    pub months: u32,
}

impl SynthConfig {
    /// `incidents` incidents in `country` from 2021-01 over 16 quarters.
    pub fn new(country: Country, incidents: u64, seed: u64) -> SynthConfig {
        SynthConfig {
            country,
            incidents,
            seed,
            start: Month::new(2021, 1).unwrap_or(Month::FIRST),
            months: 48,
        }
    }
}

/// The records of `cfg`, generated lazily in month order.
pub fn generate(cfg: &SynthConfig) -> impl Iterator<Item = IncidentRecord> + use<> {
    Generator::new(cfg)
}

/// Writes the records of `cfg` as JSON Lines; returns how many were written.
pub fn write_jsonl(cfg: &SynthConfig, w: impl Write) -> io::Result<u64> {
    let mut w = io::BufWriter::new(w);
    let mut n = 0;
    for record in generate(cfg) {
        serde_json::to_writer(&mut w, &record)?;
        w.write_all(b"\n")?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

/// Writes the records of `cfg` in the template CSV (header first); returns how many were written.
pub fn write_csv(cfg: &SynthConfig, w: impl Write) -> io::Result<u64> {
    let mut csv = CsvWriter::new(io::BufWriter::new(w))?;
    let mut n = 0;
    for record in generate(cfg) {
        csv.write(&record)?;
        n += 1;
    }
    csv.finish()?.flush()?;
    Ok(n)
}

// ---------------------------------------------------------------------------------------------
// Route tables
// ---------------------------------------------------------------------------------------------

/// Monthly multipliers of a route's activity, January first.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Season {
    /// Bay of Bengal and Andaman Sea: boats sail November–April, the south-west monsoon stops them.
    Andaman,
    /// Indian Ocean and Timor Sea towards Australia: fewer ventures in the north-west monsoon.
    Arafura,
    /// Short sea crossings (Malacca Strait, Sulu Sea): mild.
    Strait,
    /// Overland: peaks around new-year festivals and the dry season.
    Land,
    /// Air travel: holiday peaks.
    Air,
}

impl Season {
    fn factors(self) -> &'static [f64; 12] {
        match self {
            Season::Andaman => &[1.4, 1.3, 1.2, 1.0, 0.5, 0.35, 0.3, 0.35, 0.5, 0.9, 1.4, 1.5],
            Season::Arafura => &[
                0.55, 0.6, 0.8, 1.0, 1.2, 1.25, 1.15, 1.1, 1.2, 1.2, 1.0, 0.7,
            ],
            Season::Strait => &[
                1.0, 1.0, 1.05, 1.1, 1.0, 0.95, 0.9, 0.9, 0.95, 1.0, 1.05, 1.1,
            ],
            Season::Land => &[
                1.05, 1.1, 1.0, 1.3, 0.95, 0.85, 0.8, 0.85, 0.95, 1.0, 1.05, 1.1,
            ],
            Season::Air => &[
                1.1, 1.0, 0.95, 0.9, 1.0, 1.05, 1.2, 1.15, 0.95, 0.9, 0.95, 1.15,
            ],
        }
    }
}

/// One route as written in a table: `stops` like `"MMR>THA>MYS"` (`@` is the reporting country),
/// `modes` one letter per leg (`L`and, `S`ea, `A`ir, `M`ixed).
#[derive(Debug, Clone, Copy)]
struct RouteSpec {
    stops: &'static str,
    modes: &'static str,
    /// Relative share of the country's incidents.
    weight: f64,
    /// Median full-journey fee in USD.
    fee_usd: f64,
    /// Change in activity per year, as a fraction of the first year's.
    trend: f64,
    /// Share of men among adults of known sex.
    male: f64,
    /// Share of minors among the people moved.
    minors: f64,
    /// Citizenships of the people moved, weighted; empty means the origin's.
    citizens: &'static [(&'static str, u32)],
    /// Seasonal pattern; `None` derives it from the legs' modes.
    season: Option<Season>,
}

const fn r(stops: &'static str, modes: &'static str, weight: f64, fee_usd: f64) -> RouteSpec {
    RouteSpec {
        stops,
        modes,
        weight,
        fee_usd,
        trend: 0.03,
        male: 0.7,
        minors: 0.06,
        citizens: &[],
        season: None,
    }
}

impl RouteSpec {
    const fn trend(mut self, trend: f64) -> Self {
        self.trend = trend;
        self
    }
    const fn male(mut self, male: f64) -> Self {
        self.male = male;
        self
    }
    const fn minors(mut self, minors: f64) -> Self {
        self.minors = minors;
        self
    }
    const fn citizens(mut self, citizens: &'static [(&'static str, u32)]) -> Self {
        self.citizens = citizens;
        self
    }
    const fn season(mut self, season: Season) -> Self {
        self.season = Some(season);
        self
    }
}

/// Rohingya: mostly stateless, some recorded as nationals of Myanmar or Bangladesh.
const ROHINGYA: &[(&str, u32)] = &[("XXA", 75), ("MMR", 15), ("BGD", 10)];
/// The Afghanistan–Pakistan–Malaysia–Indonesia route to Australia.
const HAZARA: &[(&str, u32)] = &[("AFG", 85), ("PAK", 10), ("IRN", 5)];
/// Iran-origin ventures to Australia.
const IRN_IRQ: &[(&str, u32)] = &[("IRN", 55), ("IRQ", 30), ("AFG", 15)];
/// Recruits moved to scam compounds on the Thai–Myanmar border.
const SCAM: &[(&str, u32)] = &[("CHN", 80), ("MYS", 12), ("TWN", 8)];
/// Workers moved from Thailand into Cambodia.
const THA_KHM: &[(&str, u32)] = &[
    ("THA", 40),
    ("MMR", 25),
    ("LAO", 15),
    ("VNM", 10),
    ("CHN", 10),
];
/// People of unknown origin in the generic profile.
const GENERIC_UNK: &[(&str, u32)] = &[
    ("IND", 30),
    ("PAK", 25),
    ("AFG", 20),
    ("BGD", 15),
    ("NGA", 10),
];

use Season::{Andaman, Arafura, Strait};

/// Route tables by reporting country.
const PROFILES: &[(&str, &[RouteSpec])] = &[
    (
        "AFG",
        &[
            r("AFG>IRN", "L", 30.0, 400.0).trend(0.15).male(0.85),
            r("AFG>PAK", "L", 20.0, 150.0)
                .trend(0.2)
                .male(0.65)
                .minors(0.15),
            r("AFG>IRN>TUR", "LL", 12.0, 2500.0).male(0.9),
            r("AFG>IRN>TUR>GRC", "LLS", 4.0, 6000.0).male(0.9),
            r("AFG>PAK>ARE", "LA", 3.0, 2500.0).male(0.9),
            r("AFG>PAK>MYS>IDN>AUS", "LASS", 2.0, 9000.0).citizens(HAZARA),
            r("AFG>UZB", "L", 0.5, 500.0),
        ],
    ),
    (
        "AUS",
        &[
            r("MYS>AUS", "A", 12.0, 6000.0).male(0.6),
            r("CHN>AUS", "A", 10.0, 9000.0).male(0.55),
            r("IND>AUS", "A", 8.0, 7000.0).male(0.75),
            r("VNM>AUS", "A", 5.0, 8000.0).male(0.55),
            r("THA>AUS", "A", 4.0, 6000.0).male(0.35),
            r("PHL>AUS", "A", 3.0, 5000.0).male(0.45),
            r("LKA>AUS", "S", 4.0, 5000.0).male(0.85).season(Arafura),
            r("LKA>IDN>AUS", "SS", 3.0, 5000.0)
                .male(0.82)
                .season(Arafura),
            r("AFG>PAK>MYS>IDN>AUS", "LASS", 3.0, 9000.0)
                .citizens(HAZARA)
                .season(Arafura),
            r("IRN>MYS>IDN>AUS", "ASS", 2.0, 8000.0)
                .citizens(IRN_IRQ)
                .season(Arafura),
            r("VNM>AUS", "S", 1.5, 6000.0).season(Arafura),
            r("IDN>AUS", "S", 3.0, 2500.0).male(0.97).season(Arafura),
            r("CHN>IDN>AUS", "AS", 0.7, 10000.0)
                .trend(0.3)
                .season(Arafura),
            r("PNG>AUS", "S", 0.8, 200.0).season(Strait),
        ],
    ),
    (
        "BGD",
        &[
            r("BGD>IND", "L", 24.0, 150.0).male(0.55),
            r("BGD>MYS", "A", 8.0, 3500.0).male(0.95),
            r("BGD>MYS", "S", 8.0, 1800.0)
                .citizens(ROHINGYA)
                .minors(0.2)
                .season(Andaman),
            r("BGD>IDN", "S", 5.0, 1200.0)
                .citizens(ROHINGYA)
                .minors(0.3)
                .male(0.5)
                .trend(0.35)
                .season(Andaman),
            r("BGD>MMR>THA>MYS", "LSL", 4.0, 2000.0)
                .citizens(ROHINGYA)
                .minors(0.2)
                .season(Andaman),
            r("BGD>ARE>LBY>ITA", "AAS", 5.0, 8000.0)
                .trend(0.15)
                .male(0.97),
            r("MMR>BGD", "L", 6.0, 100.0)
                .citizens(ROHINGYA)
                .minors(0.3)
                .male(0.48),
            r("IND>BGD", "L", 1.0, 100.0),
        ],
    ),
    (
        "IDN",
        &[
            r("IDN>MYS", "S", 14.0, 400.0).male(0.72).season(Strait),
            r("IDN>MYS", "L", 5.0, 300.0).male(0.7),
            r("MYS>IDN", "S", 3.0, 250.0).season(Strait),
            r("BGD>IDN", "S", 7.0, 1200.0)
                .citizens(ROHINGYA)
                .minors(0.3)
                .male(0.5)
                .trend(0.35)
                .season(Andaman),
            r("LKA>IDN>AUS", "SS", 5.0, 4500.0)
                .male(0.82)
                .trend(-0.05)
                .season(Arafura),
            r("AFG>PAK>MYS>IDN>AUS", "LASS", 6.0, 8000.0)
                .male(0.88)
                .citizens(HAZARA)
                .season(Arafura),
            r("IRN>MYS>IDN>AUS", "ASS", 3.0, 7000.0)
                .citizens(IRN_IRQ)
                .season(Arafura),
            r("IDN>AUS", "S", 2.0, 2500.0).male(0.97).season(Arafura),
            r("VNM>IDN>AUS", "SS", 0.5, 6000.0).season(Arafura),
            r("CHN>IDN", "A", 2.0, 3500.0),
            r("PAK>IDN", "A", 1.0, 3000.0).male(0.9),
        ],
    ),
    (
        "KHM",
        &[
            r("KHM>THA", "L", 18.0, 200.0).male(0.6),
            r("VNM>KHM", "L", 8.0, 300.0).trend(0.2),
            r("CHN>KHM", "A", 10.0, 2500.0).trend(0.2).male(0.75),
            r("THA>KHM", "L", 4.0, 400.0).citizens(THA_KHM),
            r("IDN>KHM", "A", 3.0, 1200.0).trend(0.3),
            r("PHL>KHM", "A", 2.0, 1500.0).trend(0.3).male(0.55),
            r("KHM>THA>MYS", "LL", 4.0, 900.0),
        ],
    ),
    (
        "LKA",
        &[
            r("LKA>AUS", "S", 10.0, 5000.0).male(0.85).season(Arafura),
            r("LKA>IDN>AUS", "SS", 2.0, 5000.0)
                .male(0.85)
                .season(Arafura),
            r("LKA>IND", "S", 4.0, 300.0).minors(0.15).season(Strait),
            r("LKA>THA", "A", 4.0, 3500.0).male(0.85),
            r("LKA>CAN", "A", 3.0, 15000.0),
            r("LKA>ITA", "A", 2.0, 10000.0),
            r("LKA>MYS", "A", 3.0, 3000.0),
            r("IND>LKA", "S", 1.0, 200.0).season(Strait),
        ],
    ),
    (
        "MMR",
        &[
            r("MMR>THA", "L", 30.0, 450.0).trend(0.12).male(0.62),
            r("MMR>THA>MYS", "LL", 10.0, 1500.0),
            r("MMR>BGD", "L", 6.0, 150.0)
                .citizens(ROHINGYA)
                .minors(0.3)
                .male(0.48),
            r("MMR>MYS", "S", 6.0, 2000.0)
                .citizens(ROHINGYA)
                .minors(0.2)
                .season(Andaman),
            r("MMR>CHN", "L", 8.0, 500.0).male(0.45),
            r("CHN>MMR", "L", 6.0, 1200.0).trend(0.3).male(0.8),
            r("MMR>IND", "L", 4.0, 200.0).trend(0.2).minors(0.2),
            r("CHN>THA>MMR", "AL", 3.0, 1200.0)
                .trend(0.3)
                .citizens(SCAM),
        ],
    ),
    (
        "MYS",
        &[
            r("IDN>MYS", "S", 22.0, 450.0).male(0.72).season(Strait),
            r("IDN>MYS", "L", 6.0, 350.0),
            r("MMR>THA>MYS", "LL", 14.0, 1500.0),
            r("BGD>MMR>THA>MYS", "LSL", 6.0, 2000.0)
                .citizens(ROHINGYA)
                .minors(0.2)
                .male(0.6)
                .season(Andaman),
            r("MMR>MYS", "S", 3.0, 2000.0)
                .citizens(ROHINGYA)
                .minors(0.2)
                .season(Andaman),
            r("BGD>MYS", "A", 8.0, 3500.0).male(0.95),
            r("NPL>MYS", "A", 4.0, 2500.0).male(0.93),
            r("PAK>MYS", "A", 3.0, 3000.0).male(0.95),
            r("IND>MYS", "A", 3.0, 2500.0),
            r("VNM>MYS", "A", 2.0, 2000.0).male(0.4),
            r("PHL>MYS", "S", 5.0, 300.0).season(Strait),
            r("AFG>PAK>MYS>IDN>AUS", "LASS", 2.0, 8000.0)
                .citizens(HAZARA)
                .season(Arafura),
            r("LKA>MYS", "A", 1.0, 3000.0),
        ],
    ),
    (
        "PAK",
        &[
            r("AFG>PAK", "L", 25.0, 150.0).male(0.65).minors(0.15),
            r("PAK>IRN>TUR", "LL", 14.0, 2500.0).male(0.96),
            r("PAK>IRN>TUR>GRC", "LLS", 6.0, 5000.0).male(0.96),
            r("PAK>ARE>LBY>ITA", "AAS", 5.0, 8000.0)
                .trend(0.2)
                .male(0.97),
            r("PAK>MYS", "A", 5.0, 3000.0).male(0.95),
            r("PAK>THA", "A", 2.0, 3000.0).male(0.9),
            r("PAK>GBR", "A", 3.0, 12000.0),
            r("AFG>PAK>MYS>IDN>AUS", "LASS", 2.0, 9000.0).citizens(HAZARA),
        ],
    ),
    (
        "PHL",
        &[
            r("PHL>MYS", "S", 14.0, 300.0).season(Strait),
            r("PHL>KHM", "A", 10.0, 1500.0).trend(0.3).male(0.55),
            r("PHL>THA>MMR", "AL", 6.0, 1500.0).trend(0.35).male(0.55),
            r("PHL>ARE", "A", 6.0, 2500.0).male(0.3),
            r("CHN>PHL", "A", 4.0, 4000.0).trend(-0.15),
            r("VNM>PHL", "A", 1.0, 3000.0),
            r("IDN>PHL", "S", 1.0, 300.0).season(Strait),
            r("PHL>AUS", "A", 2.0, 5000.0).male(0.45),
        ],
    ),
    (
        "THA",
        &[
            r("MMR>THA", "L", 40.0, 450.0).trend(0.12).male(0.62),
            r("MMR>THA>MYS", "LL", 14.0, 1500.0),
            r("LAO>THA", "L", 14.0, 250.0).male(0.55),
            r("KHM>THA", "L", 16.0, 200.0).male(0.6),
            r("BGD>MMR>THA>MYS", "LSL", 7.0, 2000.0)
                .citizens(ROHINGYA)
                .minors(0.2)
                .male(0.6)
                .season(Andaman),
            r("VNM>KHM>THA", "LL", 3.0, 600.0),
            r("VNM>LAO>THA", "LL", 3.0, 700.0),
            r("CHN>LAO>THA", "LL", 2.0, 1800.0).trend(0.15).male(0.75),
            r("CHN>THA>MMR", "AL", 2.0, 1200.0)
                .trend(0.4)
                .citizens(SCAM),
            r("PAK>THA", "A", 3.0, 3000.0).male(0.9),
            r("LKA>THA", "A", 2.0, 3500.0).male(0.85),
            r("NPL>THA", "A", 0.6, 2500.0),
            r("THA>AUS", "A", 2.0, 6000.0).male(0.35),
        ],
    ),
    (
        "VNM",
        &[
            r("VNM>CHN", "L", 14.0, 600.0).male(0.45),
            r("VNM>KHM", "L", 8.0, 300.0).trend(0.2),
            r("VNM>LAO>THA", "LL", 3.0, 800.0),
            r("CHN>VNM", "L", 8.0, 400.0).male(0.8),
            r("VNM>FRA>GBR", "AS", 3.0, 20000.0).male(0.8).minors(0.12),
            r("VNM>KOR", "A", 4.0, 8000.0),
            r("VNM>JPN", "A", 4.0, 7000.0),
            r("VNM>AUS", "A", 2.0, 9000.0).male(0.55),
            r("KHM>VNM", "L", 2.0, 150.0),
        ],
    ),
];

/// Routes for a country without a table; `@` is the reporting country.
const GENERIC: &[RouteSpec] = &[
    r("IND>@", "A", 10.0, 4000.0),
    r("CHN>@", "A", 6.0, 5000.0).male(0.55),
    r("NGA>@", "A", 5.0, 5000.0),
    r("VNM>@", "A", 6.0, 6000.0),
    r("PAK>@", "A", 6.0, 4500.0).male(0.9),
    r("BGD>@", "A", 5.0, 4000.0).male(0.9),
    r("AFG>UNK>@", "LL", 6.0, 3000.0).male(0.85).minors(0.12),
    r("SYR>UNK>@", "ML", 4.0, 3500.0).minors(0.15),
    r("IRQ>UNK>@", "LL", 0.7, 4000.0),
    r("UNK>@", "L", 4.0, 800.0).citizens(GENERIC_UNK),
    r("@>GBR", "A", 3.0, 8000.0),
    r("@>USA", "A", 3.0, 9000.0),
    r("@>AUS", "A", 2.0, 8000.0),
];

/// The currency people from a country usually pay in, if it has a demo rate.
fn home_currency(country: &str) -> Option<&'static str> {
    Some(match country {
        "THA" => "THB",
        "IDN" => "IDR",
        "MYS" => "MYR",
        "AUS" => "AUD",
        "AFG" => "AFN",
        "PAK" => "PKR",
        "BGD" => "BDT",
        "MMR" => "MMK",
        "LKA" => "LKR",
        "IRN" => "IRR",
        "TUR" => "TRY",
        "VNM" => "VND",
        "PHL" => "PHP",
        "IND" => "INR",
        "CHN" => "CNY",
        "KHM" => "KHR",
        "LAO" => "LAK",
        "NPL" => "NPR",
        "MEX" => "MXN",
        "NGA" => "NGN",
        "LBY" => "LYD",
        "GBR" => "GBP",
        "AUT" | "BEL" | "CYP" | "DEU" | "ESP" | "EST" | "FIN" | "FRA" | "GRC" | "HRV" | "IRL"
        | "ITA" | "LTU" | "LUX" | "LVA" | "MLT" | "NLD" | "PRT" | "SVK" | "SVN" => "EUR",
        "BEN" | "BFA" | "CIV" | "GNB" | "MLI" | "NER" | "SEN" | "TGO" => "XOF",
        _ => return None,
    })
}

/// How fees from people of a country are mostly paid.
fn payment_weights(origin: &str, mode: Mode) -> [(PaymentMode, u32); 7] {
    let (hawala, mobile) = match origin {
        "AFG" | "PAK" | "IRN" | "IRQ" | "SYR" | "SOM" => (45, 3),
        "BGD" | "MMR" | "KHM" | "PHL" | "KEN" => (8, 28),
        _ => (2, 8),
    };
    let bank = if mode == Mode::Air { 30 } else { 8 };
    [
        (PaymentMode::Cash, 50),
        (PaymentMode::BankTransfer, bank),
        (PaymentMode::Hawala, hawala),
        (PaymentMode::MobileMoney, mobile),
        (PaymentMode::InKind, 1),
        (PaymentMode::Other, 2),
        (PaymentMode::Unknown, 10),
    ]
}

// ---------------------------------------------------------------------------------------------
// Parsed routes
// ---------------------------------------------------------------------------------------------

/// A route ready for drawing, for one reporting country.
#[derive(Debug, Clone)]
struct Route {
    stops: Vec<Country>,
    /// One per leg.
    modes: Vec<Mode>,
    /// Leg entering the reporting country, if it is not the origin.
    incoming: Option<usize>,
    /// Leg leaving the reporting country, if it is not the destination.
    outgoing: Option<usize>,
    weight: f64,
    fee_usd: f64,
    trend: f64,
    male: f64,
    minors: f64,
    /// Never empty.
    citizens: Vec<(Country, u32)>,
    season: &'static [f64; 12],
    /// Currency and USD per unit of the origin's currency, if it has a rate.
    origin_currency: Option<(Currency, f64)>,
}

impl Route {
    fn parse(spec: &RouteSpec, reporting: Country) -> Option<Route> {
        let stops = spec
            .stops
            .split('>')
            .map(|s| {
                if s == "@" {
                    Some(reporting)
                } else {
                    s.parse().ok()
                }
            })
            .collect::<Option<Vec<Country>>>()?;
        let modes = spec
            .modes
            .chars()
            .map(|c| match c {
                'L' => Some(Mode::Land),
                'S' => Some(Mode::Sea),
                'A' => Some(Mode::Air),
                'M' => Some(Mode::Mixed),
                _ => None,
            })
            .collect::<Option<Vec<Mode>>>()?;
        if stops.len() < 2
            || modes.len() + 1 != stops.len()
            || stops.windows(2).any(|w| w[0] == w[1])
        {
            return None;
        }
        let at = stops.iter().position(|c| *c == reporting)?;
        let citizens = if spec.citizens.is_empty() {
            vec![(stops[0], 1)]
        } else {
            spec.citizens
                .iter()
                .map(|(c, w)| c.parse().ok().map(|c| (c, *w)))
                .collect::<Option<Vec<_>>>()?
        };
        let season = spec.season.unwrap_or(if modes.contains(&Mode::Sea) {
            Season::Strait
        } else if modes.iter().all(|m| *m == Mode::Air) {
            Season::Air
        } else {
            Season::Land
        });
        Some(Route {
            incoming: at.checked_sub(1),
            outgoing: (at + 1 < stops.len()).then_some(at),
            origin_currency: currency_with_rate(stops[0]),
            stops,
            modes,
            weight: spec.weight,
            fee_usd: spec.fee_usd,
            trend: spec.trend,
            male: spec.male,
            minors: spec.minors,
            citizens,
            season: season.factors(),
        })
    }

    /// Relative weight in the month `t` months after the start, calendar month `month` (1–12).
    fn weight_in(&self, t: u32, month: u8) -> f64 {
        let years = f64::from(t) / 12.0;
        let trend = (1.0 + self.trend * years).max(0.05);
        self.weight * self.season[usize::from(month - 1)] * trend
    }
}

/// The home currency of a country with its USD rate from the demo table.
fn currency_with_rate(country: Country) -> Option<(Currency, f64)> {
    let currency: Currency = home_currency(country.as_str())?.parse().ok()?;
    // FxRates only converts; a rate is read back by converting a large amount, so the amounts
    // generated here turn into exactly the USD values the importer will compute.
    const PROBE: f64 = 1.0e12;
    let usd = FxRates::sample().to_usd(PROBE, currency)?;
    Some((currency, usd as f64 / PROBE))
}

/// The routes used for a reporting country: its table, or the generic one.
fn routes_for(country: Country) -> Vec<Route> {
    let specs = PROFILES
        .iter()
        .find(|(c, _)| *c == country.as_str())
        .map_or(GENERIC, |(_, routes)| *routes);
    specs
        .iter()
        .filter_map(|s| Route::parse(s, country))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------------

/// Picks an item by integer weight (weights need not sum to anything in particular).
fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total.max(1));
    for (item, w) in items {
        if x < *w {
            return *item;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal draw with the given median and spread of the log.
fn log_normal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// Rounds to `digits` significant digits and to a whole number, as people quote prices.
fn round_significant(x: f64, digits: i32) -> f64 {
    if x < 1.0 {
        return 1.0;
    }
    let drop = x.log10().floor() as i32 + 1 - digits;
    if drop <= 0 {
        x.round()
    } else {
        // A whole number times a power of ten up to 1e22 is exact, so the amount prints cleanly.
        let scale = 10f64.powi(drop);
        (x / scale).round() * scale
    }
}

fn days_in(month: Month) -> u32 {
    let y = month.year();
    match month.month() {
        2 if y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The streaming generator behind [`generate`].
#[derive(Debug)]
struct Generator {
    rng: ChaCha8Rng,
    country: Country,
    routes: Vec<Route>,
    /// Citizenships on all routes, weighted by route: who else may travel along.
    regional: Vec<(Country, u32)>,
    reporting_currency: Option<(Currency, f64)>,
    /// Incidents left for each month, from the current one on.
    month_counts: Vec<u64>,
    /// Index into `month_counts` and `months` of the current month.
    month_index: usize,
    months: Vec<Month>,
    month: Month,
    /// Cumulative route weights in the current month.
    cumulative: Vec<f64>,
    /// Records produced so far.
    seq: u64,
    remaining: u64,
}

impl Generator {
    fn new(cfg: &SynthConfig) -> Generator {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&cfg.seed.to_le_bytes());
        seed[8..11].copy_from_slice(cfg.country.as_str().as_bytes());
        seed[16..25].copy_from_slice(b"vrs-synth");
        let rng = ChaCha8Rng::from_seed(seed);
        let routes = routes_for(cfg.country);
        let regional = routes
            .iter()
            .flat_map(|r| {
                let sum: u32 = r.citizens.iter().map(|(_, w)| w).sum();
                r.citizens.iter().map(move |(c, w)| {
                    let share = r.weight * f64::from(*w) / f64::from(sum.max(1));
                    (*c, ((share * 10.0).round() as u32).max(1))
                })
            })
            .collect();

        let mut months = Vec::new();
        let mut m = Some(cfg.start);
        while let Some(month) = m {
            if months.len() >= cfg.months.max(1) as usize {
                break;
            }
            months.push(month);
            m = month.succ();
        }
        let weights: Vec<f64> = months
            .iter()
            .enumerate()
            .map(|(t, month)| {
                let t = t as u32;
                routes.iter().map(|r| r.weight_in(t, month.month())).sum()
            })
            .collect();
        let month_counts = if routes.is_empty() {
            vec![0; months.len()]
        } else {
            apportion(cfg.incidents, &weights)
        };
        let remaining = month_counts.iter().sum();

        let mut g = Generator {
            rng,
            country: cfg.country,
            reporting_currency: currency_with_rate(cfg.country),
            routes,
            regional,
            month_counts,
            month_index: 0,
            month: cfg.start,
            cumulative: Vec::new(),
            seq: 0,
            remaining,
            months,
        };
        g.enter_month(0);
        g
    }

    fn enter_month(&mut self, index: usize) {
        self.month_index = index;
        self.month = self.months[index];
        let mut acc = 0.0;
        self.cumulative.clear();
        for r in &self.routes {
            acc += r.weight_in(index as u32, self.month.month());
            self.cumulative.push(acc);
        }
    }

    fn pick_route(&mut self) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = self.rng.random::<f64>() * total;
        self.cumulative
            .partition_point(|c| *c <= x)
            .min(self.routes.len() - 1)
    }

    fn record(&mut self, route_index: usize) -> IncidentRecord {
        let rng = &mut self.rng;
        let route = &self.routes[route_index];
        let reporting = self.country;

        // Where on the journey the incident was detected.
        let detect = match (route.incoming, route.outgoing) {
            (Some(i), Some(o)) => {
                if rng.random_bool(0.5) {
                    i
                } else {
                    o
                }
            }
            (Some(i), None) => i,
            (None, Some(o)) => o,
            // A parsed route always has the reporting country on it.
            (None, None) => 0,
        };
        let mode = route.modes[detect];
        let place = match mode {
            Mode::Air => PlaceType::Airport,
            Mode::Sea => {
                if rng.random_bool(0.88) {
                    PlaceType::Sea
                } else {
                    PlaceType::Inland
                }
            }
            Mode::Land => pick(
                rng,
                &[
                    (PlaceType::GreenBorder, 45),
                    (PlaceType::BorderPost, 35),
                    (PlaceType::Inland, 20),
                ],
            ),
            Mode::Mixed => PlaceType::Inland,
        };
        let methods = draw_methods(rng, mode, place);

        // The route as recorded: sometimes only from the last country of departure, sometimes with
        // a leg's mode unknown.
        let first_leg = if detect > 0 && rng.random_bool(0.03) {
            detect
        } else {
            0
        };
        let route_legs: Vec<Leg> = (first_leg..route.modes.len())
            .map(|i| Leg {
                from: route.stops[i],
                to: route.stops[i + 1],
                mode: (i == detect || !rng.random_bool(0.04)).then_some(route.modes[i]),
            })
            .collect();

        // The people moved.
        let total = if rng.random_bool(0.02) {
            0
        } else {
            group_size(rng, mode, place, route.fee_usd)
        };
        let migrants = draw_migrants(rng, route, &self.regional, total);

        // Smugglers.
        let smuggler_share = match place {
            PlaceType::Sea => 0.45,
            PlaceType::Inland => 0.45,
            PlaceType::BorderPost => 0.35,
            PlaceType::GreenBorder => 0.25,
            PlaceType::Airport => 0.12,
        };
        let with_smugglers = total == 0 || rng.random_bool(smuggler_share);
        let progress = 1.0 - self.month_index as f64 / self.months.len() as f64;
        let smugglers = if with_smugglers {
            draw_smugglers(rng, route, reporting, mode, &methods, progress)
        } else {
            Vec::new()
        };

        // Fees.
        let fee_share = if mode == Mode::Air { 0.5 } else { 0.38 };
        let fees = if total > 0 && rng.random_bool(fee_share) {
            draw_fees(rng, route, self.reporting_currency, mode)
        } else {
            Vec::new()
        };

        // Deaths and disappearances: rare, mostly at sea, more on big boats.
        let (p_dead, p_missing) = match mode {
            Mode::Sea if total >= 30 => (0.04, 0.05),
            Mode::Sea => (0.008, 0.01),
            Mode::Land | Mode::Mixed => (0.002, 0.001),
            Mode::Air => (0.0, 0.0),
        };
        let casualties = |rng: &mut ChaCha8Rng, p: f64| -> u32 {
            if p > 0.0 && rng.random_bool(p) {
                log_normal(rng, 2.0, 1.0).round().clamp(1.0, 300.0) as u32
            } else {
                0
            }
        };
        let dead = casualties(rng, p_dead);
        let missing = casualties(rng, p_missing);

        let day = rng.random_range(1..=days_in(self.month));
        let note = rng
            .random_bool(0.005)
            .then(|| "synthetic record".to_string());
        let agency = match place {
            PlaceType::Sea => "MAR",
            PlaceType::Airport => "IMM",
            PlaceType::BorderPost | PlaceType::GreenBorder => "BRD",
            PlaceType::Inland => "POL",
        };

        self.seq += 1;
        IncidentRecord {
            kind: RecordKind::Incident,
            source_id: format!("SYN-{}-{:09}", reporting, self.seq),
            period: self.month,
            date: Some(format!("{}-{:02}", self.month, day)),
            agency: Some(format!("{reporting}-{agency}")),
            country: reporting,
            place_type: Some(place),
            mode: Some(mode),
            dead,
            missing,
            route: route_legs,
            corridor: None,
            methods,
            fees,
            migrants,
            smugglers,
            note,
        }
    }
}

impl Iterator for Generator {
    type Item = IncidentRecord;

    fn next(&mut self) -> Option<IncidentRecord> {
        if self.remaining == 0 {
            return None;
        }
        while self.month_counts[self.month_index] == 0 {
            self.enter_month(self.month_index + 1);
        }
        self.month_counts[self.month_index] -= 1;
        self.remaining -= 1;
        let route = self.pick_route();
        Some(self.record(route))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

/// Splits `total` into integer parts proportional to `weights` (largest remainders).
fn apportion(total: u64, weights: &[f64]) -> Vec<u64> {
    let sum: f64 = weights.iter().sum();
    if weights.is_empty() || sum <= 0.0 {
        return vec![0; weights.len()];
    }
    let ideal: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut counts: Vec<u64> = ideal.iter().map(|x| x.floor() as u64).collect();
    let assigned: u64 = counts.iter().sum();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| {
        let fa = ideal[*a] - ideal[*a].floor();
        let fb = ideal[*b] - ideal[*b].floor();
        fb.total_cmp(&fa).then(a.cmp(b))
    });
    // Floating point may leave the floors off by more than the number of months either way.
    let mut left = total.saturating_sub(assigned);
    for i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        counts[*i] += 1;
        left -= 1;
    }
    let mut over = assigned.saturating_sub(total);
    for i in order.iter().rev().cycle() {
        if over == 0 {
            break;
        }
        if counts[*i] > 0 {
            counts[*i] -= 1;
            over -= 1;
        }
    }
    counts
}

fn draw_methods(rng: &mut ChaCha8Rng, mode: Mode, place: PlaceType) -> BTreeSet<Method> {
    let mut m = BTreeSet::new();
    if rng.random_bool(0.04) {
        // Not recorded.
        return m;
    }
    let documents = [
        (Method::DocCounterfeit, 25),
        (Method::DocForged, 20),
        (Method::DocImpostor, 20),
        (Method::DocFraudulentlyObtained, 15),
        (Method::VisaAbuse, 30),
    ];
    match (mode, place) {
        (Mode::Air, _) => {
            m.insert(pick(rng, &documents));
            if rng.random_bool(0.1) {
                m.insert(Method::VisaAbuse);
            }
            if rng.random_bool(0.02) {
                m.insert(Method::Corruption);
            }
        }
        (Mode::Sea, PlaceType::Sea) => {
            m.insert(pick(
                rng,
                &[
                    (Method::ConcealmentVessel, 85),
                    (Method::GuideEscort, 10),
                    (Method::Other, 5),
                ],
            ));
            if rng.random_bool(0.01) {
                m.insert(Method::ConcealmentContainer);
            }
            if rng.random_bool(0.03) {
                m.insert(Method::Corruption);
            }
        }
        (_, PlaceType::GreenBorder) => {
            if rng.random_bool(0.75) {
                m.insert(Method::ClandestineOnFoot);
            }
            if m.is_empty() || rng.random_bool(0.45) {
                m.insert(Method::GuideEscort);
            }
            if rng.random_bool(0.03) {
                m.insert(Method::Corruption);
            }
        }
        (_, PlaceType::BorderPost) => {
            m.insert(pick(
                rng,
                &[
                    (Method::ConcealmentVehicle, 50),
                    (Method::DocForged, 8),
                    (Method::DocCounterfeit, 6),
                    (Method::DocImpostor, 6),
                    (Method::DocFraudulentlyObtained, 4),
                    (Method::VisaAbuse, 10),
                    (Method::Corruption, 12),
                    (Method::ConcealmentContainer, 2),
                    (Method::Other, 2),
                ],
            ));
            if rng.random_bool(0.08) {
                m.insert(Method::Corruption);
            }
        }
        // Inland: safe houses, vehicles on the highway, staging before a boat leaves.
        _ => {
            m.insert(pick(
                rng,
                &[
                    (Method::ConcealmentVehicle, 55),
                    (Method::GuideEscort, 30),
                    (Method::Other, 12),
                    (Method::ConcealmentContainer, 3),
                ],
            ));
        }
    }
    m
}

/// Number of people moved, heavy-tailed: mostly 1–10, boats sometimes carry 50–200.
fn group_size(rng: &mut ChaCha8Rng, mode: Mode, place: PlaceType, fee_usd: f64) -> u32 {
    let n = match (mode, place) {
        (Mode::Air, _) => pick(
            rng,
            &[
                (1.0, 65),
                (2.0, 18),
                (3.0, 7),
                (4.0, 5),
                (6.0, 3),
                (10.0, 2),
            ],
        ),
        (Mode::Sea, PlaceType::Sea) => {
            let venture_share = if fee_usd >= 1000.0 { 0.2 } else { 0.04 };
            if rng.random_bool(venture_share) {
                log_normal(rng, 75.0, 0.5).clamp(20.0, 200.0)
            } else {
                log_normal(rng, 6.0, 0.8).clamp(1.0, 60.0)
            }
        }
        _ => log_normal(rng, 3.0, 0.9).clamp(1.0, 120.0),
    };
    n.round() as u32
}

fn draw_migrants(
    rng: &mut ChaCha8Rng,
    route: &Route,
    regional: &[(Country, u32)],
    total: u32,
) -> Vec<MigrantGroup> {
    if total == 0 {
        return Vec::new();
    }
    // Usually one citizenship; sometimes a second one travels along: another of the route's, or
    // one of the people common on the reporting country's other routes.
    let first = pick(rng, &route.citizens);
    let second = if total > 1 && rng.random_bool(0.12) {
        let c = pick(rng, &route.citizens);
        let c = if c == first { pick(rng, regional) } else { c };
        (c != first).then_some(c)
    } else {
        None
    };
    let second_count = second.map_or(0, |_| rng.random_range(1..total));

    // Some agencies report only "n nationals of X".
    if rng.random_bool(0.1) {
        let mut groups = vec![MigrantGroup {
            citizenship: first,
            sex: Sex::Unknown,
            age_group: AgeGroup::Unknown,
            unaccompanied: false,
            count: total - second_count,
        }];
        if let Some(c) = second {
            groups.push(MigrantGroup {
                citizenship: c,
                sex: Sex::Unknown,
                age_group: AgeGroup::Unknown,
                unaccompanied: false,
                count: second_count,
            });
        }
        return groups;
    }

    let adult = 1.0 - route.minors;
    let ages = [
        (AgeGroup::Age0To13, (route.minors * 550.0) as u32),
        (AgeGroup::Age14To17, (route.minors * 450.0) as u32),
        (AgeGroup::Age18To24, (adult * 280.0) as u32),
        (AgeGroup::Age25To34, (adult * 360.0) as u32),
        (AgeGroup::Age35To49, (adult * 240.0) as u32),
        (AgeGroup::Age50Plus, (adult * 60.0) as u32),
        (AgeGroup::Unknown, (adult * 60.0) as u32),
    ];
    let known = 1000 - 15 - 2;
    let sexes = [
        (0usize, (route.male * f64::from(known)) as u32),
        (1, ((1.0 - route.male) * f64::from(known)) as u32),
        (2, 2),
        (3, 15),
    ];
    const SEX: [Sex; 4] = [Sex::Male, Sex::Female, Sex::Other, Sex::Unknown];
    let age_index = |a: AgeGroup| AgeGroup::ALL.iter().position(|x| *x == a).unwrap_or(6);

    let unaccompanied = rng.random_bool(0.12);
    let mut groups = Vec::new();
    for (citizenship, count) in [(Some(first), total - second_count), (second, second_count)] {
        let Some(citizenship) = citizenship else {
            continue;
        };
        let mut cells = [[0u32; 7]; 4];
        for _ in 0..count {
            let age = pick(rng, &ages);
            let sex = pick(rng, &sexes);
            cells[sex][age_index(age)] += 1;
        }
        for (s, row) in cells.iter().enumerate() {
            for (a, n) in row.iter().enumerate() {
                if *n > 0 {
                    let age_group = AgeGroup::ALL[a];
                    groups.push(MigrantGroup {
                        citizenship,
                        sex: SEX[s],
                        age_group,
                        // Teenagers travel alone; young children only in the smallest groups.
                        unaccompanied: unaccompanied
                            && (age_group == AgeGroup::Age14To17
                                || (age_group.is_minor() && total <= 3)),
                        count: *n,
                    });
                }
            }
        }
    }
    groups
}

fn draw_smugglers(
    rng: &mut ChaCha8Rng,
    route: &Route,
    reporting: Country,
    mode: Mode,
    methods: &BTreeSet<Method>,
    progress: f64,
) -> Vec<Smuggler> {
    let n = pick(rng, &[(1, 65), (2, 20), (3, 9), (4, 3), (5, 2), (8, 1)]);
    let roles: &[(SmugglerRole, u32)] = match mode {
        Mode::Sea => &[
            (SmugglerRole::Transporter, 55),
            (SmugglerRole::Organiser, 15),
            (SmugglerRole::Guide, 10),
            (SmugglerRole::Recruiter, 8),
            (SmugglerRole::Financier, 3),
            (SmugglerRole::Other, 9),
        ],
        Mode::Air => &[
            (SmugglerRole::DocumentProvider, 40),
            (SmugglerRole::Organiser, 25),
            (SmugglerRole::Recruiter, 20),
            (SmugglerRole::Financier, 5),
            (SmugglerRole::Other, 10),
        ],
        Mode::Land | Mode::Mixed => &[
            (SmugglerRole::Transporter, 35),
            (SmugglerRole::Guide, 30),
            (SmugglerRole::Recruiter, 12),
            (SmugglerRole::Organiser, 12),
            (SmugglerRole::Financier, 2),
            (SmugglerRole::DocumentProvider, 2),
            (SmugglerRole::Other, 7),
        ],
    };
    // Older cases have moved further through the courts.
    let stages = [
        (SmugglerStage::Suspected, (300.0 - 150.0 * progress) as u32),
        (SmugglerStage::Arrested, (450.0 - 100.0 * progress) as u32),
        (SmugglerStage::Prosecuted, (130.0 + 80.0 * progress) as u32),
        (SmugglerStage::Convicted, (90.0 + 150.0 * progress) as u32),
        (SmugglerStage::Acquitted, (30.0 + 20.0 * progress) as u32),
    ];
    let transit = route.stops[route.stops.len() / 2];
    let ages: &[(AgeGroup, u32)] = &[
        (AgeGroup::Age14To17, if mode == Mode::Sea { 10 } else { 2 }),
        (AgeGroup::Age18To24, 150),
        (AgeGroup::Age25To34, 320),
        (AgeGroup::Age35To49, 330),
        (AgeGroup::Age50Plus, 120),
        (AgeGroup::Unknown, 70),
    ];
    let mut smugglers: Vec<Smuggler> = (0..n)
        .map(|_| Smuggler {
            citizenship: pick(rng, &[(reporting, 50), (route.stops[0], 30), (transit, 20)]),
            sex: pick(
                rng,
                &[(Sex::Male, 84), (Sex::Female, 13), (Sex::Unknown, 3)],
            ),
            age_group: pick(rng, ages),
            role: pick(rng, roles),
            stage: pick(rng, &stages),
        })
        .collect();
    if methods.contains(&Method::Corruption) && rng.random_bool(0.6) {
        smugglers.push(Smuggler {
            citizenship: reporting,
            sex: pick(rng, &[(Sex::Male, 90), (Sex::Female, 10)]),
            age_group: pick(
                rng,
                &[
                    (AgeGroup::Age25To34, 30),
                    (AgeGroup::Age35To49, 50),
                    (AgeGroup::Age50Plus, 20),
                ],
            ),
            role: SmugglerRole::CorruptOfficial,
            stage: pick(rng, &stages),
        });
    }
    smugglers
}

fn draw_fees(
    rng: &mut ChaCha8Rng,
    route: &Route,
    reporting_currency: Option<(Currency, f64)>,
    mode: Mode,
) -> Vec<Fee> {
    let origin = route.stops[0];
    let first = if mode == Mode::Air {
        pick(
            rng,
            &[
                (FeeScope::FullJourney, 45),
                (FeeScope::Leg, 10),
                (FeeScope::Documents, 45),
            ],
        )
    } else {
        pick(
            rng,
            &[
                (FeeScope::FullJourney, 65),
                (FeeScope::Leg, 28),
                (FeeScope::Documents, 7),
            ],
        )
    };
    let second = rng.random_bool(0.2).then_some(match first {
        FeeScope::Documents => FeeScope::FullJourney,
        _ if mode == Mode::Air => FeeScope::Documents,
        FeeScope::FullJourney => FeeScope::Documents,
        FeeScope::Leg => FeeScope::Leg,
    });
    let payments = payment_weights(origin.as_str(), mode);
    [Some(first), second]
        .into_iter()
        .flatten()
        .map(|scope| {
            let usd = match scope {
                FeeScope::FullJourney => log_normal(rng, route.fee_usd, 0.5),
                FeeScope::Leg => {
                    let share = rng.random_range(0.15..0.5);
                    log_normal(rng, route.fee_usd * share, 0.5)
                }
                FeeScope::Documents => {
                    let median = if mode == Mode::Air { 1200.0 } else { 300.0 };
                    log_normal(rng, median, 0.6)
                }
            }
            .clamp(20.0, 200_000.0);
            let currency = pick(
                rng,
                &[
                    (route.origin_currency, 50),
                    (reporting_currency, 20),
                    (None, 30),
                ],
            );
            let (currency, amount) = match currency {
                Some((c, rate)) if usd / rate < 1.0e8 => (c, usd / rate),
                _ => (Currency::USD, usd),
            };
            let digits = if rng.random_bool(0.7) { 2 } else { 3 };
            Fee {
                amount: round_significant(amount, digits),
                currency,
                scope,
                payment: pick(rng, &payments),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;

    fn country(s: &str) -> Country {
        s.parse().unwrap()
    }

    fn all_profile_countries() -> Vec<Country> {
        PROFILES.iter().map(|(c, _)| country(c)).collect()
    }

    #[test]
    fn every_table_route_parses_and_passes_through_its_country() {
        for (c, specs) in PROFILES {
            for spec in *specs {
                assert!(
                    Route::parse(spec, country(c)).is_some(),
                    "{c}: {} {} does not parse or misses {c}",
                    spec.stops,
                    spec.modes
                );
            }
        }
        assert!(PROFILES.windows(2).all(|w| w[0].0 < w[1].0));
        for c in Country::all() {
            assert!(!routes_for(c).is_empty(), "no routes for {c}");
        }
    }

    #[test]
    fn same_config_same_records() {
        let cfg = SynthConfig::new(country("THA"), 500, 7);
        let a: Vec<String> = generate(&cfg)
            .map(|r| serde_json::to_string(&r).unwrap())
            .collect();
        let b: Vec<String> = generate(&cfg)
            .map(|r| serde_json::to_string(&r).unwrap())
            .collect();
        assert_eq!(a.len(), 500);
        assert_eq!(a, b);
    }

    #[test]
    fn seed_and_country_change_the_data() {
        let json = |cfg: &SynthConfig| {
            generate(cfg)
                .map(|r| serde_json::to_string(&r).unwrap())
                .collect::<Vec<_>>()
        };
        let base = SynthConfig::new(country("IDN"), 200, 1);
        let other_seed = SynthConfig {
            seed: 2,
            ..base.clone()
        };
        let other_country = SynthConfig {
            country: country("MYS"),
            ..base.clone()
        };
        assert_ne!(json(&base), json(&other_seed));
        let strip = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|s| s.replace("IDN", "").replace("MYS", ""))
                .collect()
        };
        assert_ne!(strip(json(&base)), strip(json(&other_country)));
    }

    #[test]
    fn exact_count_and_size_hint() {
        for n in [0, 1, 47, 1000] {
            let cfg = SynthConfig::new(country("PHL"), n, 3);
            let it = generate(&cfg);
            assert_eq!(it.size_hint(), (n as usize, Some(n as usize)));
            assert_eq!(it.count() as u64, n);
        }
        let short = SynthConfig {
            start: Month::new(2100, 11).unwrap(),
            months: 12,
            ..SynthConfig::new(country("THA"), 100, 3)
        };
        let months: BTreeSet<_> = generate(&short).map(|r| r.period).collect();
        assert_eq!(months.len(), 2);
        assert_eq!(generate(&short).count(), 100);
    }

    #[test]
    fn records_are_valid_consistent_and_uniquely_keyed() {
        let fx = FxRates::sample();
        let mut countries = all_profile_countries();
        countries.extend([country("FRA"), country("UNK"), country("IND")]);
        for c in countries {
            let cfg = SynthConfig::new(c, 3000, 11);
            let mut ids = HashSet::new();
            for r in generate(&cfg) {
                assert_eq!(r.check(), Ok(()), "{}", r.source_id);
                assert_eq!(r.country, c);
                assert!(ids.insert(r.source_id.clone()), "duplicate {}", r.source_id);
                assert!(r.source_id.starts_with(&format!("SYN-{c}-")));
                for f in &r.fees {
                    assert!(fx.to_usd(f.amount, f.currency).is_some(), "{}", f.currency);
                    assert!(f.amount > 0.0);
                }
                assert_consistent(&r);
            }
        }
    }

    fn assert_consistent(r: &IncidentRecord) {
        let id = &r.source_id;
        let mode = r.mode.unwrap();
        let place = r.place_type.unwrap();
        // The incident's mode is that of a leg entering or leaving the reporting country.
        assert!(
            r.route
                .iter()
                .any(|l| (l.from == r.country || l.to == r.country) && l.mode == Some(mode)),
            "{id}: mode {mode} on no leg touching {}",
            r.country
        );
        assert_eq!(place == PlaceType::Airport, mode == Mode::Air, "{id}");
        if place == PlaceType::Sea {
            assert_eq!(mode, Mode::Sea, "{id}");
        }
        let is_doc = |m: &Method| {
            matches!(
                m,
                Method::DocCounterfeit
                    | Method::DocForged
                    | Method::DocImpostor
                    | Method::DocFraudulentlyObtained
                    | Method::VisaAbuse
            )
        };
        if mode == Mode::Sea && !r.methods.is_empty() {
            assert!(!r.methods.iter().all(is_doc), "{id}: document-only at sea");
            assert!(r.methods.iter().all(|m| !is_doc(m)), "{id}");
        }
        if mode == Mode::Air && !r.methods.is_empty() {
            assert!(r.methods.iter().any(is_doc), "{id}: air without documents");
            assert!(
                r.methods
                    .iter()
                    .all(|m| is_doc(m) || *m == Method::Corruption),
                "{id}"
            );
        }
        if r.methods.contains(&Method::ConcealmentVessel) {
            assert_eq!(mode, Mode::Sea, "{id}");
        }
        if r.methods.contains(&Method::ClandestineOnFoot) {
            assert_eq!(place, PlaceType::GreenBorder, "{id}");
        }
        if r.smugglers
            .iter()
            .any(|s| s.role == SmugglerRole::CorruptOfficial)
        {
            assert!(r.methods.contains(&Method::Corruption), "{id}");
        }
        if r.migrants.is_empty() {
            assert!(!r.smugglers.is_empty(), "{id}: nobody in the record");
            assert!(r.fees.is_empty(), "{id}");
        }
        if mode == Mode::Air {
            assert_eq!(r.dead + r.missing, 0, "{id}");
        }
    }

    #[test]
    fn distributions_look_like_the_region() {
        let cfg = SynthConfig::new(country("IDN"), 40_000, 5);
        let mut quarters = BTreeMap::<u8, u64>::new();
        let mut currencies = BTreeSet::new();
        let mut big_boats = 0;
        let mut small = 0;
        let mut dead_at_sea = 0;
        let mut dead_elsewhere = 0;
        let mut unaccompanied = 0;
        let mut mixed = 0;
        let mut modes = BTreeMap::<Mode, u64>::new();
        for r in generate(&cfg) {
            *quarters.entry(r.period.quarter()).or_default() += 1;
            *modes.entry(r.mode.unwrap()).or_default() += 1;
            currencies.extend(r.fees.iter().map(|f| f.currency));
            let n: u32 = r.migrants.iter().map(|g| g.count).sum();
            if (1..=10).contains(&n) {
                small += 1;
            }
            if n >= 50 {
                big_boats += 1;
            }
            if n > 120 {
                assert_eq!(r.mode, Some(Mode::Sea), "{}", r.source_id);
            }
            if r.dead > 0 {
                if r.mode == Some(Mode::Sea) {
                    dead_at_sea += 1;
                } else {
                    dead_elsewhere += 1;
                }
            }
            unaccompanied += u64::from(r.migrants.iter().any(|g| g.unaccompanied));
            let cits: BTreeSet<_> = r.migrants.iter().map(|g| g.citizenship).collect();
            mixed += u64::from(cits.len() > 1);
        }
        let (min, max) = (
            *quarters.values().min().unwrap(),
            *quarters.values().max().unwrap(),
        );
        assert!(
            max as f64 > min as f64 * 1.1,
            "no seasonality: {quarters:?}"
        );
        assert!(small > 25_000, "{small} small groups");
        assert!(big_boats > 100, "{big_boats} big boats");
        assert!(
            dead_at_sea > dead_elsewhere,
            "{dead_at_sea} vs {dead_elsewhere}"
        );
        assert!(
            unaccompanied > 50 && unaccompanied < 4000,
            "{unaccompanied}"
        );
        assert!(mixed > 100, "{mixed}");
        assert!(currencies.len() >= 5, "{currencies:?}");
        assert!(modes.len() >= 3, "{modes:?}");
    }

    #[test]
    fn fees_sit_near_route_medians() {
        let fx = FxRates::sample();
        let cfg = SynthConfig::new(country("AUS"), 20_000, 9);
        let mut sea = Vec::new();
        let mut png = Vec::new();
        for r in generate(&cfg) {
            for f in r.fees.iter().filter(|f| f.scope == FeeScope::FullJourney) {
                let usd = fx.to_usd(f.amount, f.currency).unwrap();
                if r.origin().as_str() == "PNG" {
                    png.push(usd);
                } else if r.origin().as_str() == "AFG" {
                    sea.push(usd);
                }
            }
        }
        let median = |v: &mut Vec<i64>| {
            v.sort();
            v[v.len() / 2]
        };
        let afg = median(&mut sea);
        assert!((6000..13000).contains(&afg), "{afg}");
        assert!(!png.is_empty() && median(&mut png) < 500);
    }

    #[test]
    fn jsonl_round_trips() {
        let cfg = SynthConfig::new(country("KHM"), 300, 4);
        let mut out = Vec::new();
        assert_eq!(write_jsonl(&cfg, &mut out).unwrap(), 300);
        let text = String::from_utf8(out).unwrap();
        let back: Vec<IncidentRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, generate(&cfg).collect::<Vec<_>>());
    }

    #[test]
    fn csv_round_trips_through_the_template_reader() {
        let cfg = SynthConfig::new(country("MYS"), 500, 6);
        let mut out = Vec::new();
        assert_eq!(write_csv(&cfg, &mut out).unwrap(), 500);
        let mut reader = crate::import::template::CsvReader::new(out.as_slice()).unwrap();
        let mut back = Vec::new();
        while let Some((line, row)) = reader.read_record().unwrap() {
            back.push(row.unwrap_or_else(|e| panic!("line {line}: {e}")));
        }
        assert_eq!(back, generate(&cfg).collect::<Vec<_>>());
    }

    #[test]
    fn the_store_takes_every_record_once() {
        let fx = FxRates::sample();
        for c in ["THA", "AUS", "FRA"] {
            let dir = tempfile::tempdir().unwrap();
            let mut store = crate::store::Store::create(dir.path(), country(c)).unwrap();
            let cfg = SynthConfig::new(country(c), 1000, 2);
            for expected in [
                crate::store::Inserted::New,
                crate::store::Inserted::Duplicate,
            ] {
                let mut tx = store.begin_import("synth", "", &fx).unwrap();
                for r in generate(&cfg) {
                    assert_eq!(tx.insert(&r).unwrap(), expected, "{}", r.source_id);
                }
                tx.commit(Default::default()).unwrap();
            }
            assert_eq!(store.incident_count().unwrap(), 1000);
        }
    }

    #[test]
    fn quoted_amounts_are_round_whole_numbers() {
        assert_eq!(round_significant(45.64, 3), 46.0);
        assert_eq!(round_significant(14_321.0, 2), 14_000.0);
        assert_eq!(round_significant(251_234_567.0, 3), 251_000_000.0);
        assert_eq!(round_significant(0.2, 2), 1.0);
        let cfg = SynthConfig::new(country("VNM"), 2000, 8);
        for f in generate(&cfg).flat_map(|r| r.fees) {
            assert_eq!(f.amount.fract(), 0.0);
            let text = f.amount.to_string();
            assert!(text.trim_end_matches('0').len() <= 3, "{text}");
        }
    }

    #[test]
    fn apportion_is_exact() {
        assert_eq!(apportion(10, &[1.0, 1.0, 1.0]), [4, 3, 3]);
        assert_eq!(apportion(0, &[1.0, 2.0]), [0, 0]);
        assert_eq!(apportion(5, &[0.0, 1.0]), [0, 5]);
        let w: Vec<f64> = (0..48).map(|i| 1.0 + f64::from(i % 7)).collect();
        assert_eq!(apportion(5_000_003, &w).iter().sum::<u64>(), 5_000_003);
    }
}
