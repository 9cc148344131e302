//! Authentication schemes as administrators set them up: which methods satisfy a scheme, the
//! `acr` it yields, how long a factor counts, whether users may enrol while signing in. A
//! scheme an application of the admin API signs in with is protected: weakening it would weaken
//! the administrators' sign-in.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::permission::{Operation, TargetKind};
use super::{invalid, text, Admin, AdminError, AdminResult};
use crate::clock::Timestamp;
use crate::factor::Method;
use crate::model::Client;
use crate::provider::Provider;
use crate::scheme::{AuthScheme, DEFAULT_SCHEME};
use crate::store::{Change, Record, Table};

/// Shortest factor lifetime a scheme may set: a minute.
const MIN_FACTOR_LIFETIME: i64 = 60;

/// A scheme as an administrator describes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemeSpec {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    /// Alternatives, each a set of methods proved together: `[["password","totp"],["passkey"]]`.
    pub methods: Vec<Vec<Method>>,
    /// The `acr` value it yields: printable ASCII without spaces, unique among schemes.
    pub acr: String,
    /// Seconds a proved factor counts for (at least 60); none: as long as the SSO session.
    #[serde(default)]
    pub factor_lifetime: Option<i64>,
    /// Users who lack a factor it needs may set one up while signing in (default true).
    #[serde(default)]
    pub enrolment: Option<bool>,
    /// The upstream identity providers the `upstream` method signs in at, by name.
    #[serde(default)]
    pub identity_providers: Vec<String>,
}

impl SchemeSpec {
    pub(crate) fn to_scheme(
        &self,
        existing: Option<&AuthScheme>,
        now: Timestamp,
    ) -> AdminResult<AuthScheme> {
        let name = super::catalog::scope_name("name", &self.name)?;
        if name.eq_ignore_ascii_case(DEFAULT_SCHEME) {
            return Err(invalid(
                "name",
                "password is the built-in scheme of every application that names none",
            ));
        }
        if name.eq_ignore_ascii_case(crate::scheme::SECOND_FACTOR) {
            return Err(invalid(
                "name",
                "second-factor is the account page's own requirement, reserved",
            ));
        }
        if self.methods.is_empty() {
            return Err(invalid("methods", "name at least one set of methods"));
        }
        let mut methods: Vec<Vec<Method>> = Vec::new();
        for alt in &self.methods {
            let mut set: Vec<Method> = Vec::new();
            for m in alt {
                if !set.contains(m) {
                    set.push(*m);
                }
            }
            // A sign-in starts with a password, a passkey or an upstream: a code alone names
            // no user.
            if !set
                .iter()
                .any(|m| matches!(m, Method::Password | Method::Passkey | Method::Upstream))
            {
                return Err(invalid(
                    "methods",
                    "every set needs password, passkey or upstream: a one-time code alone names no user",
                ));
            }
            set.sort();
            if !methods.contains(&set) {
                methods.push(set);
            }
        }
        let upstream = methods.iter().any(|a| a.contains(&Method::Upstream));
        let mut idps: Vec<String> = Vec::new();
        for i in &self.identity_providers {
            if !idps.contains(i) {
                idps.push(i.clone());
            }
        }
        if upstream && idps.is_empty() {
            return Err(invalid(
                "identity_providers",
                "the upstream method needs at least one identity provider",
            ));
        }
        if !upstream && !idps.is_empty() {
            return Err(invalid(
                "identity_providers",
                "identity providers count only in a set of methods with upstream",
            ));
        }
        let acr = self.acr.as_str();
        if acr.is_empty() || acr.len() > 256 || !acr.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(invalid(
                "acr",
                "must be 1-256 printable ASCII characters without spaces (acr_values separates them by spaces)",
            ));
        }
        if let Some(l) = self.factor_lifetime {
            if l < MIN_FACTOR_LIFETIME {
                return Err(invalid(
                    "factor_lifetime",
                    format!("must be at least {MIN_FACTOR_LIFETIME} seconds, or absent"),
                ));
            }
        }
        Ok(AuthScheme {
            name,
            display_name: text("display_name", &self.display_name, false, 200)?,
            description: text("description", &self.description, false, 1000)?,
            methods,
            acr: acr.to_owned(),
            factor_lifetime: self.factor_lifetime,
            enrolment: self.enrolment.unwrap_or(true),
            identity_providers: idps,
            created_at: existing.map_or(now, |e| e.created_at),
            updated_at: now,
        })
    }
}

impl From<&AuthScheme> for SchemeSpec {
    fn from(s: &AuthScheme) -> SchemeSpec {
        SchemeSpec {
            name: s.name.clone(),
            display_name: s.display_name.clone(),
            description: s.description.clone(),
            methods: s.methods.clone(),
            acr: s.acr.clone(),
            factor_lifetime: s.factor_lifetime,
            enrolment: Some(s.enrolment),
            identity_providers: s.identity_providers.clone(),
        }
    }
}

impl Provider {
    /// A scheme an application of the admin API uses is protected.
    pub(crate) fn scheme_kind(&self, name: &str, clients: &[Client]) -> TargetKind {
        let protected = clients.iter().any(|c| {
            c.browser.authentication_scheme == name && self.client_kind(c) == TargetKind::Protected
        });
        if protected {
            TargetKind::Protected
        } else {
            TargetKind::Ordinary
        }
    }

    /// Every scheme, the built-in `password` first.
    pub(crate) async fn all_schemes(&self) -> AdminResult<Vec<AuthScheme>> {
        let mut v = vec![AuthScheme::password()];
        let mut stored = self.store.list_schemes().await?;
        stored.sort_by(|a, b| a.name.cmp(&b.name));
        v.extend(stored);
        Ok(v)
    }

    /// Refuses identity providers that do not exist.
    async fn idps_exist(&self, s: &AuthScheme) -> AdminResult<()> {
        let stored = self.store.list_idps().await?;
        match s
            .identity_providers
            .iter()
            .find(|n| !stored.iter().any(|i| &i.name == *n))
        {
            Some(n) => Err(invalid(
                "identity_providers",
                format!("there is no identity provider {n}"),
            )),
            None => Ok(()),
        }
    }

    /// Refuses an `acr` another scheme yields: `acr_values` must name one scheme.
    async fn acr_unique(&self, s: &AuthScheme) -> AdminResult<()> {
        if let Some(other) = self
            .all_schemes()
            .await?
            .into_iter()
            .find(|o| o.acr == s.acr && o.name != s.name)
        {
            return Err(AdminError::Conflict(format!(
                "acr {} is already the acr of scheme {}",
                s.acr, other.name
            )));
        }
        Ok(())
    }
}

impl Admin<'_> {
    pub async fn schemes(&self) -> AdminResult<Vec<AuthScheme>> {
        self.authorize(Operation::ListSchemes, TargetKind::Ordinary)?;
        self.all_schemes().await
    }

    pub async fn scheme(&self, name: &str) -> AdminResult<AuthScheme> {
        self.authorize(Operation::ReadScheme, TargetKind::Ordinary)?;
        self.all_schemes()
            .await?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| AdminError::NotFound(format!("scheme {name}")))
    }

    /// Refuses unless the caller may perform `op` on the scheme `name` (a confirmation page asks
    /// before it shows).
    pub async fn may_on_scheme(&self, op: Operation, name: &str) -> AdminResult<()> {
        self.authorize(op, TargetKind::Ordinary)?;
        let clients = self.store.list_clients().await?;
        self.authorize(op, self.scheme_kind(name, &clients))
    }

    async fn stored_scheme(&self, name: &str) -> AdminResult<AuthScheme> {
        if name == DEFAULT_SCHEME {
            return Err(AdminError::Conflict(
                "password is the built-in scheme; it cannot be changed or deleted".into(),
            ));
        }
        self.store
            .list_schemes()
            .await?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| AdminError::NotFound(format!("scheme {name}")))
    }

    pub async fn create_scheme(&self, spec: &SchemeSpec) -> AdminResult<AuthScheme> {
        self.authorize(Operation::CreateScheme, TargetKind::Ordinary)?;
        let scheme = &spec.to_scheme(None, self.now())?;
        self.settle(|| async move {
            let version = self.read_version().await?;
            self.acr_unique(scheme).await?;
            self.idps_exist(scheme).await?;
            let change = Change::Create(Record::Scheme(scheme.clone()));
            self.commit_as(version, &[change], None, json!({"acr": scheme.acr}))
                .await
        })
        .await?;
        Ok(scheme.clone())
    }

    /// Replaces the scheme named by `spec` with `spec`.
    pub async fn update_scheme(&self, spec: &SchemeSpec) -> AdminResult<AuthScheme> {
        self.settle(|| self.try_update_scheme(spec)).await
    }

    async fn try_update_scheme(&self, spec: &SchemeSpec) -> AdminResult<AuthScheme> {
        self.may_on_scheme(Operation::ReplaceScheme, &spec.name)
            .await?;
        let version = self.read_version().await?;
        let existing = self.stored_scheme(&spec.name).await?;
        self.precondition(&existing)?;
        let scheme = spec.to_scheme(Some(&existing), self.now())?;
        self.acr_unique(&scheme).await?;
        self.idps_exist(&scheme).await?;
        self.commit_as(
            version,
            &[Change::Update(Record::Scheme(scheme.clone()))],
            None,
            json!({"acr": scheme.acr}),
        )
        .await?;
        Ok(scheme)
    }

    /// Refuses while an application signs in with it.
    pub async fn delete_scheme(&self, name: &str) -> AdminResult<()> {
        self.settle(|| self.try_delete_scheme(name)).await
    }

    async fn try_delete_scheme(&self, name: &str) -> AdminResult<()> {
        self.may_on_scheme(Operation::DeleteScheme, name).await?;
        let version = self.read_version().await?;
        self.precondition(&self.stored_scheme(name).await?)?;
        let users: Vec<String> = self
            .store
            .list_clients()
            .await?
            .into_iter()
            .filter(|c| c.browser.authentication_scheme == name)
            .map(|c| c.client_id)
            .collect();
        if !users.is_empty() {
            return Err(AdminError::Conflict(format!(
                "scheme {name} is still used by {}",
                users.join(", ")
            )));
        }
        self.commit_as(
            version,
            &[Change::Delete(Table::Schemes, name.to_owned())],
            None,
            Value::Null,
        )
        .await
    }
}
