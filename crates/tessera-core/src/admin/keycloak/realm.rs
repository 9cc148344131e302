//! The parts of a Keycloak realm export (`kc.sh export`, Keycloak's `RealmRepresentation`) that
//! the import reads; other fields are ignored. Every value is as Keycloak writes it (attributes
//! as strings, user attributes as lists of strings).

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Realm {
    pub realm: String,
    pub keycloak_version: Option<String>,
    /// Seconds.
    pub access_token_lifespan: Option<i64>,
    pub sso_session_max_lifespan: Option<i64>,
    pub clients: Vec<KcClient>,
    pub client_scopes: Vec<ClientScope>,
    pub default_default_client_scopes: Vec<String>,
    pub roles: Roles,
    pub groups: Vec<Group>,
    pub users: Vec<KcUser>,
    pub identity_providers: Vec<KcIdp>,
    pub identity_provider_mappers: Vec<serde_json::Value>,
    pub password_policy: Option<String>,
    pub otp_policy_type: Option<String>,
    pub brute_force_protected: bool,
    pub authentication_flows: Vec<serde_json::Value>,
    pub components: BTreeMap<String, serde_json::Value>,
    pub smtp_server: BTreeMap<String, serde_json::Value>,
    pub client_policies: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct KcClient {
    pub client_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub root_url: Option<String>,
    pub enabled: Option<bool>,
    pub client_authenticator_type: Option<String>,
    pub secret: Option<String>,
    pub redirect_uris: Vec<String>,
    pub web_origins: Vec<String>,
    pub bearer_only: bool,
    pub consent_required: bool,
    pub standard_flow_enabled: Option<bool>,
    pub implicit_flow_enabled: bool,
    pub direct_access_grants_enabled: bool,
    pub service_accounts_enabled: bool,
    pub public_client: bool,
    pub frontchannel_logout: bool,
    pub protocol: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub protocol_mappers: Vec<Mapper>,
    pub default_client_scopes: Vec<String>,
    pub optional_client_scopes: Vec<String>,
}

impl KcClient {
    /// An attribute, `None` when absent or blank.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        self.attr(key) == Some("true")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ClientScope {
    pub name: String,
    pub description: Option<String>,
    pub protocol: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub protocol_mappers: Vec<Mapper>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Mapper {
    pub name: String,
    pub protocol_mapper: String,
    pub config: BTreeMap<String, String>,
}

impl Mapper {
    pub fn config(&self, key: &str) -> Option<&str> {
        self.config
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Roles {
    pub realm: Vec<Role>,
    pub client: BTreeMap<String, Vec<Role>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Role {
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Group {
    pub name: String,
    pub path: Option<String>,
    pub sub_groups: Vec<Group>,
    pub realm_roles: Vec<String>,
    pub client_roles: BTreeMap<String, Vec<String>>,
    pub attributes: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct KcUser {
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub enabled: Option<bool>,
    pub attributes: BTreeMap<String, Vec<String>>,
    pub credentials: Vec<Credential>,
    pub required_actions: Vec<String>,
    pub federation_link: Option<String>,
    pub service_account_client_id: Option<String>,
    pub federated_identities: Vec<serde_json::Value>,
    pub realm_roles: Vec<String>,
    pub client_roles: BTreeMap<String, Vec<String>>,
    pub groups: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Credential {
    #[serde(rename = "type")]
    pub kind: String,
    pub secret_data: Option<String>,
    pub credential_data: Option<String>,
    /// A hand-written import file's password in clear (`{"type": "password", "value": …}`).
    pub value: Option<String>,
    pub temporary: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct KcIdp {
    pub alias: String,
    pub display_name: Option<String>,
    pub provider_id: String,
    pub enabled: Option<bool>,
    pub trust_email: bool,
    pub config: BTreeMap<String, String>,
}

impl KcIdp {
    pub fn config(&self, key: &str) -> Option<&str> {
        self.config
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}
