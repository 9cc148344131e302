//! Which kind of target ([`TargetKind`]) a record is, for the permission model: what protects
//! the admin API and administrators, and what gives an application a power over users.

use super::permission::{AdminScope, Operation, TargetKind};
use super::{Admin, PORTAL_CLIENT};
use crate::model::{Client, GrantType, JwtBearerSubject, User};
use crate::names::ADMIN_GROUP;
use crate::provider::Provider;

impl Provider {
    /// Whether `identifier` is the admin API's.
    pub(crate) fn is_admin_api(&self, identifier: &str) -> bool {
        identifier == self.admin_api()
    }

    /// An application of the admin API (it may obtain admin API tokens, or is registered as the
    /// admin API itself, or is the Portal), one that may introspect every token, or one that may
    /// assert users' identities.
    pub(crate) fn client_kind(&self, c: &Client) -> TargetKind {
        let admin_api = c.apis.iter().any(|a| self.is_admin_api(a))
            || self.is_admin_api(&c.client_id)
            || c.client_id == PORTAL_CLIENT
            || c.introspect_any_token;
        if admin_api {
            return TargetKind::Protected;
        }
        let asserts = (c.grant_types.contains(&GrantType::JwtBearer)
            && c.federation.jwt_bearer_subject == JwtBearerSubject::User)
            || (c.grant_types.contains(&GrantType::TokenExchange)
                && c.federation.impersonation_allowed)
            || c.grant_types.contains(&GrantType::Saml2Bearer)
            // Exchanging an identity provider's tokens speaks for the users they name, with an
            // actor token as well as without one.
            || !c.federation.exchange_identity_providers.is_empty();
        if asserts {
            TargetKind::AssertsUsers
        } else {
            TargetKind::Ordinary
        }
    }

    /// The admin API, or an API that names one of its scopes.
    pub(crate) fn api_kind(&self, identifier: &str, scopes: &[String]) -> TargetKind {
        if self.is_admin_api(identifier)
            || scopes
                .iter()
                .any(|s| scope_kind(s) == TargetKind::Protected)
        {
            TargetKind::Protected
        } else {
            TargetKind::Ordinary
        }
    }
}

/// One of the admin API's scopes.
pub(crate) fn scope_kind(name: &str) -> TargetKind {
    if AdminScope::parse(name).is_some() {
        TargetKind::Protected
    } else {
        TargetKind::Ordinary
    }
}

/// The administrators' group.
pub(crate) fn group_kind(name: &str) -> TargetKind {
    if name == ADMIN_GROUP {
        TargetKind::Protected
    } else {
        TargetKind::Ordinary
    }
}

/// A member of the administrators' group.
pub(crate) fn is_administrator(u: &User) -> bool {
    in_admin_group(&u.groups)
}

/// Whether `groups` holds the administrators' group.
pub(crate) fn in_admin_group(groups: &[String]) -> bool {
    groups.iter().any(|g| g == ADMIN_GROUP)
}

impl Admin<'_> {
    /// The kind a user is as the target of `op`: the caller's own user (when `op` may be done
    /// on oneself), an administrator, or an ordinary user.
    pub(crate) fn user_kind(&self, op: Operation, u: &User) -> TargetKind {
        if self.caller().user_id() == Some(u.id.as_str()) && op.targets().contains(&TargetKind::Own)
        {
            TargetKind::Own
        } else {
            self.as_other(u)
        }
    }

    /// The kind a user is to anyone but themself.
    pub(crate) fn as_other(&self, u: &User) -> TargetKind {
        if is_administrator(u) {
            TargetKind::Protected
        } else {
            TargetKind::Ordinary
        }
    }

    /// The user `id` names (by id or username), once the caller may perform `op` on them. Unless
    /// `id` is the caller's own id and `op` may be done on oneself, the ordinary need is checked
    /// before the lookup, so a caller who may not learns nothing about other users.
    pub(crate) async fn reach(
        &self,
        op: Operation,
        id: &str,
    ) -> super::AdminResult<(User, TargetKind)> {
        let own = self.caller().user_id() == Some(id) && op.targets().contains(&TargetKind::Own);
        if !own {
            self.authorize(op, TargetKind::Ordinary)?;
        }
        let u = self.provider.find_user(id).await?;
        let kind = self.user_kind(op, &u);
        self.authorize(op, kind)?;
        Ok((u, kind))
    }

    /// Whether the caller acts on its own user with no more than `users:self` allows: the power
    /// it would need over the same user as anyone else's is not the caller's.
    pub(crate) fn self_service_only(&self, op: Operation, u: &User, kind: TargetKind) -> bool {
        kind == TargetKind::Own && !self.may(op, self.as_other(u))
    }
}

impl Admin<'_> {
    /// Refuses unless the caller may perform `op` on the application `c` (a confirmation page
    /// asks before it shows).
    pub fn may_on_application(&self, op: Operation, c: &Client) -> super::AdminResult<()> {
        self.authorize(op, TargetKind::Ordinary)?;
        self.authorize(op, self.client_kind(c))
    }

    /// Refuses unless the caller may perform `op` on the API `identifier` (as stored, when it is).
    pub async fn may_on_api(&self, op: Operation, identifier: &str) -> super::AdminResult<()> {
        self.authorize(op, TargetKind::Ordinary)?;
        let scopes = match self.store.get_api(identifier).await? {
            Some(a) => a.scopes,
            None => Vec::new(),
        };
        self.may_on_api_with(op, identifier, &scopes)
    }

    /// Refuses unless the caller may perform `op` on the API `identifier` defining `scopes`
    /// (the admin API, or one naming its scopes, is protected).
    pub(crate) fn may_on_api_with(
        &self,
        op: Operation,
        identifier: &str,
        scopes: &[String],
    ) -> super::AdminResult<()> {
        self.authorize(op, TargetKind::Ordinary)?;
        self.authorize(op, self.api_kind(identifier, scopes))
    }

    /// Refuses unless the caller may perform `op` on the scope `name`.
    pub fn may_on_scope(&self, op: Operation, name: &str) -> super::AdminResult<()> {
        self.authorize(op, TargetKind::Ordinary)?;
        self.authorize(op, scope_kind(name))
    }

    /// Refuses unless the caller may perform `op` on the user `u`.
    pub fn may_on_user(&self, op: Operation, u: &User) -> super::AdminResult<()> {
        self.authorize(op, self.user_kind(op, u))
    }
}
