//! The one conversion from the query model to the wire that both sides need: the coordinator
//! sends a [`RawQuery`] as a `pb::Query` (`fanout`), and the node's fuzz seeds build the same
//! message. The node's way back (`pb::Query` → [`RawQuery`] → [`crate::query::Query::parse`])
//! stays in its service layer, at its edge.

use vrs_proto::pb;

use crate::query::RawQuery;

impl From<RawQuery> for pb::Query {
    fn from(raw: RawQuery) -> pb::Query {
        pb::Query {
            unit: raw.unit,
            group_by: raw.group_by,
            filters: raw
                .filters
                .into_iter()
                .map(|(dimension, values)| pb::Filter { dimension, values })
                .collect(),
            period_from: raw.period_from,
            period_to: raw.period_to,
            margins: raw.margins,
            rho_micro: raw.rho_micro,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_reaches_the_wire() {
        let raw = RawQuery {
            unit: "migrants".into(),
            group_by: vec!["route".into(), "quarter".into()],
            filters: vec![("mode".into(), vec!["sea".into(), "air".into()])],
            period_from: "2023".into(),
            period_to: "2024-Q2".into(),
            margins: true,
            rho_micro: 20_000,
        };
        let q = pb::Query::from(raw);
        assert_eq!(q.unit, "migrants");
        assert_eq!(q.group_by, ["route", "quarter"]);
        assert_eq!(q.filters.len(), 1);
        assert_eq!(q.filters[0].dimension, "mode");
        assert_eq!(q.filters[0].values, ["sea", "air"]);
        assert_eq!(
            (q.period_from.as_str(), q.period_to.as_str()),
            ("2023", "2024-Q2")
        );
        assert!(q.margins);
        assert_eq!(q.rho_micro, 20_000);
    }
}
