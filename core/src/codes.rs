//! Typed code lists: countries, currencies and the closed vocabularies of the data model.
//!
//! Every value here can only be built valid (`FromStr` / `TryFrom<&str>` check it), so a record or
//! query that holds one needs no further checking. Codes are the wire and storage form; they are
//! stable and lower-case (except ISO codes and the one-letter sex codes, which follow their
//! standards).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::iso;

/// A value that is not in a closed code list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {list} code")]
pub struct CodeError {
    /// Which list the value was checked against, e.g. "country".
    pub list: &'static str,
    /// The offending value, trimmed to at most 40 characters so a hostile input cannot flood a message.
    pub value: String,
}

impl CodeError {
    pub(crate) fn new(list: &'static str, value: &str) -> Self {
        Self {
            list,
            value: value.chars().take(40).collect(),
        }
    }
}

/// The candidate `given` most likely stands for (a typo, or the wrong case): the closest by
/// edit distance, if it is within a third of the length of `given` (at least one edit) and no
/// other candidate is as close. `None` when nothing is that close or two are.
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let given = given.trim().to_lowercase();
    if given.is_empty() {
        return None;
    }
    let limit = (given.chars().count() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    let mut tied = false;
    for candidate in candidates {
        let d = strsim::damerau_levenshtein(&given, &candidate.to_lowercase());
        match best {
            Some((b, _)) if d > b => {}
            Some((b, _)) if d == b => tied = true,
            _ => {
                best = Some((d, candidate));
                tied = false;
            }
        }
    }
    best.filter(|&(d, _)| d <= limit && !tied).map(|(_, c)| c)
}

/// Defines a closed code list as an enum with `code()`, `ALL`, `FromStr`, `Display` and serde as its code.
macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident, $list:literal { $($(#[$vmeta:meta])* $variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $(#[doc = concat!("`", $code, "`.")] $(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in code-list order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Name of the code list, as used in error messages.
            pub const LIST: &'static str = $list;

            /// The stable code of this value.
            pub const fn code(self) -> &'static str {
                match self {
                    $($name::$variant => $code),+
                }
            }
        }

        impl FromStr for $name {
            type Err = CodeError;
            fn from_str(s: &str) -> Result<Self, CodeError> {
                match s {
                    $($code => Ok($name::$variant),)+
                    other => Err(CodeError::new($list, other)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

code_enum! {
    /// Mode of transport of an incident or a route leg.
    Mode, "mode" {
        Land => "land",
        Sea => "sea",
        Air => "air",
        Mixed => "mixed",
    }
}

code_enum! {
    /// Where the detection or interception took place.
    PlaceType, "place_type" {
        BorderPost => "border_post",
        GreenBorder => "green_border",
        Sea => "sea",
        Airport => "airport",
        Inland => "inland",
    }
}

code_enum! {
    /// Smuggling method observed in an incident.
    Method, "method" {
        /// Fraudulent document: counterfeit (wholly false).
        DocCounterfeit => "doc_counterfeit",
        /// Fraudulent document: forged (genuine, altered).
        DocForged => "doc_forged",
        /// Fraudulent document: impostor (genuine, used by someone else).
        DocImpostor => "doc_impostor",
        /// Fraudulent document: genuine but fraudulently obtained.
        DocFraudulentlyObtained => "doc_fraudulently_obtained",
        /// Abuse of a visa (purpose or duration).
        VisaAbuse => "visa_abuse",
        /// Concealment in a vehicle.
        ConcealmentVehicle => "concealment_vehicle",
        /// Concealment in a vessel.
        ConcealmentVessel => "concealment_vessel",
        /// Concealment in a container.
        ConcealmentContainer => "concealment_container",
        /// Clandestine crossing on foot.
        ClandestineOnFoot => "clandestine_on_foot",
        /// Corruption of officials.
        Corruption => "corruption",
        /// Guide or escort across the border.
        GuideEscort => "guide_escort",
        /// Any other method.
        Other => "other",
    }
}

code_enum! {
    /// Sex of a migrant group or a smuggler.
    Sex, "sex" {
        Female => "F",
        Male => "M",
        /// Another sex or gender marker.
        Other => "X",
        Unknown => "U",
    }
}

code_enum! {
    /// Age group in years.
    AgeGroup, "age_group" {
        Age0To13 => "0-13",
        Age14To17 => "14-17",
        Age18To24 => "18-24",
        Age25To34 => "25-34",
        Age35To49 => "35-49",
        Age50Plus => "50+",
        Unknown => "U",
    }
}

impl AgeGroup {
    /// Whether the group is under 18.
    pub const fn is_minor(self) -> bool {
        matches!(self, AgeGroup::Age0To13 | AgeGroup::Age14To17)
    }
}

code_enum! {
    /// Role of a smuggler in the operation.
    SmugglerRole, "smuggler_role" {
        Organiser => "organiser",
        Recruiter => "recruiter",
        Transporter => "transporter",
        Guide => "guide",
        DocumentProvider => "document_provider",
        Financier => "financier",
        CorruptOfficial => "corrupt_official",
        Other => "other",
    }
}

code_enum! {
    /// Stage a smuggler's case has reached.
    SmugglerStage, "smuggler_stage" {
        Suspected => "suspected",
        Arrested => "arrested",
        Prosecuted => "prosecuted",
        Convicted => "convicted",
        Acquitted => "acquitted",
    }
}

code_enum! {
    /// What a fee paid for.
    FeeScope, "fee_scope" {
        FullJourney => "full_journey",
        Leg => "leg",
        Documents => "documents",
    }
}

code_enum! {
    /// How a fee was paid.
    PaymentMode, "payment_mode" {
        Cash => "cash",
        BankTransfer => "bank_transfer",
        Hawala => "hawala",
        MobileMoney => "mobile_money",
        InKind => "in_kind",
        Other => "other",
        Unknown => "unknown",
    }
}

code_enum! {
    /// Band of a fee's amount in USD: fee amounts are released only as bands.
    FeeBand, "fee_band" {
        Under500 => "0-499",
        From500 => "500-999",
        From1000 => "1000-2499",
        From2500 => "2500-4999",
        From5000 => "5000-9999",
        From10000 => "10000+",
    }
}

impl FeeBand {
    /// Lower bounds in whole USD, aligned with `ALL`.
    pub const LOWER_BOUNDS_USD: [i64; 6] = [0, 500, 1000, 2500, 5000, 10000];

    /// The band of an amount in whole USD (negative amounts never reach here: fees are validated ≥ 0).
    pub fn of_usd(amount: i64) -> FeeBand {
        let mut band = FeeBand::Under500;
        for (b, lower) in FeeBand::ALL.iter().zip(FeeBand::LOWER_BOUNDS_USD) {
            if amount >= lower {
                band = *b;
            }
        }
        band
    }
}

code_enum! {
    /// A named migration corridor, as Frontex, IOM and the Bali Process report by. A record may
    /// name one beside its origin → destination legs; a corridor says which regional route a
    /// journey belongs to, which two countries alone cannot (Libya → Italy is the Central
    /// Mediterranean, Türkiye → Greece the Eastern Mediterranean or the Eastern land border).
    Corridor, "corridor" {
        /// North Africa (Libya, Tunisia, Egypt) to Italy and Malta.
        CentralMediterranean => "central_mediterranean",
        /// Morocco and Algeria to mainland Spain and Ceuta and Melilla.
        WesternMediterranean => "western_mediterranean",
        /// Türkiye to Greece, Cyprus and Bulgaria, by sea and by land.
        EasternMediterranean => "eastern_mediterranean",
        /// West Africa (Senegal, Mauritania, Morocco) to the Canary Islands.
        WesternAfricanAtlantic => "western_african_atlantic",
        /// Through the Western Balkans towards the European Union.
        WesternBalkan => "western_balkan",
        /// The eastern land borders of the European Union (Belarus, Ukraine, Russia, Moldova).
        EasternBorders => "eastern_borders",
        /// Across the Black Sea to Romania and Bulgaria.
        BlackSea => "black_sea",
        /// The circular route between Albania and Greece.
        CircularAlbaniaGreece => "circular_albania_greece",
        /// From France and Belgium across the Channel to the United Kingdom.
        EnglishChannel => "english_channel",
        /// East and Horn of Africa to Yemen and the Gulf (IOM's Eastern Route).
        EhoaEastern => "ehoa_eastern",
        /// East and Horn of Africa to North Africa and Europe (IOM's Northern Route).
        EhoaNorthern => "ehoa_northern",
        /// East and Horn of Africa to Southern Africa (IOM's Southern Route).
        EhoaSouthern => "ehoa_southern",
        /// Across the Sahara towards North Africa.
        SaharaCrossing => "sahara_crossing",
        /// Through Central America and Mexico to the United States.
        CentralAmerican => "central_american",
        /// Within South America, and north through the Darién.
        SouthAmerican => "south_american",
        /// Across the Caribbean Sea.
        Caribbean => "caribbean",
        /// Bali Process: Myanmar and Bangladesh across the Bay of Bengal and the Andaman Sea.
        BayOfBengalAndamanSea => "bay_of_bengal_andaman_sea",
        /// Bali Process: South-East Asia over land (the Mekong countries to Thailand and Malaysia).
        MekongOverland => "mekong_overland",
        /// Bali Process: by sea from Indonesia, Sri Lanka or Viet Nam towards Australia.
        IndianOceanAustralia => "indian_ocean_australia",
        /// South-West Asia (Afghanistan, Pakistan) to Iran and Türkiye.
        SouthwestAsiaOverland => "southwest_asia_overland",
        /// A named corridor not in this list.
        Other => "other",
    }
}

impl Corridor {
    /// The corridor a label names: its code, or a name as agencies write it, compared without
    /// case, spaces, hyphens, a leading "the" and a trailing "route" — `Central Mediterranean
    /// Route`, `central-mediterranean`, `Western Balkans`, `Eastern land borders`, `Channel`,
    /// `EHOA Eastern Route`.
    pub fn from_label(label: &str) -> Option<Corridor> {
        if let Ok(c) = label.trim().parse::<Corridor>() {
            return Some(c);
        }
        let mut key: String = label
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        for prefix in ["the"] {
            if let Some(rest) = key.strip_prefix(prefix)
                && !rest.is_empty()
            {
                key = rest.to_string();
            }
        }
        for suffix in ["routes", "route", "corridor"] {
            if let Some(rest) = key.strip_suffix(suffix)
                && !rest.is_empty()
            {
                key = rest.to_string();
            }
        }
        let found = match key.as_str() {
            "westernbalkans" => Corridor::WesternBalkan,
            "easternlandborders" | "easternlandborder" | "easternborder" => {
                Corridor::EasternBorders
            }
            "channel" | "englishchannel" => Corridor::EnglishChannel,
            "westernafrican" | "atlantic" | "canaryislands" => Corridor::WesternAfricanAtlantic,
            "circularalbaniatogreece" | "circularfromalbaniatogreece" => {
                Corridor::CircularAlbaniaGreece
            }
            "ehoaeastern" | "hornofafricatoyemen" => Corridor::EhoaEastern,
            "ehoanorthern" => Corridor::EhoaNorthern,
            "ehoasouthern" => Corridor::EhoaSouthern,
            "sahara" | "saharadesertcrossing" | "saharadesert" => Corridor::SaharaCrossing,
            "andamansea" | "bayofbengal" => Corridor::BayOfBengalAndamanSea,
            _ => Corridor::ALL
                .iter()
                .copied()
                .find(|c| c.code().replace('_', "") == key)?,
        };
        Some(found)
    }
}

/// Defines a three-letter ISO code newtype checked against a sorted list.
macro_rules! iso_code {
    ($(#[$meta:meta])* $name:ident, $list:literal, $table:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 3]);

        impl $name {
            /// Name of the code list, as used in error messages.
            pub const LIST: &'static str = $list;

            /// The code as a string slice.
            pub fn as_str(&self) -> &str {
                // The three bytes were checked to be ASCII upper-case letters when built.
                std::str::from_utf8(&self.0).unwrap_or("???")
            }

            /// Every valid code, sorted.
            pub fn all() -> impl Iterator<Item = $name> {
                $table.iter().map(|c| {
                    let b = c.as_bytes();
                    $name([b[0], b[1], b[2]])
                })
            }
        }

        impl FromStr for $name {
            type Err = CodeError;
            fn from_str(s: &str) -> Result<Self, CodeError> {
                if $table.binary_search(&s).is_ok() {
                    let b = s.as_bytes();
                    Ok($name([b[0], b[1], b[2]]))
                } else {
                    Err(CodeError::new($list, s))
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

iso_code! {
    /// An ISO 3166-1 alpha-3 country code, or `UNK` (unknown), `XKX` (Kosovo), `XXA` (stateless).
    Country, "country", iso::COUNTRIES
}

iso_code! {
    /// An ISO 4217 currency code.
    Currency, "currency", iso::CURRENCIES
}

impl Country {
    /// The unknown country, `UNK`.
    pub const UNKNOWN: Country = Country(*b"UNK");
    /// Stateless, `XXA` (ICAO 9303).
    pub const STATELESS: Country = Country(*b"XXA");

    /// A country as agencies' exports write it: a code of this list in any case, or one of the
    /// non-ISO codes of [`AGENCY_COUNTRY_CODES`] (ICAO 9303's `XXA`/`XXB`/`XXC`/`XXX`, words
    /// like `stateless` and `unknown`), mapped by that table's documented defaults.
    pub fn from_agency_code(s: &str) -> Option<Country> {
        let key = s.trim().to_uppercase();
        if let Ok(c) = key.parse::<Country>() {
            return Some(c);
        }
        AGENCY_COUNTRY_CODES
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, c)| *c)
    }
}

/// Non-ISO country codes and words agencies use, and the code each one is stored as. Compared
/// after trimming and upper-casing. `UNK` stays this project's *unknown*: ICAO 9303 gives `UNK`
/// to UNMIK travel documents of Kosovo, which agencies rarely mean.
pub const AGENCY_COUNTRY_CODES: &[(&str, Country)] = &[
    // ICAO 9303: stateless person.
    ("STATELESS", Country::STATELESS),
    // ICAO 9303: refugee under the 1951 Convention (XXB) or another refugee (XXC); the
    // document does not give a citizenship, so it is unknown to the federation.
    ("XXB", Country::UNKNOWN),
    ("XXC", Country::UNKNOWN),
    ("REFUGEE", Country::UNKNOWN),
    // ICAO 9303: person of unspecified nationality.
    ("XXX", Country::UNKNOWN),
    ("UNKNOWN", Country::UNKNOWN),
    ("UNSPECIFIED", Country::UNKNOWN),
    ("NOT KNOWN", Country::UNKNOWN),
    ("N/A", Country::UNKNOWN),
    ("?", Country::UNKNOWN),
    // A citizenship outside the agency's own list: unknown to the federation.
    ("OTHER", Country::UNKNOWN),
    ("OTH", Country::UNKNOWN),
    // Kosovo: the code on its passports, and the UN's.
    ("RKS", Country(*b"XKX")),
    ("KOS", Country(*b"XKX")),
    // ICAO 9303: Germany's one-letter code in machine-readable zones.
    ("D", Country(*b"DEU")),
    // ICAO 9303: the British nationality variants.
    ("GBD", Country(*b"GBR")),
    ("GBN", Country(*b"GBR")),
    ("GBO", Country(*b"GBR")),
    ("GBP", Country(*b"GBR")),
    ("GBS", Country(*b"GBR")),
];

impl Currency {
    /// The US dollar, in which fee amounts are compared.
    pub const USD: Currency = Currency(*b"USD");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_gets_the_one_code_it_is_close_to() {
        let dims = ["route", "mode", "method", "sex", "place_type"];
        assert_eq!(closest("rout", dims), Some("route"));
        assert_eq!(closest("Mode", dims), Some("mode"));
        assert_eq!(closest("placetype", dims), Some("place_type"));
        assert_eq!(closest("zzzzzz", dims), None);
        assert_eq!(closest("", dims), None);
        // Two equally close: no guess.
        assert_eq!(closest("mod", ["mode", "mods"]), None);
        let countries: Vec<Country> = Country::all().collect();
        assert_eq!(
            closest("tha", countries.iter().map(Country::as_str)),
            Some("THA")
        );
    }

    #[test]
    fn countries_include_the_special_codes_and_reject_others() {
        for c in ["THA", "UNK", "XKX", "XXA", "AUS"] {
            assert_eq!(
                c.parse::<Country>().map(|c| c.to_string()),
                Ok(c.to_string())
            );
        }
        for bad in ["tha", "TH", "THAI", "ZZZ", "", "ÀBC"] {
            assert!(bad.parse::<Country>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn code_lists_are_sorted_for_binary_search() {
        assert!(iso::COUNTRIES.windows(2).all(|w| w[0] < w[1]));
        assert!(iso::CURRENCIES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn enums_round_trip_through_their_codes() {
        for m in Method::ALL {
            assert_eq!(m.code().parse::<Method>(), Ok(*m));
        }
        for a in AgeGroup::ALL {
            assert_eq!(a.code().parse::<AgeGroup>(), Ok(*a));
        }
        assert!("Land".parse::<Mode>().is_err());
    }

    #[test]
    fn fee_bands_cover_their_bounds() {
        assert_eq!(FeeBand::of_usd(0), FeeBand::Under500);
        assert_eq!(FeeBand::of_usd(499), FeeBand::Under500);
        assert_eq!(FeeBand::of_usd(500), FeeBand::From500);
        assert_eq!(FeeBand::of_usd(9_999), FeeBand::From5000);
        assert_eq!(FeeBand::of_usd(10_000), FeeBand::From10000);
        assert_eq!(FeeBand::of_usd(1_000_000), FeeBand::From10000);
    }

    #[test]
    fn agency_codes_map_to_documented_defaults() {
        let code = |s: &str| Country::from_agency_code(s).map(|c| c.to_string());
        for (given, want) in [
            ("XXA", "XXA"),
            ("stateless", "XXA"),
            (" Stateless ", "XXA"),
            ("XXB", "UNK"),
            ("XXC", "UNK"),
            ("XXX", "UNK"),
            ("UNK", "UNK"),
            ("unknown", "UNK"),
            ("Other", "UNK"),
            ("RKS", "XKX"),
            ("D", "DEU"),
            ("GBN", "GBR"),
            ("tha", "THA"),
        ] {
            assert_eq!(code(given).as_deref(), Some(want), "{given}");
        }
        for bad in ["ZZZ", "", "Narnia", "XXD"] {
            assert_eq!(code(bad), None, "{bad}");
        }
        // Every target is a valid country and no alias shadows a real code.
        for (alias, target) in AGENCY_COUNTRY_CODES {
            assert!(target.as_str().parse::<Country>().is_ok());
            assert!(alias.parse::<Country>().is_err(), "{alias} is a real code");
        }
    }

    #[test]
    fn corridors_are_read_from_codes_and_common_names() {
        for c in Corridor::ALL {
            assert_eq!(Corridor::from_label(c.code()), Some(*c));
        }
        for (label, want) in [
            (
                "Central Mediterranean Route",
                Corridor::CentralMediterranean,
            ),
            ("central-mediterranean", Corridor::CentralMediterranean),
            ("Western Balkans", Corridor::WesternBalkan),
            ("Western Balkan route", Corridor::WesternBalkan),
            ("Eastern land borders", Corridor::EasternBorders),
            ("Eastern Borders", Corridor::EasternBorders),
            (
                "Western African Atlantic Route",
                Corridor::WesternAfricanAtlantic,
            ),
            ("EHOA Eastern Route", Corridor::EhoaEastern),
            ("The Channel", Corridor::EnglishChannel),
            ("Andaman Sea", Corridor::BayOfBengalAndamanSea),
        ] {
            assert_eq!(Corridor::from_label(label), Some(want), "{label}");
        }
        for bad in [
            "",
            "route",
            "Asia Pacific routes",
            "Intra-African routes",
            "Mediterranean",
        ] {
            assert_eq!(Corridor::from_label(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        /// A corridor's code, written as agencies write names — any case, spaces or hyphens for
        /// underscores, a leading "the", a trailing "route" — reads as that corridor; and an
        /// agency country code in any case, padded, reads as its documented target.
        #[test]
        fn labels_read_back_however_they_are_written(
            c in 0..Corridor::ALL.len(),
            a in 0..AGENCY_COUNTRY_CODES.len(),
            sep in proptest::sample::select(vec![" ", "-", "_", ""]),
            upper in proptest::collection::vec(proptest::bool::ANY, 64),
            the in proptest::bool::ANY,
            route in proptest::sample::select(vec!["", " route", " Route", " routes", " corridor"]),
            pad in "[ ]{0,3}",
        ) {
            let corridor = Corridor::ALL[c];
            let cased = |s: &str| -> String {
                s.chars()
                    .zip(upper.iter().cycle())
                    .map(|(ch, up)| if *up { ch.to_ascii_uppercase() } else { ch.to_ascii_lowercase() })
                    .collect()
            };
            let mut label = cased(&corridor.code().replace('_', sep));
            if the {
                label = format!("The {label}");
            }
            label.push_str(route);
            proptest::prop_assert_eq!(Corridor::from_label(&label), Some(corridor), "{}", label);
            let (alias, target) = AGENCY_COUNTRY_CODES[a];
            let written = format!("{pad}{}{pad}", cased(alias));
            proptest::prop_assert_eq!(Country::from_agency_code(&written), Some(target), "{}", written);
        }
    }

    #[test]
    fn code_errors_do_not_echo_long_input() {
        let long = "X".repeat(10_000);
        let err = long.parse::<Country>().unwrap_err();
        assert!(err.to_string().len() < 100);
    }
}
