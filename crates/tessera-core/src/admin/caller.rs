//! Who calls an administrative use-case, and with which of the admin API's scopes: a user or an
//! application holding a Tessera access token for the admin API (RFC 6750 §2.1), the local
//! `tessera` command line, or the server's own background jobs.

use std::collections::BTreeSet;

use super::permission::{AdminScope, Need};
use super::targets::is_administrator;
use crate::audit::Actor;
use crate::error::ErrorCode;
use crate::provider::Provider;
use crate::resource::Presented;

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A user, through a token an application obtained for them.
    User(String),
    /// An application acting for itself (client credentials).
    Client(String),
    /// The `tessera` command line on the server's own machine: whoever runs it holds the
    /// database and the master key already.
    Local,
    /// The server's background jobs (key rotation, the admin API's own set-up).
    System,
}

/// The caller of an administrative use-case and the admin API scopes in force for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    principal: Principal,
    scopes: BTreeSet<AdminScope>,
    /// The user proved a second factor for this call, recently (the account page): what a
    /// user who holds one needs to change their own password.
    second_factor: bool,
}

/// Why a token does not make an admin API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerError {
    /// RFC 6750 §3.1 `invalid_token`: the reason, for the client developer.
    InvalidToken(&'static str),
    /// The store could not be read: retry.
    Unavailable,
    /// RFC 9449 §7.1: the token's presentation does not fit its binding (`invalid_token`,
    /// `invalid_dpop_proof`, `use_dpop_nonce`).
    Refused {
        code: ErrorCode,
        description: String,
    },
}

impl Caller {
    /// Dynamic client registration acting for a client on its own registration (RFC 7591,
    /// 7592): `config:write` alone, so the model refuses it what an administrator would need
    /// more for (an application of the admin API, one that asserts users).
    pub fn registration(client_id: &str) -> Caller {
        Caller {
            principal: Principal::Client(client_id.to_owned()),
            scopes: [AdminScope::ConfigWrite].into_iter().collect(),
            second_factor: false,
        }
    }

    /// The command line: every power.
    pub fn local() -> Caller {
        Caller {
            principal: Principal::Local,
            scopes: AdminScope::ALL.into_iter().collect(),
            second_factor: false,
        }
    }

    /// A background job of the server: every power.
    pub fn system() -> Caller {
        Caller {
            principal: Principal::System,
            scopes: AdminScope::ALL.into_iter().collect(),
            second_factor: false,
        }
    }

    /// A user on their own account page, signed in through the browser: `users:self` only, so
    /// the permission model limits them to their own account as it does a `users:self` token.
    /// `recent` says the page saw a recent sign-in with a second factor (when the user holds one).
    pub(crate) fn account(user_id: &str, recent: bool) -> Caller {
        Caller {
            principal: Principal::User(user_id.to_owned()),
            scopes: [AdminScope::UsersSelf].into_iter().collect(),
            second_factor: recent,
        }
    }

    /// Whether the caller proved a second factor for this call, recently.
    pub(crate) fn proved_second_factor(&self) -> bool {
        self.second_factor
    }

    /// The user the caller is, when it is one.
    pub fn user_id(&self) -> Option<&str> {
        match &self.principal {
            Principal::User(id) => Some(id),
            _ => None,
        }
    }

    pub fn holds(&self, scope: AdminScope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Whether the caller's scopes satisfy `need`.
    pub fn meets(&self, need: Need) -> bool {
        need.met_by(|s| self.holds(s))
    }

    /// Who the audit log names.
    pub fn actor(&self) -> Actor {
        match &self.principal {
            Principal::User(id) => Actor::user(id),
            Principal::Client(id) => Actor::client(id),
            Principal::Local => Actor::cli(),
            Principal::System => Actor::system(),
        }
    }
}

impl Provider {
    /// The caller an access token stands for at the admin API: the token must be active (its
    /// client enabled, its grant and user in force), issued for the admin API (its `aud` names
    /// `<issuer>/admin/api`), and the caller's own:
    ///
    /// - a token carrying `act` (token exchange delegation) speaks for someone else: refused;
    /// - a user's token obtained from an assertion (the JWT bearer grant) proves no sign-in by
    ///   the user: refused;
    /// - a token without a grant is an application's own only when its `sub` is its client_id
    ///   (client credentials); an impersonating exchange is refused.
    ///
    /// Its scopes are the admin API's it names; `administrator` counts for a user only while the
    /// user is a member of `tessera-admins`.
    pub async fn admin_caller(&self, presented: Presented<'_>) -> Result<Caller, CallerError> {
        let found = self
            .presented_access_token(presented, self.now())
            .await
            .map_err(|e| match e.code {
                ErrorCode::TemporarilyUnavailable | ErrorCode::ServerError => {
                    CallerError::Unavailable
                }
                ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce | ErrorCode::InvalidToken => {
                    CallerError::Refused {
                        code: e.code,
                        description: e.description.into_owned(),
                    }
                }
                _ => CallerError::InvalidToken("the access token is invalid, expired or revoked"),
            })?;
        let Some((claims, grant)) = found else {
            return Err(CallerError::InvalidToken(
                "the access token is invalid, expired or revoked",
            ));
        };
        if !claims.aud.iter().any(|a| self.is_admin_api(a)) {
            return Err(CallerError::InvalidToken(
                "the access token was not issued for the admin API (its aud lacks <issuer>/admin/api)",
            ));
        }
        if claims.extra.contains_key("act") {
            return Err(CallerError::InvalidToken(
                "a delegated token (with act) is not accepted by the admin API",
            ));
        }
        let mut scopes: BTreeSet<AdminScope> = claims
            .scope
            .iter()
            .filter_map(|s| AdminScope::parse(s))
            .collect();
        let principal = match grant {
            Some(g) if g.record.asserted() => {
                return Err(CallerError::InvalidToken(
                    "a token obtained from an assertion is not accepted by the admin API",
                ))
            }
            Some(g) => {
                if !is_administrator(&g.user) {
                    scopes.remove(&AdminScope::Administrator);
                }
                Principal::User(g.user.id)
            }
            None if claims.sub == claims.client_id => Principal::Client(claims.client_id),
            None => {
                return Err(CallerError::InvalidToken(
                    "a token issued for another subject than its client is not accepted by the admin API",
                ))
            }
        };
        Ok(Caller {
            principal,
            scopes,
            second_factor: false,
        })
    }
}
