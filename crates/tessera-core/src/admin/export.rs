//! `tessera export`: the stored configuration as an apply file ([`Spec`]) that `tessera apply`
//! reports unchanged, read at one configuration version. Secrets stay behind, written as
//! [`SECRET_KEPT`]; Tessera's own clients, API and scopes are left out (they are made at start).

use serde::Serialize;

use super::apply::{Spec, SECRET_KEPT};
use super::permission::{Operation, TargetKind};
use super::SchemeSpec;
use super::{Admin, AdminError, AdminResult, ApiSpec, ClientSpec, IdpSpec, ScopeSpec, UserSpec};

/// How often an export reads again when the configuration changed while it read.
const READS: usize = 5;

/// An export: the apply file, and the configuration version it was read at.
#[derive(Debug, Clone)]
pub struct Export {
    pub version: i64,
    pub spec: Spec,
}

/// An apply file as Tessera writes one (`tessera export`, `tessera import`): [`Spec`], with the
/// identity providers' secrets, which an [`IdpSpec`] never writes on its own.
#[derive(Debug, Serialize)]
pub struct SpecFile<'a> {
    pub scopes: &'a [ScopeSpec],
    pub apis: &'a [ApiSpec],
    pub identity_providers: Vec<ExportedIdp<'a>>,
    pub schemes: &'a [SchemeSpec],
    pub clients: &'a [ClientSpec],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub users: &'a [UserSpec],
}

#[derive(Debug, Serialize)]
pub struct ExportedIdp<'a> {
    #[serde(flatten)]
    pub idp: &'a IdpSpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<&'a str>,
}

impl<'a> SpecFile<'a> {
    pub fn of(s: &'a Spec) -> SpecFile<'a> {
        SpecFile {
            scopes: &s.scopes,
            apis: &s.apis,
            identity_providers: s
                .identity_providers
                .iter()
                .map(|idp| ExportedIdp {
                    idp,
                    client_secret: idp.client_secret.as_deref(),
                })
                .collect(),
            schemes: &s.schemes,
            clients: &s.clients,
            users: &s.users,
        }
    }
}

impl Export {
    /// What `tessera export` writes.
    pub fn file(&self) -> SpecFile<'_> {
        SpecFile::of(&self.spec)
    }
}

impl Admin<'_> {
    /// Everything an apply file declares but users (people are not configuration), read at one
    /// configuration version: the version is read before and after, and a change in between
    /// reads again. Needs what listing each kind needs.
    pub async fn export(&self) -> AdminResult<Export> {
        for op in [
            Operation::ListScopes,
            Operation::ListApis,
            Operation::ListIdps,
            Operation::ListSchemes,
            Operation::ListApplications,
        ] {
            self.authorize(op, TargetKind::Ordinary)?;
        }
        for _ in 0..READS {
            let version = self.store.config_version().await?;
            let spec = self.read_spec().await?;
            if self.store.config_version().await? == version {
                return Ok(Export { version, spec });
            }
        }
        Err(AdminError::Conflict(
            "the configuration kept changing while it was read: export again".into(),
        ))
    }

    async fn read_spec(&self) -> AdminResult<Spec> {
        let kept = |has: bool| has.then(|| SECRET_KEPT.to_owned());
        let mut scopes: Vec<ScopeSpec> = self
            .store
            .list_scopes()
            .await?
            .iter()
            .filter(|s| !self.is_own_scope(&s.name))
            .map(ScopeSpec::from)
            .collect();
        scopes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut apis: Vec<ApiSpec> = self
            .store
            .list_apis()
            .await?
            .iter()
            .filter(|a| !self.is_own_api(&a.identifier))
            .map(ApiSpec::from)
            .collect();
        apis.sort_by(|a, b| a.identifier.cmp(&b.identifier));
        let mut identity_providers: Vec<IdpSpec> = self
            .store
            .list_idps()
            .await?
            .iter()
            .map(|i| IdpSpec {
                client_secret: kept(i.secret_ciphertext.is_some()),
                ..IdpSpec::from(i)
            })
            .collect();
        identity_providers.sort_by(|a, b| a.name.cmp(&b.name));
        let mut schemes: Vec<SchemeSpec> = self
            .store
            .list_schemes()
            .await?
            .iter()
            .map(SchemeSpec::from)
            .collect();
        schemes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut clients: Vec<ClientSpec> = self
            .store
            .list_clients()
            .await?
            .iter()
            .filter(|c| !self.is_own_client(&c.client_id))
            .map(|c| ClientSpec {
                client_secret: kept(c.secret_ciphertext.is_some()),
                ..ClientSpec::from(c)
            })
            .collect();
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Ok(Spec {
            scopes,
            apis,
            identity_providers,
            schemes,
            clients,
            users: Vec::new(),
        })
    }
}
