//! `vrs-node budget`: what every reference quarter has spent of its lifetime privacy-loss budget
//! and what is left, in all and per caller, read from the ledger in `audit.sqlite`.

use std::collections::BTreeMap;

use vrs_core::table::Table;

use crate::audit::{AuditError, AuditLog};
use crate::config::NodeConfig;
use crate::disclosure::zcdp::rho_of;
use crate::universe::quarter_label_of;

/// One quarter's line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QuarterLine {
    /// `YYYY-Qn`.
    pub quarter: String,
    /// Spent by all callers, micro-ρ.
    pub spent_micro: u64,
    /// Left of the node's budget, micro-ρ.
    pub left_micro: u64,
    /// Spent per caller, micro-ρ.
    pub by_caller: BTreeMap<String, u64>,
}

/// The ledger, quarter by quarter (every quarter of the declared coverage up to `today`, and
/// any other quarter with a charge). No audit log yet: nothing spent.
pub fn lines(
    config: &NodeConfig,
    audit: Option<&AuditLog>,
    today: vrs_core::period::Month,
) -> Result<Vec<QuarterLine>, AuditError> {
    let total = config.privacy.rho_per_quarter_micro();
    let mut out: BTreeMap<i64, QuarterLine> = BTreeMap::new();
    let (from, to) = crate::universe::coverage(&config.privacy, today);
    let mut m = Some(from);
    while let Some(cur) = m.filter(|c| *c <= to) {
        out.entry(cur.quarter_int()).or_insert_with(|| QuarterLine {
            quarter: quarter_label_of(cur.quarter_int()),
            spent_micro: 0,
            left_micro: total,
            by_caller: BTreeMap::new(),
        });
        m = cur.succ();
    }
    let charges = match audit {
        Some(a) => a.spent_by_caller()?,
        None => Vec::new(),
    };
    for (q, caller, spent) in charges {
        let line = out.entry(q).or_insert_with(|| QuarterLine {
            quarter: quarter_label_of(q),
            spent_micro: 0,
            left_micro: total,
            by_caller: BTreeMap::new(),
        });
        line.spent_micro += spent;
        line.left_micro = total.saturating_sub(line.spent_micro);
        line.by_caller.insert(caller, spent);
    }
    Ok(out.into_values().collect())
}

/// The lines as a table: quarter, spent, left, then one column per caller with `by_caller`.
/// Quarters nobody spent on are listed only with `all`.
pub fn table(lines: &[QuarterLine], by_caller: bool, all: bool) -> Table {
    let callers: Vec<String> = lines
        .iter()
        .flat_map(|l| l.by_caller.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut header = vec!["quarter".to_string(), "rho spent".into(), "rho left".into()];
    if by_caller {
        header.extend(callers.iter().map(|c| format!("spent by {c}")));
    }
    let mut t = Table::new(header).align_right(1).align_right(2);
    for l in lines.iter().filter(|l| all || l.spent_micro > 0) {
        let mut row = vec![
            l.quarter.clone(),
            format!("{:.6}", rho_of(l.spent_micro)),
            format!("{:.6}", rho_of(l.left_micro)),
        ];
        if by_caller {
            for c in &callers {
                row.push(format!(
                    "{:.6}",
                    rho_of(l.by_caller.get(c).copied().unwrap_or(0))
                ));
            }
        }
        t.push(row);
    }
    t
}
