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
        TokenCommand::List => access
            .list(AccessKind::Token)?
            .iter()
            .map(line)
            .collect::<Vec<_>>()
            .join("\n"),
        TokenCommand::Revoke { key } => line(&access.revoke(AccessKind::Token, key, now_ms)?),
    })
}

/// Run a link command; returns what to print.
pub fn link(config: &Config, cmd: &LinkCommand, now_ms: i64) -> Result<String, CliError> {
    let access = open(config)?;
    Ok(match cmd {
        LinkCommand::Create {
            view,
            panel,
            filter,
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
        LinkCommand::List => access
            .list(AccessKind::Link)?
            .iter()
            .map(line)
            .collect::<Vec<_>>()
            .join("\n"),
        LinkCommand::Revoke { key } => line(&access.revoke(AccessKind::Link, key, now_ms)?),
    })
}
