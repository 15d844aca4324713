//! Console sessions: random 256-bit ids from ring's `SystemRandom`, known to the server only by
//! their SHA-256, each with its own CSRF token (the synchronizer-token pattern), expiring after
//! an idle time and an absolute lifetime.
//!
//! A browser first gets a session without a user (the sign-in form's CSRF token lives in it);
//! signing in replaces it with a new one (a fixed session id cannot be carried over), signing
//! out deletes it. Sessions live in `console.sqlite`, so a cookie from another node's console
//! (another file) is unknown here.

use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::{OptionalExtension, params};

use super::ConsoleError;
use super::accounts::User;
use super::db::ConsoleDb;

/// Sessions before sign-in kept at most (the oldest go first): a flood of sign-in page loads
/// cannot fill the file.
const MAX_ANONYMOUS: i64 = 1_000;

/// A secret token: 32 random bytes, hex. Its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// A fresh token.
    pub fn random() -> Result<Token, ConsoleError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| ConsoleError::Crypto("no system randomness".into()))?;
        Ok(Token(hex::encode(bytes)))
    }

    /// A token as the browser sent it (cookie or form field).
    pub fn from_client(s: &str) -> Token {
        Token(s.to_string())
    }

    /// As text (the cookie value or the form field).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn digest(&self) -> String {
        hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            self.0.as_bytes(),
        ))
    }

    /// Whether `other` is this token. Compares the two SHA-256 digests, so the time taken says
    /// nothing about how much of a guess was right.
    pub fn matches(&self, other: &Token) -> bool {
        self.digest() == other.digest()
    }
}

/// How long sessions last.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Ended after this long without a request, ms.
    pub idle_ms: i64,
    /// Ended this long after sign-in whatever happens, ms.
    pub absolute_ms: i64,
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The id (what the cookie holds).
    pub id: Token,
    /// The form token of this session.
    pub csrf: Token,
    /// Who is signed in (None: the sign-in page's session).
    pub user: Option<User>,
}

impl ConsoleDb {
    /// Starts a session (for `user`, or before sign-in).
    pub fn start_session(
        &mut self,
        now_ms: i64,
        user: Option<&User>,
    ) -> Result<Session, ConsoleError> {
        let id = Token::random()?;
        let csrf = Token::random()?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO session(id_hash, user_id, csrf, created_ms, last_ms) VALUES (?1, ?2, ?3, ?4, ?4)",
            params![id.digest(), user.map(|u| u.id), csrf.as_str(), now_ms],
        )?;
        if user.is_none() {
            tx.execute(
                "DELETE FROM session WHERE user_id IS NULL AND id_hash NOT IN
                   (SELECT id_hash FROM session WHERE user_id IS NULL ORDER BY last_ms DESC LIMIT ?1)",
                [MAX_ANONYMOUS],
            )?;
        }
        tx.commit()?;
        Ok(Session {
            id,
            csrf,
            user: user.cloned(),
        })
    }

    /// The live session with this id, touched (its idle time starts again); `None` when unknown,
    /// expired (then removed), or its user is disabled.
    pub fn session(
        &mut self,
        now_ms: i64,
        id: &Token,
        lifetimes: Lifetimes,
    ) -> Result<Option<Session>, ConsoleError> {
        let key = id.digest();
        let row: Option<(Option<i64>, String, i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT user_id, csrf, created_ms, last_ms FROM session WHERE id_hash = ?1",
            )?
            .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        let Some((user_id, csrf, created, last)) = row else {
            return Ok(None);
        };
        let expired = now_ms.saturating_sub(last) > lifetimes.idle_ms
            || now_ms.saturating_sub(created) > lifetimes.absolute_ms;
        let user = match user_id {
            Some(uid) => match self.user_by_id(uid)? {
                Some(u) if !u.disabled => Some(u),
                _ => {
                    self.end_session(id)?;
                    return Ok(None);
                }
            },
            None => None,
        };
        if expired {
            self.end_session(id)?;
            return Ok(None);
        }
        self.conn
            .prepare_cached("UPDATE session SET last_ms = ?1 WHERE id_hash = ?2")?
            .execute(params![now_ms, key])?;
        Ok(Some(Session {
            id: id.clone(),
            csrf: Token(csrf),
            user,
        }))
    }

    /// Ends a session.
    pub fn end_session(&mut self, id: &Token) -> Result<(), ConsoleError> {
        self.conn
            .prepare_cached("DELETE FROM session WHERE id_hash = ?1")?
            .execute([id.digest()])?;
        Ok(())
    }

    /// Removes every expired session.
    pub fn purge_sessions(
        &mut self,
        now_ms: i64,
        lifetimes: Lifetimes,
    ) -> Result<(), ConsoleError> {
        self.conn.execute(
            "DELETE FROM session WHERE ?1 - last_ms > ?2 OR ?1 - created_ms > ?3",
            params![now_ms, lifetimes.idle_ms, lifetimes.absolute_ms],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::accounts::{Password, Role, Username};

    const LIFE: Lifetimes = Lifetimes {
        idle_ms: 100,
        absolute_ms: 1_000,
    };

    #[test]
    fn sessions_expire_idle_and_absolute_and_are_stored_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = ConsoleDb::open(dir.path()).unwrap();
        let p = Password::new("correct horse battery".into()).unwrap();
        let u = db
            .add_user(
                0,
                "cli",
                &Username::parse("ana").unwrap(),
                "Ana",
                Role::Clerk,
                &p,
            )
            .unwrap();
        let s = db.start_session(0, Some(&u)).unwrap();
        assert_eq!(s.id.as_str().len(), 64);
        let stored: String = db
            .conn
            .query_row("SELECT id_hash FROM session", [], |r| r.get(0))
            .unwrap();
        assert_ne!(stored, s.id.as_str());
        // Touched every 90 ms it lives, until the absolute lifetime.
        let mut t = 0;
        while t + 90 <= 1_000 {
            t += 90;
            assert!(db.session(t, &s.id, LIFE).unwrap().is_some(), "at {t}");
        }
        assert!(db.session(1_050, &s.id, LIFE).unwrap().is_none());
        let s = db.start_session(2_000, Some(&u)).unwrap();
        assert!(db.session(2_101, &s.id, LIFE).unwrap().is_none(), "idle");
        assert!(
            db.session(0, &Token::random().unwrap(), LIFE)
                .unwrap()
                .is_none()
        );
        let s = db.start_session(3_000, Some(&u)).unwrap();
        db.set_disabled(3_001, "cli", "ana", true).unwrap();
        assert!(
            db.session(3_002, &s.id, LIFE).unwrap().is_none(),
            "disabled"
        );
    }

    #[test]
    fn tokens_compare_and_redact() {
        let a = Token::random().unwrap();
        assert!(a.matches(&Token::from_client(a.as_str())));
        assert!(!a.matches(&Token::from_client("")));
        assert_eq!(format!("{a:?}"), "Token(<redacted>)");
    }
}
