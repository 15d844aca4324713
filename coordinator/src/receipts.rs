//! The receipt book: every audit receipt a node has given this coordinator, kept in an
//! append-only JSON Lines file, and the check that a node's log still holds every entry those
//! receipts commit to.
//!
//! A node signs the head of its audit log with its own Ed25519 audit key in every answer (the
//! receipt of that answer's own entry) and in every `Describe` (the head at that moment, with the
//! key itself). [`Federation`](crate::fanout::Federation) appends each one here as it arrives.
//! [`verify`] then shows, per node, what a local attacker on the node cannot hide:
//!
//! - a **key change** (the audit key was replaced, as it is when the node's files are recreated);
//! - a **fork** (two receipts for one position with different hashes);
//! - a **rollback** (a `Describe` signed later than some receipt, with fewer entries: the log was
//!   truncated, deleted or restored from a backup);
//! - and, given the node's export (`vrs-node audit export`), a **rewrite**: the export's chain is
//!   recomputed from the genesis hash, and every receipt's position must hold an entry with the
//!   receipt's hash — for an answer, with that query id, outcome and answer digest.
//!
//! The book holds no released values: a receipt is a position, a hash, a time and a signature.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use vrs_core::audit_chain::{AuditReceipt, ExportedEntry, GENESIS, verify_export};
use vrs_core::group_flush::GroupFlush;
use vrs_core::signing::PublicKey;

/// Default file name of the book, beside the registry.
pub const DEFAULT_FILE: &str = "receipts.jsonl";

/// Most bytes of one line read back (a receipt line is a few hundred bytes).
const MAX_LINE: usize = 64 * 1024;

/// What a receipt came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The head of the log when the node described itself.
    Describe,
    /// The entry of an answer.
    Answer,
    /// The entry of a query held for the operator's approval.
    Pending,
}

/// One line of the book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kept {
    /// What the receipt came with.
    pub kind: Kind,
    /// The query id (answers and pending queries; "" for `Describe`).
    #[serde(default)]
    pub query_id: String,
    /// The answer's digest (answers only).
    #[serde(default)]
    pub answer_digest: String,
    /// The audit key the node published with it (`Describe` only), hex.
    #[serde(default)]
    pub audit_key: String,
    /// The node's signed statement.
    pub receipt: AuditReceipt,
    /// When the coordinator received it, ms since the Unix epoch.
    pub kept_at_ms: i64,
}

/// The book cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptsError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A line does not parse.
    #[error("{path}, line {line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The open book, shared by every request of a [`Federation`](crate::fanout::Federation).
#[derive(Debug)]
pub struct Book {
    path: PathBuf,
    /// Appends are ordered by this lock; each takes its flush ticket under it.
    file: Mutex<std::fs::File>,
    /// The same file, for `fdatasync` outside the append lock (appends go on meanwhile).
    syncer: std::fs::File,
    /// Concurrent queries' receipts made durable by one flush ([`GroupFlush`]).
    group: GroupFlush,
}

impl Book {
    /// Opens the book for appending (creating it, 0600, when absent).
    pub fn open(path: &Path) -> Result<Book, ReceiptsError> {
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| ReceiptsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let syncer = file.try_clone().map_err(io)?;
        Ok(Book {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            syncer,
            group: GroupFlush::new(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `lines` in one write and returns once they are on disk ([`Book::append`], then
    /// [`Book::sync`]). Blocks: call it from a blocking thread.
    pub fn keep(&self, lines: &[Kept]) -> Result<(), ReceiptsError> {
        match self.append(lines)? {
            Some(ticket) => self.sync(ticket),
            None => Ok(()),
        }
    }

    /// Appends `lines` in one write: in the file when this returns (a crash of the process
    /// loses none of them), on disk once [`Book::sync`] of the returned ticket has returned
    /// (`None`: nothing to write). Blocks on the file.
    pub fn append(&self, lines: &[Kept]) -> Result<Option<u64>, ReceiptsError> {
        if lines.is_empty() {
            return Ok(None);
        }
        let mut text = Vec::new();
        for l in lines {
            serde_json::to_writer(&mut text, l)
                .map_err(|e| self.io_error(std::io::Error::other(e)))?;
            text.push(b'\n');
        }
        let mut f = self
            .file
            .lock()
            .map_err(|_| self.io_error(std::io::Error::other("receipt book lock poisoned")))?;
        f.write_all(&text).map_err(|e| self.io_error(e))?;
        Ok(Some(self.group.written()))
    }

    /// Returns once the append with `ticket` is on disk. Concurrent calls share one flush
    /// (each waits for a flush that started after its append). Blocks.
    pub fn sync(&self, ticket: u64) -> Result<(), ReceiptsError> {
        self.group
            .wait(ticket, || self.syncer.sync_data())
            .map_err(|e| self.io_error(e))
    }

    fn io_error(&self, source: std::io::Error) -> ReceiptsError {
        ReceiptsError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Whether some append is not yet known to be on disk.
    pub fn pending(&self) -> bool {
        self.group.pending()
    }

    /// Flushes done so far (for tests and figures).
    pub fn flushes(&self) -> u64 {
        self.group.flushes()
    }
}

/// A book let go of with appends not yet known to be on disk (a flush that failed, or one
/// still queued when its process ended) is flushed once more.
impl Drop for Book {
    fn drop(&mut self) {
        if self.group.pending()
            && let Err(error) = self.syncer.sync_data()
        {
            tracing::error!(path = %self.path.display(), %error, "cannot flush the receipt book");
        }
    }
}

/// Reads a book back, every line checked (a line that does not parse is an error naming it:
/// a book an auditor relies on is never read in part).
pub fn read(path: &Path) -> Result<Vec<Kept>, ReceiptsError> {
    read_lines(path, |line, text| {
        serde_json::from_str::<Kept>(text).map_err(|e| ReceiptsError::Parse {
            path: path.to_path_buf(),
            line,
            message: e.to_string(),
        })
    })
}

/// Reads a node's `vrs-node audit export` (JSON Lines).
pub fn read_export(path: &Path) -> Result<Vec<ExportedEntry>, ReceiptsError> {
    read_lines(path, |line, text| {
        serde_json::from_str::<ExportedEntry>(text).map_err(|e| ReceiptsError::Parse {
            path: path.to_path_buf(),
            line,
            message: e.to_string(),
        })
    })
}

fn read_lines<T>(
    path: &Path,
    parse: impl Fn(usize, &str) -> Result<T, ReceiptsError>,
) -> Result<Vec<T>, ReceiptsError> {
    let io = |source| ReceiptsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut reader = std::io::BufReader::new(file);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if n == 0 {
            break;
        }
        line += 1;
        if buf.len() > MAX_LINE {
            return Err(ReceiptsError::Parse {
                path: path.to_path_buf(),
                line,
                message: format!("line longer than {MAX_LINE} bytes"),
            });
        }
        let text = std::str::from_utf8(&buf).map_err(|_| ReceiptsError::Parse {
            path: path.to_path_buf(),
            line,
            message: "not UTF-8".into(),
        })?;
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        out.push(parse(line, text)?);
    }
    Ok(out)
}

/// What [`verify`] found for one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeCheck {
    /// The node's country.
    pub country: String,
    /// Receipts kept for it.
    pub receipts: usize,
    /// The audit key its receipts are checked under (hex), if one is known.
    pub key: Option<String>,
    /// The highest log position a receipt commits to.
    pub highest_entry: u64,
    /// Entries in its export, when one was given.
    pub export_entries: Option<usize>,
    /// Everything that does not hold; empty when the node's log is consistent with every receipt.
    pub problems: Vec<String>,
}

impl NodeCheck {
    /// Whether every check held.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

/// Checks every node's receipts in `book`: under the key `pinned` gives for it (the registry's),
/// else the key its first kept `Describe` published; then against its export in `exports`, when
/// given. Returns one check per country with receipts or an export, in country order.
pub fn verify(
    book: &[Kept],
    pinned: &HashMap<String, PublicKey>,
    exports: &HashMap<String, Vec<ExportedEntry>>,
) -> Vec<NodeCheck> {
    let mut by_country: BTreeMap<&str, Vec<&Kept>> = BTreeMap::new();
    for k in book {
        by_country.entry(&k.receipt.country).or_default().push(k);
    }
    for c in exports.keys() {
        by_country.entry(c).or_default();
    }
    by_country
        .into_iter()
        .map(|(country, kept)| {
            check_node(country, &kept, pinned.get(country), exports.get(country))
        })
        .collect()
}

fn check_node(
    country: &str,
    kept: &[&Kept],
    pinned: Option<&PublicKey>,
    export: Option<&Vec<ExportedEntry>>,
) -> NodeCheck {
    let mut problems = Vec::new();
    let first_published = kept
        .iter()
        .find(|k| k.kind == Kind::Describe && !k.audit_key.is_empty())
        .map(|k| k.audit_key.as_str());
    let key = match (pinned, first_published) {
        (Some(p), _) => Some(*p),
        (None, Some(hex)) => match PublicKey::from_hex(hex) {
            Ok(k) => Some(k),
            Err(_) => {
                problems.push(format!(
                    "the published audit key {} is not a key",
                    short(hex)
                ));
                None
            }
        },
        (None, None) => None,
    };
    // Key changes: every Describe must publish the key receipts are checked under.
    if let Some(k) = &key {
        let expected = k.to_hex();
        for d in kept.iter().filter(|k| k.kind == Kind::Describe) {
            if d.audit_key != expected {
                problems.push(format!(
                    "the node published another audit key ({}…, not {}…) at {}: its log or key \
                     was replaced",
                    short(&d.audit_key),
                    short(&expected),
                    d.receipt.signed_at_ms
                ));
            }
        }
    } else if !kept.is_empty() {
        problems.push(
            "no audit key known for this node (no Describe kept and none pinned in the registry): \
             its receipts cannot be checked"
                .into(),
        );
    }
    // Signatures.
    let mut bad_signatures = 0;
    if let Some(k) = &key {
        for r in kept {
            if r.receipt.verify(k).is_err() {
                bad_signatures += 1;
                if bad_signatures <= 5 {
                    problems.push(format!(
                        "the receipt for entry {} ({}) does not verify under the audit key",
                        r.receipt.entries,
                        describe_kept(r)
                    ));
                }
            }
        }
        if bad_signatures > 5 {
            problems.push(format!("{} receipts in all do not verify", bad_signatures));
        }
    }
    // Forks: one position, one hash.
    let mut at: BTreeMap<u64, &str> = BTreeMap::new();
    for r in kept {
        match at.get(&r.receipt.entries) {
            Some(h) if *h != r.receipt.head => problems.push(format!(
                "two receipts for entry {} give different hashes: the log forked or was rewritten",
                r.receipt.entries
            )),
            Some(_) => {}
            None => {
                at.insert(r.receipt.entries, &r.receipt.head);
            }
        }
        if r.receipt.entries == 0 && r.receipt.head != GENESIS {
            problems.push("a receipt for an empty log names a head".into());
        }
    }
    // Rollbacks: a Describe signs the whole head; any receipt signed before it commits to a
    // position the head must have reached.
    for d in kept.iter().filter(|k| k.kind == Kind::Describe) {
        if let Some(earlier) = kept
            .iter()
            .filter(|r| r.receipt.signed_at_ms < d.receipt.signed_at_ms)
            .max_by_key(|r| r.receipt.entries)
            && earlier.receipt.entries > d.receipt.entries
        {
            problems.push(format!(
                "the log had {} entries at {} but {} at {}: it was truncated, deleted or restored",
                earlier.receipt.entries,
                earlier.receipt.signed_at_ms,
                d.receipt.entries,
                d.receipt.signed_at_ms
            ));
        }
    }
    let highest_entry = kept.iter().map(|r| r.receipt.entries).max().unwrap_or(0);
    let export_entries = export.map(|e| e.len());
    if let Some(entries) = export {
        check_export(entries, kept, highest_entry, &mut problems);
    }
    NodeCheck {
        country: country.to_string(),
        receipts: kept.len(),
        key: key.map(|k| k.to_hex()),
        highest_entry,
        export_entries,
        problems,
    }
}

fn describe_kept(k: &Kept) -> String {
    match k.kind {
        Kind::Describe => "a Describe".into(),
        Kind::Answer => format!("the answer to query {}", k.query_id),
        Kind::Pending => format!("query {} held for approval", k.query_id),
    }
}

fn check_export(
    entries: &[ExportedEntry],
    kept: &[&Kept],
    highest: u64,
    problems: &mut Vec<String>,
) {
    let hashes = match verify_export(entries) {
        Ok(h) => h,
        Err(b) => {
            problems.push(format!("the export's chain breaks at {b}"));
            return;
        }
    };
    if (hashes.len() as u64) < highest {
        problems.push(format!(
            "the export has {} entries but a receipt commits to entry {highest}: the log was \
             truncated",
            hashes.len()
        ));
    }
    let mut missing = 0;
    for r in kept {
        let n = r.receipt.entries;
        if n == 0 {
            continue;
        }
        let Some(e) = usize::try_from(n - 1).ok().and_then(|i| entries.get(i)) else {
            continue; // counted by the truncation check above
        };
        let what = describe_kept(r);
        let wrong = if e.hash != r.receipt.head {
            Some("holds another entry than the receipt's".to_string())
        } else {
            match r.kind {
                Kind::Answer
                    if e.outcome != "answered"
                        || e.query_id != r.query_id
                        || e.answer_digest != r.answer_digest =>
                {
                    Some(format!(
                        "is not that answer (outcome {}, query {})",
                        e.outcome, e.query_id
                    ))
                }
                Kind::Pending if e.outcome != "pending_approval" || e.query_id != r.query_id => {
                    Some(format!("is not that held query (outcome {})", e.outcome))
                }
                _ => None,
            }
        };
        if let Some(w) = wrong {
            missing += 1;
            if missing <= 5 {
                problems.push(format!("entry {n} of the export {w}: {what} was rewritten"));
            }
        }
    }
    if missing > 5 {
        problems.push(format!("{missing} receipts in all are not in the export"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vrs_core::audit_chain::{NewEntry, entry_hash};
    use vrs_core::signing::{SigningKey, generate_pkcs8};

    fn key() -> SigningKey {
        SigningKey::from_pkcs8(&generate_pkcs8().unwrap()).unwrap()
    }

    /// A log of `n` answers to queries q1..qn, exported.
    fn log(n: i64) -> Vec<ExportedEntry> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let q = format!("q{seq}");
                let d = format!("d{seq}");
                let e = NewEntry {
                    at_ms: seq,
                    caller: "c",
                    query_id: &q,
                    envelope: b"",
                    signature: b"",
                    key_id: "",
                    outcome: "answered",
                    answer_digest: &d,
                    privacy: "",
                };
                let hash = entry_hash(&prev, seq, &e);
                let x = ExportedEntry {
                    seq,
                    at_ms: seq,
                    caller: "c".into(),
                    query_id: q,
                    envelope_hex: String::new(),
                    signature_hex: String::new(),
                    key_id: String::new(),
                    outcome: "answered".into(),
                    answer_digest: d,
                    privacy: String::new(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                x
            })
            .collect()
    }

    fn answer(k: &SigningKey, e: &ExportedEntry) -> Kept {
        Kept {
            kind: Kind::Answer,
            query_id: e.query_id.clone(),
            answer_digest: e.answer_digest.clone(),
            audit_key: String::new(),
            receipt: AuditReceipt::sign(k, "IDN", e.seq as u64, &e.hash, 100 + e.seq).unwrap(),
            kept_at_ms: 0,
        }
    }

    fn head(k: &SigningKey, log: &[ExportedEntry], at: i64) -> Kept {
        let (n, h) = log
            .last()
            .map_or((0, GENESIS.to_string()), |e| (e.seq as u64, e.hash.clone()));
        Kept {
            kind: Kind::Describe,
            query_id: String::new(),
            answer_digest: String::new(),
            audit_key: k.public_key().to_hex(),
            receipt: AuditReceipt::sign(k, "IDN", n, &h, at).unwrap(),
            kept_at_ms: 0,
        }
    }

    fn check(book: &[Kept], export: Option<Vec<ExportedEntry>>) -> NodeCheck {
        let exports: HashMap<String, Vec<ExportedEntry>> =
            export.into_iter().map(|e| ("IDN".to_string(), e)).collect();
        let mut out = verify(book, &HashMap::new(), &exports);
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    #[test]
    fn an_honest_log_passes_and_each_rewrite_is_caught() {
        let k = key();
        let l = log(6);
        let mut book = vec![head(&k, &l[..0], 1)];
        book.extend(l.iter().map(|e| answer(&k, e)));
        book.push(head(&k, &l, 1_000));
        let honest = check(&book, Some(l.clone()));
        assert!(honest.ok(), "{:?}", honest.problems);
        assert_eq!(honest.highest_entry, 6);

        // Tail truncation.
        let t = check(&book, Some(l[..4].to_vec()));
        assert!(
            t.problems.iter().any(|p| p.contains("truncated")),
            "{:?}",
            t.problems
        );

        // An answer edited into a refusal, the chain recomputed from there on.
        let mut edited = l.clone();
        edited[2].outcome = "refused:X".into();
        let mut prev = edited[1].hash.clone();
        for e in edited.iter_mut().skip(2) {
            e.prev_hash = prev.clone();
            let env = hex::decode(&e.envelope_hex).unwrap();
            let sig = hex::decode(&e.signature_hex).unwrap();
            e.hash = entry_hash(
                &prev,
                e.seq,
                &NewEntry {
                    at_ms: e.at_ms,
                    caller: &e.caller,
                    query_id: &e.query_id,
                    envelope: &env,
                    signature: &sig,
                    key_id: &e.key_id,
                    outcome: &e.outcome,
                    answer_digest: &e.answer_digest,
                    privacy: &e.privacy,
                },
            );
            prev = e.hash.clone();
        }
        let r = check(&book, Some(edited));
        assert!(
            r.problems.iter().any(|p| p.contains("entry 3")),
            "{:?}",
            r.problems
        );

        // Delete + renumber + re-chain: a log of the other 5 answers.
        let mut fewer = log(5);
        fewer[0].query_id = "other".into();
        let d = check(&book, Some(fewer));
        assert!(!d.ok());

        // The log deleted and started again (new, shorter head under the same key).
        let mut restarted = book.clone();
        restarted.push(head(&k, &l[..1], 2_000));
        let z = check(&restarted, None);
        assert!(
            z.problems
                .iter()
                .any(|p| p.contains("truncated, deleted or restored"))
        );

        // The key file replaced too.
        let k2 = key();
        let mut rekeyed = book.clone();
        rekeyed.push(head(&k2, &l[..0], 3_000));
        let c = check(&rekeyed, None);
        assert!(c.problems.iter().any(|p| p.contains("another audit key")));
        assert!(c.problems.iter().any(|p| p.contains("does not verify")));
    }

    #[test]
    fn a_forged_receipt_and_a_fork_are_named() {
        let k = key();
        let l = log(3);
        let book = vec![head(&k, &l, 10)];
        // A receipt for entry 3 altered to name entry 2's hash: not the node's signature.
        let mut forged = answer(&k, &l[2]);
        forged.receipt.head = l[1].hash.clone();
        let c = check(&[book.clone(), vec![forged]].concat(), None);
        assert!(c.problems.iter().any(|p| p.contains("does not verify")));
        // The node itself signing two heads for one position: a fork.
        let mut fork = answer(&k, &l[2]);
        fork.receipt = AuditReceipt::sign(&k, "IDN", 3, &l[1].hash, 11).unwrap();
        let f = check(&[book.clone(), vec![fork]].concat(), None);
        assert!(
            f.problems.iter().any(|p| p.contains("forked")),
            "{:?}",
            f.problems
        );
        assert!(!f.problems.iter().any(|p| p.contains("does not verify")));
        assert!(check(&book, None).ok());
    }

    /// An append is in the file at once (a reader sees it) and pending until its sync.
    #[test]
    fn an_append_is_in_the_file_at_once_and_on_disk_after_its_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        let k = key();
        let l = log(1);
        let kept = vec![answer(&k, &l[0])];
        let book = Book::open(&path).unwrap();
        assert_eq!(book.append(&[]).unwrap(), None, "nothing to write");
        assert!(!book.pending());
        let ticket = book.append(&kept).unwrap().unwrap();
        assert!(book.pending());
        assert_eq!(read(&path).unwrap(), kept);
        book.sync(ticket).unwrap();
        assert!(!book.pending());
        assert_eq!(book.flushes(), 1);
    }

    /// Queries keeping receipts at once lose no line, none is torn, and no keep flushes twice
    /// (the sharing itself is `GroupFlush`'s own test).
    #[test]
    fn concurrent_keeps_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        let k = key();
        let l = log(4);
        let book = std::sync::Arc::new(Book::open(&path).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let book = book.clone();
                let kept: Vec<Kept> = l.iter().map(|e| answer(&k, e)).collect();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        book.keep(&kept).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let back = read(&path).unwrap();
        assert_eq!(back.len(), 8 * 25 * 4, "every line, each whole");
        let flushes = book.flushes();
        assert!((1..=200).contains(&flushes), "200 keeps, {flushes} flushes");
    }

    #[test]
    fn the_book_reads_back_what_it_kept_and_names_a_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        let k = key();
        let l = log(2);
        let kept: Vec<Kept> = l.iter().map(|e| answer(&k, e)).collect();
        let book = Book::open(&path).unwrap();
        book.keep(&kept[..1]).unwrap();
        book.keep(&kept[1..]).unwrap();
        assert_eq!(read(&path).unwrap(), kept);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{not json\n")
            .unwrap();
        match read(&path) {
            Err(ReceiptsError::Parse { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }
}
