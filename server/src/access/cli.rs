//! `pulseboard token …` and `pulseboard link …`: tokens and share links managed in the
//! store of `--data-dir` while no server holds it.

use pulseboard_model::time::parse_duration_ms;

use super::{Access, AccessError, Listed, Role, Scope, View};
use crate::config::{Config, LinkCommand, TokenCommand};
use crate::store::{AccessKind, Store};

/// What a command printed, or why it failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot open the store in {dir}: {source} (a running Pulseboard holds it: stop it, or use the API: POST /api/v1/tokens or /api/v1/links with an admin token)")]
    Store {
        dir: String,
        source: crate::store::StoreError,
    },
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("--filter: {0}")]
    Filter(String),
}

fn open(config: &Config) -> Result<Access, CliError> {
    let dir = config.store.data_dir(config.embedded());
    let store =
        Store::open(&dir, config.windows.config().width_ms).map_err(|source| CliError::Store {
            dir: dir.display().to_string(),
            source,
        })?;
    Ok(Access::new(store, None, false, false))
}

fn line(l: &Listed) -> String {
    let mut out = format!("{}  {}", l.key, l.name);
    if let Some(r) = &l.role {
        out.push_str(&format!("  role={r}"));
    }
    if let Some(s) = &l.scope {
        out.push_str(&format!("  page={}", s.page()));
    }
    if let Some(e) = l.expires_ms {
        out.push_str(&format!("  expires_ms={e}"));
    }
    if let Some(r) = l.revoked_ms {
        out.push_str(&format!("  revoked_ms={r}"));
    }
    out
}

fn lines(access: &Access, kind: AccessKind) -> Result<String, CliError> {
    Ok(access
        .list(kind)?
        .iter()
        .map(line)
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Run a token command; returns what to print.
pub fn token(config: &Config, cmd: &TokenCommand, now_ms: i64) -> Result<String, CliError> {
    let access = open(config)?;
    Ok(match cmd {
        TokenCommand::Create { role, name } => {
            let role = Role::parse(role).ok_or(AccessError::Invalid("role", role.clone()))?;
            let (secret, l) = access.create_token(role, name, now_ms)?;
            format!(
                "{secret}\n# {} token {:?}, key {}: shown this once; send it as `Authorization: Bearer <token>` or sign in with it on the dashboard",
                role.name(),
                l.name,
                l.key
            )
        }
        TokenCommand::List => lines(&access, AccessKind::Token)?,
        TokenCommand::Revoke { key } => line(&access.revoke(AccessKind::Token, key, now_ms)?),
    })
}

/// Run a link command; returns what to print. `check_filter` reads a link's filter as the
/// API will (so a link never opens on a segment every request would refuse).
pub fn link(
    config: &Config,
    cmd: &LinkCommand,
    now_ms: i64,
    check_filter: impl Fn(&str) -> Result<(), String>,
) -> Result<String, CliError> {
    if let LinkCommand::Create {
        filter: Some(f), ..
    } = cmd
    {
        check_filter(f).map_err(CliError::Filter)?;
    }
    let access = open(config)?;
    Ok(match cmd {
        LinkCommand::Create {
            view,
            panel,
            filter,
            site,
            range,
            expires_in,
            name,
        } => {
            let view = match view.as_str() {
                "kiosk" => View::Kiosk,
                "dashboard" => View::Dashboard,
                _ => View::Embed,
            };
            let expires = match expires_in {
                None => None,
                Some(s) => Some(
                    now_ms
                        + parse_duration_ms(s)
                            .ok()
                            .filter(|ms| *ms > 0)
                            .ok_or_else(|| AccessError::Invalid("expires-in", s.clone()))?,
                ),
            };
            let scope = Scope {
                view,
                panel: panel.clone(),
                filter: filter.clone(),
                site: site.clone(),
                range: range.clone(),
            };
            let (id, l) = access.create_link(&scope, name, expires, now_ms)?;
            format!(
                "/s/{id}\n# link {:?}, key {}, opens {}: shown this once; put the server's address before it",
                l.name,
                l.key,
                scope.page()
            )
        }
        LinkCommand::List => lines(&access, AccessKind::Link)?,
        LinkCommand::Revoke { key } => line(&access.revoke(AccessKind::Link, key, now_ms)?),
    })
}
