//! Console accounts: usernames, roles, argon2id password hashes, disabling, and the lockout
//! after [`MAX_FAILURES`] wrong passwords.
//!
//! Passwords are hashed with argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane) and a
//! 16-byte salt from ring's `SystemRandom`; only the PHC string is stored. Every change, and
//! every sign-in attempt, is written to the change log in the same transaction as the change.

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::{OptionalExtension, params};

use super::changelog::append;
use super::db::ConsoleDb;
use super::{ConsoleError, Invalid};

/// Wrong passwords in a row that lock an account.
pub const MAX_FAILURES: u32 = 5;
/// Shortest password accepted (OWASP: at least 8 with a second factor, 15 without; the console
/// is reached from the node's own machine, and 12 is what the docs ask for).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (bounds the hashing work an attacker can ask for).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Role {
    /// Enters and edits records; sees the node's status and budget.
    Clerk,
    /// A clerk's rights, plus the audit log, the change log, and (next slice) approvals.
    Reviewer,
    /// A reviewer's rights, plus user administration.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Clerk, Role::Reviewer, Role::Admin];

    /// The stored and typed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clerk => "clerk",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    /// Whether this role has at least `needed`'s rights.
    pub fn at_least(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = ConsoleError;
    fn from_str(s: &str) -> Result<Role, ConsoleError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(ConsoleError::Invalid(Invalid::Role))
    }
}

/// A checked username: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Checks a username.
    pub fn parse(s: &str) -> Result<Username, ConsoleError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
        if ok {
            Ok(Username(s.to_string()))
        } else {
            Err(ConsoleError::Invalid(Invalid::Username))
        }
    }

    /// As text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name: 1 to 100 characters, no control characters (shown as text, never as HTML).
pub fn check_display_name(s: &str) -> Result<String, ConsoleError> {
    let s = s.trim();
    let n = s.chars().count();
    if n == 0 || n > 100 || s.chars().any(char::is_control) {
        return Err(ConsoleError::Invalid(Invalid::DisplayName));
    }
    Ok(s.to_string())
}

/// A password as typed: never printed (its `Debug` is redacted), checked for length.
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// A password to set: [`MIN_PASSWORD_CHARS`] to [`MAX_PASSWORD_CHARS`] characters.
    pub fn new(s: String) -> Result<Password, ConsoleError> {
        let n = s.chars().count();
        if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
            return Err(ConsoleError::Invalid(Invalid::PasswordLength));
        }
        Ok(Password(s))
    }

    /// A password typed at sign-in (any length; only compared, never stored).
    pub fn typed(s: String) -> Password {
        Password(s)
    }
}

fn hasher() -> Result<Argon2<'static>, ConsoleError> {
    // OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|e| ConsoleError::Crypto(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The PHC string of `password` under a fresh salt.
pub fn hash_password(password: &Password) -> Result<String, ConsoleError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| ConsoleError::Crypto("no system randomness".into()))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| ConsoleError::Crypto(format!("salt: {e}")))?;
    Ok(hasher()?
        .hash_password(password.0.as_bytes(), &salt)
        .map_err(|e| ConsoleError::Crypto(format!("argon2: {e}")))?
        .to_string())
}

/// Whether `password` matches the stored PHC string (false for a string that does not parse).
fn password_matches(password: &Password, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    hasher().is_ok_and(|h| h.verify_password(password.0.as_bytes(), &parsed).is_ok())
}

/// One account as listed (no hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Username.
    pub username: String,
    /// Display name (text, never HTML).
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Disabled accounts cannot sign in, and their sessions end.
    pub disabled: bool,
    /// Wrong passwords since the last sign-in.
    pub failed_count: u32,
    /// Locked until this time (ms since the epoch); 0 when not locked.
    pub locked_until_ms: i64,
    /// Last successful sign-in.
    pub last_sign_in_ms: Option<i64>,
}

impl User {
    /// Whether the account is locked at `now_ms`.
    pub fn locked(&self, now_ms: i64) -> bool {
        self.locked_until_ms > now_ms
    }
}

const USER_COLUMNS: &str =
    "id, username, display_name, role, disabled, failed_count, locked_until_ms, last_sign_in_ms";

fn user_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(3)?;
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        display_name: r.get(2)?,
        role: role.parse().unwrap_or(Role::Clerk),
        disabled: r.get::<_, i64>(4)? != 0,
        failed_count: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(u32::MAX),
        locked_until_ms: r.get(6)?,
        last_sign_in_ms: r.get(7)?,
    })
}

/// How a sign-in attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    /// Signed in.
    Ok(User),
    /// Wrong username or password (which one is not said).
    Wrong,
    /// The account is locked (too many wrong passwords) until an admin unlocks it or the time.
    Locked,
    /// The account is disabled.
    Disabled,
}

/// A hash to verify against when the username is unknown, so an unknown name takes as long as
/// a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_password(&Password::typed("decoy password, never matched".into())).unwrap_or_default()
    })
}

impl ConsoleDb {
    /// Adds an account; `actor` is who did it (recorded).
    pub fn add_user(
        &mut self,
        now_ms: i64,
        actor: &str,
        username: &Username,
        display_name: &str,
        role: Role,
        password: &Password,
    ) -> Result<User, ConsoleError> {
        let display_name = check_display_name(display_name)?;
        let hash = hash_password(password)?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let exists = tx
            .prepare_cached("SELECT 1 FROM user WHERE username = ?1")?
            .exists([username.as_str()])?;
        if exists {
            return Err(ConsoleError::Invalid(Invalid::UserExists));
        }
        tx.execute(
            "INSERT INTO user(username, display_name, role, password_hash, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![username.as_str(), display_name, role.as_str(), hash, now_ms],
        )?;
        append(
            &tx,
            now_ms,
            actor,
            "user_added",
            username.as_str(),
            &format!("role {role}, display name {display_name:?}"),
        )?;
        tx.commit()?;
        self.user(username.as_str())?
            .ok_or_else(|| ConsoleError::NoSuchUser(username.as_str().into()))
    }

    /// Every account, by username.
    pub fn users(&self) -> Result<Vec<User>, ConsoleError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM user ORDER BY username"
        ))?;
        let rows = st.query_map([], user_of)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One account by username.
    pub fn user(&self, username: &str) -> Result<Option<User>, ConsoleError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM user WHERE username = ?1"
            ))?
            .query_row([username], user_of)
            .optional()?)
    }

    /// One account by row id.
    pub fn user_by_id(&self, id: i64) -> Result<Option<User>, ConsoleError> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM user WHERE id = ?1"))?
            .query_row([id], user_of)
            .optional()?)
    }

    fn existing(&self, username: &str) -> Result<User, ConsoleError> {
        self.user(username)?
            .ok_or_else(|| ConsoleError::NoSuchUser(username.into()))
    }

    /// Disables (or enables again) an account. A disabled account's sessions end. The last
    /// enabled admin cannot be disabled (nobody could manage users any more).
    pub fn set_disabled(
        &mut self,
        now_ms: i64,
        actor: &str,
        username: &str,
        disabled: bool,
    ) -> Result<(), ConsoleError> {
        let user = self.existing(username)?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if disabled && user.role == Role::Admin && !user.disabled {
            let admins: i64 = tx.query_row(
                "SELECT COUNT(*) FROM user WHERE role = 'admin' AND disabled = 0",
                [],
                |r| r.get(0),
            )?;
            if admins <= 1 {
                return Err(ConsoleError::Invalid(Invalid::LastAdmin));
            }
        }
        tx.execute(
            "UPDATE user SET disabled = ?1 WHERE id = ?2",
            params![i64::from(disabled), user.id],
        )?;
        if disabled {
            tx.execute("DELETE FROM session WHERE user_id = ?1", [user.id])?;
        }
        let (action, detail) = if disabled {
            ("user_disabled", "disabled; its sessions ended")
        } else {
            ("user_enabled", "enabled")
        };
        append(&tx, now_ms, actor, action, username, detail)?;
        tx.commit()?;
        Ok(())
    }

    /// Sets a new password; the account's sessions end, and a lockout is lifted.
    pub fn set_password(
        &mut self,
        now_ms: i64,
        actor: &str,
        username: &str,
        password: &Password,
    ) -> Result<(), ConsoleError> {
        let user = self.existing(username)?;
        let hash = hash_password(password)?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE user SET password_hash = ?1, failed_count = 0, locked_until_ms = 0 WHERE id = ?2",
            params![hash, user.id],
        )?;
        tx.execute("DELETE FROM session WHERE user_id = ?1", [user.id])?;
        append(
            &tx,
            now_ms,
            actor,
            "password_changed",
            username,
            "new password set; its sessions ended",
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Lifts a lockout.
    pub fn unlock(&mut self, now_ms: i64, actor: &str, username: &str) -> Result<(), ConsoleError> {
        let user = self.existing(username)?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE user SET failed_count = 0, locked_until_ms = 0 WHERE id = ?1",
            [user.id],
        )?;
        append(
            &tx,
            now_ms,
            actor,
            "user_unlocked",
            username,
            "lockout lifted",
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Checks a sign-in attempt, counting wrong passwords: the [`MAX_FAILURES`]th in a row
    /// locks the account for `lockout_ms`. Every attempt is recorded.
    pub fn sign_in(
        &mut self,
        now_ms: i64,
        username: &str,
        password: &Password,
        lockout_ms: i64,
    ) -> Result<SignIn, ConsoleError> {
        let found: Option<(User, String)> = self
            .conn
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS}, password_hash FROM user WHERE username = ?1"
            ))?
            .query_row([username], |r| Ok((user_of(r)?, r.get(8)?)))
            .optional()?;
        let Some((user, phc)) = found else {
            let _ = password_matches(password, decoy_hash());
            self.record(now_ms, "-", "sign_in_failed", username, "unknown user")?;
            return Ok(SignIn::Wrong);
        };
        if user.disabled {
            self.record(now_ms, "-", "sign_in_failed", username, "account disabled")?;
            return Ok(SignIn::Disabled);
        }
        if user.locked(now_ms) {
            self.record(now_ms, "-", "sign_in_failed", username, "account locked")?;
            return Ok(SignIn::Locked);
        }
        let matches = password_matches(password, &phc);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let outcome = if matches {
            tx.execute(
                "UPDATE user SET failed_count = 0, locked_until_ms = 0, last_sign_in_ms = ?1 WHERE id = ?2",
                params![now_ms, user.id],
            )?;
            append(&tx, now_ms, username, "sign_in", username, "signed in")?;
            SignIn::Ok(User {
                failed_count: 0,
                locked_until_ms: 0,
                last_sign_in_ms: Some(now_ms),
                ..user
            })
        } else {
            // A lockout that has run out starts the count again.
            let before = if user.locked_until_ms > 0 {
                0
            } else {
                user.failed_count
            };
            let failures = before.saturating_add(1);
            let locked_until = if failures >= MAX_FAILURES {
                now_ms.saturating_add(lockout_ms)
            } else {
                0
            };
            tx.execute(
                "UPDATE user SET failed_count = ?1, locked_until_ms = ?2 WHERE id = ?3",
                params![i64::from(failures), locked_until, user.id],
            )?;
            append(
                &tx,
                now_ms,
                "-",
                "sign_in_failed",
                username,
                &format!("wrong password ({failures} in a row)"),
            )?;
            if locked_until > 0 {
                append(
                    &tx,
                    now_ms,
                    "-",
                    "user_locked",
                    username,
                    &format!(
                        "{MAX_FAILURES} wrong passwords: locked until an admin unlocks it or the lockout ends"
                    ),
                )?;
                SignIn::Locked
            } else {
                SignIn::Wrong
            }
        };
        tx.commit()?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::new(s.to_string()).unwrap()
    }

    #[test]
    fn usernames_roles_and_passwords_are_checked() {
        assert!(Username::parse("amira.k").is_ok());
        for bad in ["", "Amira", "-x", "a b", "a<script>", &"a".repeat(65)] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!("reviewer".parse::<Role>().unwrap(), Role::Reviewer);
        assert!("root".parse::<Role>().is_err());
        assert!(Password::new("short".into()).is_err());
        assert_eq!(
            format!("{:?}", pw("correct horse battery")),
            "Password(<redacted>)"
        );
        assert!(check_display_name("Ana\u{7}").is_err());
        assert!(Role::Admin.at_least(Role::Reviewer) && !Role::Clerk.at_least(Role::Reviewer));
    }

    #[test]
    fn five_wrong_passwords_lock_until_unlocked_or_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = ConsoleDb::open(dir.path()).unwrap();
        let name = Username::parse("budi").unwrap();
        let good = pw("correct horse battery");
        let user = db
            .add_user(0, "cli", &name, "Budi", Role::Clerk, &good)
            .unwrap();
        assert!(!user.disabled);
        let stored: String = db
            .conn
            .query_row("SELECT password_hash FROM user", [], |r| r.get(0))
            .unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        let wrong = Password::typed("wrong".into());
        for _ in 0..4 {
            assert_eq!(
                db.sign_in(10, "budi", &wrong, 1_000).unwrap(),
                SignIn::Wrong
            );
        }
        assert_eq!(
            db.sign_in(10, "budi", &wrong, 1_000).unwrap(),
            SignIn::Locked
        );
        // Locked: even the right password is refused, until the lockout ends…
        assert_eq!(
            db.sign_in(20, "budi", &good, 1_000).unwrap(),
            SignIn::Locked
        );
        assert!(matches!(
            db.sign_in(1_011, "budi", &good, 1_000).unwrap(),
            SignIn::Ok(_)
        ));
        // …or an admin unlocks it.
        for _ in 0..5 {
            db.sign_in(2_000, "budi", &wrong, 1_000_000).unwrap();
        }
        assert_eq!(
            db.sign_in(2_001, "budi", &good, 1_000_000).unwrap(),
            SignIn::Locked
        );
        db.unlock(2_002, "admin", "budi").unwrap();
        assert!(matches!(
            db.sign_in(2_003, "budi", &good, 1_000_000).unwrap(),
            SignIn::Ok(_)
        ));
        assert_eq!(
            db.sign_in(3_000, "nobody", &good, 1).unwrap(),
            SignIn::Wrong
        );
        // Every attempt is in the chain.
        let actions: Vec<String> = db
            .changes(None, 100)
            .unwrap()
            .into_iter()
            .map(|c| c.action)
            .collect();
        assert!(actions.contains(&"user_locked".to_string()));
        assert!(actions.contains(&"user_unlocked".to_string()));
        assert_eq!(db.verify_changes().unwrap(), Ok(actions.len() as u64));
    }

    #[test]
    fn the_last_admin_cannot_be_disabled_and_disabling_ends_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = ConsoleDb::open(dir.path()).unwrap();
        let p = pw("correct horse battery");
        db.add_user(
            0,
            "cli",
            &Username::parse("root").unwrap(),
            "Root",
            Role::Admin,
            &p,
        )
        .unwrap();
        assert!(db.set_disabled(1, "cli", "root", true).is_err());
        db.add_user(
            0,
            "cli",
            &Username::parse("ana").unwrap(),
            "Ana",
            Role::Reviewer,
            &p,
        )
        .unwrap();
        assert!(
            db.add_user(
                0,
                "cli",
                &Username::parse("ana").unwrap(),
                "Ana",
                Role::Clerk,
                &p
            )
            .is_err()
        );
        db.set_disabled(1, "cli", "ana", true).unwrap();
        assert_eq!(db.sign_in(2, "ana", &p, 1).unwrap(), SignIn::Disabled);
        db.set_disabled(3, "cli", "ana", false).unwrap();
        assert!(matches!(
            db.sign_in(4, "ana", &p, 1).unwrap(),
            SignIn::Ok(_)
        ));
        assert!(db.set_password(5, "cli", "nobody", &p).is_err());
    }
}
