//! APIs (resource servers) and scopes: the catalog clients draw their audiences and permissions from.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::permission::{Operation, TargetKind};
use super::{invalid, text, Admin, AdminError, AdminResult};
use crate::model::{Api, Scope};
use crate::params::parse_scope;
use crate::provider::Provider;
use crate::store::{Change, Record, Table};

/// A scope as an administrator describes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeSpec {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub default: bool,
    /// Listed in discovery (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discoverable: Option<bool>,
    /// Custom claims: claim name <- user attribute (seed 003 "Custom Claims").
    #[serde(default)]
    pub claims: std::collections::BTreeMap<String, String>,
}

/// An API (resource server) as an administrator describes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    pub identifier: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// RFC 6749 §3.3 scope-token syntax, and a bounded length.
pub(crate) fn scope_name(field: &str, name: &str) -> AdminResult<String> {
    let parsed = parse_scope(name).map_err(|e| invalid(field, e.description))?;
    match parsed.as_slice() {
        [one] if one == name && name.len() <= 128 => Ok(one.clone()),
        _ => Err(invalid(
            field,
            format!("{name:?} must be one scope token of at most 128 characters"),
        )),
    }
}

/// RFC 8707 §2: an API identifier, in its normal form ([`crate::names::api_identifier`]).
fn api_identifier(identifier: &str) -> AdminResult<String> {
    crate::names::api_identifier(identifier).map_err(|m| invalid("identifier", m))
}

impl ScopeSpec {
    pub(crate) fn to_scope(
        &self,
        existing: Option<&Scope>,
        now: crate::clock::Timestamp,
    ) -> AdminResult<Scope> {
        if crate::model::OPENID_SCOPES.contains(&self.name.as_str()) {
            return Err(invalid(
                "name",
                format!(
                    "{} is an OpenID Connect scope (OIDC Core §5.4, §11), which Tessera defines",
                    self.name
                ),
            ));
        }
        Ok(Scope {
            name: scope_name("name", &self.name)?,
            display_name: text("display_name", &self.display_name, false, 200)?,
            description: text("description", &self.description, false, 1000)?,
            default: self.default,
            discoverable: self.discoverable.unwrap_or(true),
            claims: self
                .claims
                .iter()
                .map(|(claim, attr)| {
                    Ok((
                        super::rules::claim_name("claims", claim)?,
                        super::rules::attribute_name("claims", attr)?,
                    ))
                })
                .collect::<AdminResult<_>>()?,
            created_at: existing.map_or(now, |e| e.created_at),
            updated_at: now,
        })
    }
}

/// The spec that gives back this record (`tessera export`).
impl From<&Scope> for ScopeSpec {
    fn from(s: &Scope) -> ScopeSpec {
        ScopeSpec {
            name: s.name.clone(),
            display_name: s.display_name.clone(),
            description: s.description.clone(),
            default: s.default,
            discoverable: Some(s.discoverable),
            claims: s.claims.clone(),
        }
    }
}

/// The spec that gives back this record (`tessera export`).
impl From<&Api> for ApiSpec {
    fn from(a: &Api) -> ApiSpec {
        ApiSpec {
            identifier: a.identifier.clone(),
            name: a.name.clone(),
            scopes: a.scopes.clone(),
        }
    }
}

impl ApiSpec {
    pub(crate) fn to_api(
        &self,
        existing: Option<&Api>,
        now: crate::clock::Timestamp,
    ) -> AdminResult<Api> {
        let identifier = api_identifier(&self.identifier)?;
        let mut scopes = Vec::new();
        for s in &self.scopes {
            let s = scope_name("scopes", s)?;
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        let name = if self.name.trim().is_empty() {
            identifier.clone()
        } else {
            text("name", &self.name, true, 200)?
        };
        Ok(Api {
            identifier,
            name,
            scopes,
            created_at: existing.map_or(now, |e| e.created_at),
            updated_at: now,
        })
    }
}

impl Provider {
    pub(crate) async fn get_scope(&self, name: &str) -> AdminResult<Scope> {
        self.store
            .get_scope(name)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("scope {name}")))
    }

    pub(crate) async fn get_api(&self, identifier: &str) -> AdminResult<Api> {
        self.store
            .get_api(identifier)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("API {identifier}")))
    }

    async fn missing_scopes(&self, api: &Api) -> AdminResult<Vec<Change>> {
        let mut changes = Vec::new();
        for s in &api.scopes {
            if self.store.get_scope(s).await?.is_none() {
                let spec = ScopeSpec {
                    name: s.clone(),
                    display_name: s.clone(),
                    ..ScopeSpec::default()
                };
                changes.push(Change::Create(Record::Scope(
                    spec.to_scope(None, api.updated_at)?,
                )));
            }
        }
        Ok(changes)
    }
}

impl Admin<'_> {
    pub async fn scopes(&self) -> AdminResult<Vec<Scope>> {
        self.authorize(Operation::ListScopes, TargetKind::Ordinary)?;
        Ok(self.store.list_scopes().await?)
    }

    pub async fn scope(&self, name: &str) -> AdminResult<Scope> {
        self.authorize(Operation::ReadScope, TargetKind::Ordinary)?;
        self.get_scope(name).await
    }

    pub async fn apis(&self) -> AdminResult<Vec<Api>> {
        self.authorize(Operation::ListApis, TargetKind::Ordinary)?;
        Ok(self.store.list_apis().await?)
    }

    pub async fn api(&self, identifier: &str) -> AdminResult<Api> {
        self.authorize(Operation::ReadApi, TargetKind::Ordinary)?;
        self.get_api(identifier).await
    }

    pub async fn create_scope(&self, spec: &ScopeSpec) -> AdminResult<Scope> {
        let scope = &spec.to_scope(None, self.now())?;
        self.may_on_scope(Operation::CreateScope, &scope.name)?;
        self.settle(|| async move {
            let version = self.read_version().await?;
            let change = Change::Create(Record::Scope(scope.clone()));
            self.commit_as(version, &[change], None, Value::Null).await
        })
        .await?;
        Ok(scope.clone())
    }

    /// Replaces the scope named by `spec` with `spec`.
    pub async fn update_scope(&self, spec: &ScopeSpec) -> AdminResult<Scope> {
        self.settle(|| self.try_update_scope(spec)).await
    }

    async fn try_update_scope(&self, spec: &ScopeSpec) -> AdminResult<Scope> {
        self.may_on_scope(Operation::ReplaceScope, &spec.name)?;
        let version = self.read_version().await?;
        let existing = self.get_scope(&spec.name).await?;
        self.precondition(&existing)?;
        let scope = spec.to_scope(Some(&existing), self.now())?;
        self.commit_as(
            version,
            &[Change::Update(Record::Scope(scope.clone()))],
            None,
            Value::Null,
        )
        .await?;
        Ok(scope)
    }

    /// Refuses while an API or a client still uses the scope.
    pub async fn delete_scope(&self, name: &str) -> AdminResult<()> {
        self.settle(|| self.try_delete_scope(name)).await
    }

    async fn try_delete_scope(&self, name: &str) -> AdminResult<()> {
        self.may_on_scope(Operation::DeleteScope, name)?;
        let version = self.read_version().await?;
        self.precondition(&self.get_scope(name).await?)?;
        let users: Vec<String> = self
            .store
            .list_clients()
            .await?
            .into_iter()
            .filter(|c| c.scopes.iter().any(|s| s == name))
            .map(|c| c.client_id)
            .chain(
                self.store
                    .list_apis()
                    .await?
                    .into_iter()
                    .filter(|a| a.scopes.iter().any(|s| s == name))
                    .map(|a| a.identifier),
            )
            .collect();
        if !users.is_empty() {
            return Err(AdminError::Conflict(format!(
                "scope {name} is still used by {}",
                users.join(", ")
            )));
        }
        self.commit_as(
            version,
            &[Change::Delete(Table::Scopes, name.to_owned())],
            None,
            Value::Null,
        )
        .await
    }

    /// Creates the API and any of its scopes that do not exist yet, in one change.
    pub async fn create_api(&self, spec: &ApiSpec) -> AdminResult<Api> {
        let now = self.now();
        let api = spec.to_api(None, now)?;
        self.may_on_api_with(Operation::CreateApi, &api.identifier, &api.scopes)?;
        let api = &api;
        self.settle(|| async move {
            let version = self.read_version().await?;
            let mut changes = vec![Change::Create(Record::Api(api.clone()))];
            changes.extend(self.missing_scopes(api).await?);
            self.commit_as(version, &changes, None, Value::Null).await
        })
        .await?;
        Ok(api.clone())
    }

    /// Replaces the API named by `spec` with `spec`, creating scopes it names that do not exist.
    pub async fn update_api(&self, spec: &ApiSpec) -> AdminResult<Api> {
        self.settle(|| self.try_update_api(spec)).await
    }

    async fn try_update_api(&self, spec: &ApiSpec) -> AdminResult<Api> {
        let version = self.read_version().await?;
        self.may_on_api_with(Operation::ReplaceApi, &spec.identifier, &[])?;
        let existing = self.get_api(&spec.identifier).await?;
        self.may_on_api_with(
            Operation::ReplaceApi,
            &existing.identifier,
            &existing.scopes,
        )?;
        self.precondition(&existing)?;
        let api = spec.to_api(Some(&existing), self.now())?;
        self.may_on_api_with(Operation::ReplaceApi, &api.identifier, &api.scopes)?;
        let mut changes = vec![Change::Update(Record::Api(api.clone()))];
        changes.extend(self.missing_scopes(&api).await?);
        self.commit_as(version, &changes, None, Value::Null).await?;
        Ok(api)
    }

    /// Refuses while a client may still obtain tokens for the API.
    pub async fn delete_api(&self, identifier: &str) -> AdminResult<()> {
        self.settle(|| self.try_delete_api(identifier)).await
    }

    async fn try_delete_api(&self, identifier: &str) -> AdminResult<()> {
        self.may_on_api_with(Operation::DeleteApi, identifier, &[])?;
        let version = self.read_version().await?;
        let existing = self.get_api(identifier).await?;
        self.may_on_api_with(Operation::DeleteApi, identifier, &existing.scopes)?;
        self.precondition(&existing)?;
        let users: Vec<String> = self
            .store
            .list_clients()
            .await?
            .into_iter()
            .filter(|c| c.apis.iter().any(|a| a == identifier))
            .map(|c| c.client_id)
            .collect();
        if !users.is_empty() {
            return Err(AdminError::Conflict(format!(
                "API {identifier} is still used by clients {}",
                users.join(", ")
            )));
        }
        self.commit_as(
            version,
            &[Change::Delete(Table::Apis, identifier.to_owned())],
            None,
            Value::Null,
        )
        .await
    }
}
