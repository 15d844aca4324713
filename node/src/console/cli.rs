//! `vrs-node console` (serve the console) and `vrs-node user add | list | disable | enable |
//! passwd | unlock` (accounts, from the node's own machine). Passwords are read from the
//! terminal without echo (twice), or as one line of standard input when it is not a terminal;
//! never from the command line.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use vrs_core::clock::SystemClock;
use vrs_core::table::Table;

use super::accounts::{Password, Role, Username};
use super::db::ConsoleDb;
use super::{Console, ConsoleError, Invalid};
use crate::config::NodeConfig;

/// Who `vrs-node user` records as the actor in the change log.
pub const CLI_ACTOR: &str = "cli";

/// `vrs-node user …`
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Add an account. The password is read from the terminal (or standard input).
    Add {
        /// node.toml (or the node directory holding it).
        #[arg(long)]
        config: PathBuf,
        /// a-z, 0-9, '.', '_' or '-' (up to 64).
        username: String,
        /// clerk, reviewer or admin.
        #[arg(long)]
        role: String,
        /// The name shown in the console (default: the username).
        #[arg(long)]
        display_name: Option<String>,
    },
    /// List the accounts.
    List {
        /// node.toml (or the node directory holding it).
        #[arg(long)]
        config: PathBuf,
    },
    /// Disable an account (its sessions end).
    Disable {
        /// node.toml (or the node directory holding it).
        #[arg(long)]
        config: PathBuf,
        /// The account.
        username: String,
    },
    /// Enable a disabled account again.
    Enable {
        /// node.toml (or the node directory holding it).
        #[arg(long)]
        config: PathBuf,
        /// The account.
        username: String,
    },
    /// Set a new password (read from the terminal or standard input); lifts a lockout.
    Passwd {
        /// node.toml (or the node directory holding it).
        #[arg(long)]
        config: PathBuf,
        /// The account.
        username: String,
    },
    /// Lift the lockout that five wrong passwords put on an account.
    Unlock {
        /// node.toml (or the node directory holding it).
        #[arg(long)]
        config: PathBuf,
        /// The account.
        username: String,
    },
}

fn db_of(config: &Path) -> Result<ConsoleDb, ConsoleError> {
    ConsoleDb::open(&NodeConfig::load(config)?.data_dir())
}

fn now_ms() -> i64 {
    use vrs_core::clock::Clock;
    SystemClock.now_ms()
}

/// A new password: typed twice at a terminal, or one line of standard input.
fn read_new_password(username: &str) -> Result<Password, ConsoleError> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New password for {username}: "))?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            return Err(Invalid::PasswordsDiffer.into());
        }
        Password::new(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        Password::new(line.to_string())
    }
}

/// `vrs-node user …`.
pub fn user(action: UserAction) -> Result<ExitCode, ConsoleError> {
    match action {
        UserAction::Add {
            config,
            username,
            role,
            display_name,
        } => {
            let name = Username::parse(&username)?;
            let role: Role = role.parse()?;
            let display = display_name.unwrap_or_else(|| username.clone());
            super::accounts::check_display_name(&display)?;
            let mut db = db_of(&config)?;
            if db.user(name.as_str())?.is_some() {
                return Err(Invalid::UserExists.into());
            }
            let password = read_new_password(name.as_str())?;
            db.add_user(now_ms(), CLI_ACTOR, &name, &display, role, &password)?;
            println!(
                "added {} ({role}) to {}",
                name.as_str(),
                db.path().display()
            );
        }
        UserAction::List { config } => {
            let db = db_of(&config)?;
            let now = now_ms();
            let mut t = Table::new(["username", "display name", "role", "state", "last sign-in"]);
            for u in db.users()? {
                let state = if u.disabled {
                    "disabled"
                } else if u.locked(now) {
                    "locked"
                } else {
                    "active"
                };
                t.push(vec![
                    u.username,
                    u.display_name,
                    u.role.to_string(),
                    state.to_string(),
                    u.last_sign_in_ms
                        .and_then(chrono::DateTime::from_timestamp_millis)
                        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                        .unwrap_or_else(|| "never".into()),
                ]);
            }
            print!("{}", t.to_aligned());
        }
        UserAction::Disable { config, username } => {
            db_of(&config)?.set_disabled(now_ms(), CLI_ACTOR, &username, true)?;
            println!("disabled {username}; its sessions ended");
        }
        UserAction::Enable { config, username } => {
            db_of(&config)?.set_disabled(now_ms(), CLI_ACTOR, &username, false)?;
            println!("enabled {username}");
        }
        UserAction::Passwd { config, username } => {
            let mut db = db_of(&config)?;
            if db.user(&username)?.is_none() {
                return Err(ConsoleError::NoSuchUser(username));
            }
            let password = read_new_password(&username)?;
            db.set_password(now_ms(), CLI_ACTOR, &username, &password)?;
            println!("new password set for {username}; its sessions ended");
        }
        UserAction::Unlock { config, username } => {
            db_of(&config)?.unlock(now_ms(), CLI_ACTOR, &username)?;
            println!("unlocked {username}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `vrs-node console`: serves the console until Ctrl-C or SIGTERM. Prints `console listening
/// on http://ADDR` (https under TLS) once the socket is bound (scripts read the port from it).
pub fn console(config_path: &Path, listen: Option<SocketAddr>) -> Result<ExitCode, ConsoleError> {
    let config = NodeConfig::load(config_path)?;
    let addr = listen.unwrap_or(config.file.console.listen);
    super::check_listen(addr, &config.file.console)?;
    let scheme = if config.file.console.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let console = Arc::new(Console::new(config, Arc::new(SystemClock))?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let accounts = console.with_db(|db, _| Ok(db.users()?.len())).await?;
        if accounts == 0 {
            eprintln!(
                "no accounts yet: add an admin with `vrs-node user add --config {} --role admin NAME`",
                config_path.display()
            );
        }
        println!("console listening on {scheme}://{}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            tracing::info!("console shutting down");
        };
        super::serve(listener, console, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}
