//! The console's languages: every string it shows comes from a Fluent file compiled into the
//! binary (`node/locales/<lang>/console.ftl`), and numbers and dates are written the way the
//! language writes them.
//!
//! English (`en`) and Bahasa Indonesia (`id`) ship; a message missing from a language falls back
//! to English (a unit test keeps both files holding the same messages).

use std::collections::HashMap;
use std::sync::Arc;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

use super::ConsoleError;

/// A language the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Bahasa Indonesia.
    Id,
}

impl Lang {
    /// Every language, in the order the switch lists them.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Id];

    /// The BCP 47 tag (the `lang` attribute and the cookie value).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Id => "id",
        }
    }

    /// The language's own name for itself.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Id => "Bahasa Indonesia",
        }
    }

    /// A tag as the browser sent it (`en`, `id`, `id-ID`, …); `None` for anything else.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next()?.trim().to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.tag() == primary)
    }

    /// The first supported language of an `Accept-Language` header.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        header
            .split(',')
            .filter_map(|part| part.split(';').next())
            .find_map(Lang::from_tag)
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../../locales/en/console.ftl"),
            Lang::Id => include_str!("../../locales/id/console.ftl"),
        }
    }

    fn group_separator(self) -> char {
        match self {
            Lang::En => ',',
            Lang::Id => '.',
        }
    }

    fn decimal_separator(self) -> char {
        match self {
            Lang::En => '.',
            Lang::Id => ',',
        }
    }
}

/// The compiled messages of every language.
#[derive(Clone)]
pub struct Catalog {
    bundles: Arc<HashMap<Lang, FluentBundle<FluentResource>>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

impl Catalog {
    /// The shipped messages, parsed once per process.
    pub fn shared() -> Result<Catalog, ConsoleError> {
        static SHARED: std::sync::OnceLock<Result<Catalog, String>> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| Catalog::load().map_err(|e| e.to_string()))
            .clone()
            .map_err(ConsoleError::Messages)
    }

    /// Parses the shipped message files. An error here is a defect of the binary (a test
    /// catches it), reported rather than panicked on.
    pub fn load() -> Result<Catalog, ConsoleError> {
        let mut bundles = HashMap::new();
        for lang in Lang::ALL {
            let resource = FluentResource::try_new(lang.source().to_string())
                .map_err(|(_, e)| ConsoleError::Messages(format!("{}: {e:?}", lang.tag())))?;
            let id: unic_langid::LanguageIdentifier = lang
                .tag()
                .parse()
                .map_err(|e| ConsoleError::Messages(format!("{}: {e}", lang.tag())))?;
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // Text goes into HTML that the templates escape; no isolation marks around values.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|e| ConsoleError::Messages(format!("{}: {e:?}", lang.tag())))?;
            bundles.insert(lang, bundle);
        }
        Ok(Catalog {
            bundles: Arc::new(bundles),
        })
    }

    /// The message `key` in `lang` with `args`, falling back to English, then to the key.
    pub fn message(&self, lang: Lang, key: &str, args: &[(&str, String)]) -> String {
        for l in [lang, Lang::En] {
            let Some(bundle) = self.bundles.get(&l) else {
                continue;
            };
            let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) else {
                continue;
            };
            let mut fargs = FluentArgs::new();
            for (k, v) in args {
                fargs.set(*k, FluentValue::from(v.as_str()));
            }
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(&fargs), &mut errors);
            return text.into_owned();
        }
        key.to_string()
    }

    /// The message ids of a language (for the completeness test): every line `id = …`.
    #[cfg(test)]
    fn ids(lang: Lang) -> std::collections::BTreeSet<String> {
        lang.source()
            .lines()
            .filter_map(|l| l.split_once(" ="))
            .map(|(id, _)| id)
            .filter(|id| {
                id.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            .map(str::to_string)
            .collect()
    }
}

/// What a page needs to speak one language: the catalog and the language.
#[derive(Debug, Clone)]
pub struct Tr {
    catalog: Catalog,
    /// The page's language.
    pub lang: Lang,
}

impl Tr {
    /// `catalog` in `lang`.
    pub fn new(catalog: Catalog, lang: Lang) -> Tr {
        Tr { catalog, lang }
    }

    /// A message without arguments (templates call `t.t("key")`).
    pub fn t(&self, key: &str) -> String {
        self.catalog.message(self.lang, key, &[])
    }

    /// A message with arguments.
    pub fn ta(&self, key: &str, args: &[(&str, String)]) -> String {
        self.catalog.message(self.lang, key, args)
    }

    /// An integer with the language's digit grouping (`12,345` / `12.345`).
    pub fn int(&self, n: u64) -> String {
        group(&n.to_string(), self.lang.group_separator())
    }

    /// A signed integer, grouped.
    pub fn signed(&self, n: i64) -> String {
        let digits = group(&n.unsigned_abs().to_string(), self.lang.group_separator());
        if n < 0 { format!("-{digits}") } else { digits }
    }

    /// A decimal with `places` digits after the language's decimal separator.
    pub fn decimal(&self, x: f64, places: usize) -> String {
        let text = format!("{:.*}", places, x.abs());
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let sign = if x < 0.0 && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
            "-"
        } else {
            ""
        };
        let int = group(int, self.lang.group_separator());
        if frac.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}{}{frac}", self.lang.decimal_separator())
        }
    }

    /// A moment (ms since the epoch) as the language writes a date and time, in UTC.
    pub fn datetime(&self, ms: i64) -> String {
        use chrono::{Datelike, Timelike};
        let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
            return ms.to_string();
        };
        let month = self.t(&format!("month-{}", t.month()));
        match self.lang {
            Lang::En => format!(
                "{} {month} {}, {:02}:{:02}:{:02} UTC",
                t.day(),
                t.year(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            Lang::Id => format!(
                "{} {month} {} {:02}.{:02}.{:02} UTC",
                t.day(),
                t.year(),
                t.hour(),
                t.minute(),
                t.second()
            ),
        }
    }

    /// A date (`YYYY-MM-DD…` as stored) as the language writes it; unparsed text as it is.
    pub fn date_text(&self, s: &str) -> String {
        match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => self.datetime(t.timestamp_millis()),
            Err(_) => s.to_string(),
        }
    }
}

fn group(digits: &str, sep: char) -> String {
    let n = digits.len();
    let mut out = String::with_capacity(n + n / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (n - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_hold_the_same_messages() {
        Catalog::load().unwrap();
        let en = Catalog::ids(Lang::En);
        let id = Catalog::ids(Lang::Id);
        let missing: Vec<_> = en.symmetric_difference(&id).collect();
        assert!(missing.is_empty(), "in one language only: {missing:?}");
        assert!(en.len() > 50);
    }

    #[test]
    fn every_key_a_template_or_the_code_uses_exists() {
        let en = Catalog::ids(Lang::En);
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut texts = Vec::new();
        for dir in ["templates/console", "src/console"] {
            for f in std::fs::read_dir(root.join(dir)).unwrap() {
                texts.push(std::fs::read_to_string(f.unwrap().path()).unwrap());
            }
        }
        let mut unknown = Vec::new();
        for text in &texts {
            // Code under test modules may name keys that do not exist on purpose.
            let text = text.split("#[cfg(test)]").next().unwrap();
            for marker in [".t(\"", ".ta(\"", ".ta(\n"] {
                for part in text.split(marker).skip(1) {
                    let key = part.trim_start().trim_start_matches('"');
                    let key = key.split('"').next().unwrap();
                    let plain = key
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                    if !key.is_empty() && plain && !en.contains(key) {
                        unknown.push(key.to_string());
                    }
                }
            }
        }
        assert!(unknown.is_empty(), "keys with no message: {unknown:?}");
    }

    #[test]
    fn numbers_and_dates_follow_the_language() {
        let c = Catalog::load().unwrap();
        let en = Tr::new(c.clone(), Lang::En);
        let id = Tr::new(c, Lang::Id);
        assert_eq!(en.int(1_234_567), "1,234,567");
        assert_eq!(id.int(1_234_567), "1.234.567");
        assert_eq!(en.int(12), "12");
        assert_eq!(en.decimal(1234.5, 2), "1,234.50");
        assert_eq!(id.decimal(1234.5, 2), "1.234,50");
        assert_eq!(id.decimal(-0.0001, 2), "0,00");
        assert_eq!(en.signed(-1234), "-1,234");
        // 2025-03-04 05:06:07 UTC
        let ms = 1_741_064_767_000;
        assert_eq!(en.datetime(ms), "4 March 2025, 05:06:07 UTC");
        assert_eq!(id.datetime(ms), "4 Maret 2025 05.06.07 UTC");
        assert_eq!(
            Lang::from_accept_language("fr-FR, id-ID;q=0.8, en"),
            Some(Lang::Id)
        );
        assert_eq!(Lang::from_tag("de"), None);
        assert_eq!(en.ta("nope-no-such-key", &[]), "nope-no-such-key");
    }
}
