//! The device authorization grant (RFC 8628): a device without a browser asks for a device code
//! and a user code (§3.1-3.2); the user enters the code at `/device` on another device, signs in
//! as the application's authentication scheme asks and confirms on the consent page, which shows
//! the code to compare (§3.3, §5.4); meanwhile the device polls the token endpoint (§3.4-3.5).
//!
//! Three artifacts: the device code (consumed when its tokens are issued), the user code naming
//! it, and the user's decision (made once: approved with the grant, or denied).

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::authorize::{
    AcrRequest, AuthResponse, AuthorizeOutcome, AuthorizeRequest, DeviceTarget, ResponseMode,
    Settled, Target,
};
use crate::client_auth::{Answered, ClientRequest};
use crate::clock::Timestamp;
use crate::decoupled::{Decoupled, POLL_INTERVAL};
use crate::error::{Error, ErrorCode, Result};
use crate::grant::{parse_resources, Caller, TokenResponse};
use crate::model::{Artifact, ArtifactKey, ArtifactKind, GrantType};
use crate::params::{parse_scope, Params};
use crate::provider::Provider;
use crate::secret::{b64url, new_handle, random_bytes};
use crate::store::StoreError;

/// Seconds a device code and its user code stay good (RFC 8628 §3.2 `expires_in`).
pub const DEVICE_CODE_LIFETIME: i64 = 600;

/// RFC 8628 §6.1: user codes of base-20 consonants (no vowels, so no words; no look-alike
/// digits), 8 of them: 20^8, about 34.5 bits, typed as `XXXX-XXXX`.
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// RFC 8628 §3.2: the answer to a device authorization request.
#[derive(Clone, Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// Codes only in their place: never in a log.
impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// What a device code remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeviceRecord {
    scope: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    /// The user code, as shown (`XXXX-XXXX`).
    user_code: String,
}

/// What entering a user code at `/device` led to.
#[derive(Debug)]
pub enum DeviceEntry {
    /// The request goes on: sign-in, consent, or the result.
    Outcome(Box<AuthorizeOutcome>),
    /// The code was not taken; the form is shown again with this message.
    Retry {
        message: &'static str,
        /// Set when too many wrong codes came from the address (seconds to wait).
        throttled: Option<i64>,
    },
}

/// The message for any code that is not (or no longer) good: it does not say which.
pub const UNKNOWN_CODE: &str =
    "That code is not valid. Check the code your device shows, or start again on the device.";

/// RFC 8628 §6.1: a user code as typed: compatibility-normalised (full-width letters), upper
/// case, every character outside the alphabet (dashes, dots, spaces of any kind) ignored; `None`
/// unless 8 letters remain, and for anything absurdly long.
fn normalized(code: &str) -> Option<String> {
    use unicode_normalization::UnicodeNormalization;
    if code.chars().count() > 64 {
        return None;
    }
    let c: String = code
        .nfkc()
        .map(|c| c.to_ascii_uppercase())
        .filter(|c| c.is_ascii() && ALPHABET.contains(&(*c as u8)))
        .collect();
    (c.len() == 8).then_some(c)
}

fn new_user_code() -> String {
    // 256 is not a multiple of 20: take bytes below 240 only, so every letter is as likely.
    let mut code = String::with_capacity(9);
    while code.len() < 9 {
        for b in random_bytes::<16>() {
            if b < 240 && code.len() < 9 {
                if code.len() == 4 {
                    code.push('-');
                }
                code.push(char::from(ALPHABET[usize::from(b % 20)]));
            }
        }
    }
    code
}

fn user_code_key(normalized: &str) -> ArtifactKey {
    crate::decoupled::derived_key("user-code", normalized)
}

impl Provider {
    /// `POST /device_authorization` (RFC 8628 §3.1): the client authenticates as at the token
    /// endpoint (a public client by its `client_id`) and may use the grant.
    pub async fn device_authorization(&self, req: &ClientRequest) -> Answered<DeviceAuthorization> {
        let loaded = match self.authenticate_client(req).await {
            Ok(c) => c,
            Err(e) => return Answered::anonymous(e),
        };
        let me = loaded.client.client_id.clone();
        let answer = self.start_device(&loaded, &req.params).await;
        Answered::for_client(&me, answer)
    }

    async fn start_device(
        &self,
        loaded: &crate::provider::LoadedClient,
        p: &Params,
    ) -> Result<DeviceAuthorization> {
        let now = self.now();
        let client = &loaded.client;
        if !client.grant_types.contains(&GrantType::DeviceCode) {
            return Err(Error::unauthorized_client(
                "the client is not allowed to use the device authorization grant",
            ));
        }
        let scope = self.user_grant_scope(loaded, p.get("scope")?.map(parse_scope).transpose()?)?;
        let resources = parse_resources(p)?;
        if !resources.is_empty() {
            self.audience(client, resources.clone())?;
        }
        let expires_at = now.plus(DEVICE_CODE_LIFETIME);
        let (device_code, device_key) = new_handle();
        // A fresh user code; one in use by a pending request is drawn again.
        let mut user_code = new_user_code();
        for attempt in 0.. {
            let entry = Artifact {
                key: user_code_key(&normalized(&user_code).unwrap_or_default()),
                kind: ArtifactKind::UserCode,
                client_id: client.client_id.clone(),
                grant_id: None,
                user_id: None,
                expires_at,
                revoked_at: None,
                consumed_at: None,
                payload: json!({ "device": b64url(&device_key.0) }),
            };
            match self.store.insert_artifact(&entry).await {
                Ok(()) => break,
                Err(StoreError::Conflict(_)) if attempt < 4 => user_code = new_user_code(),
                Err(e) => return Err(e.into()),
            }
        }
        let record = DeviceRecord {
            scope,
            resources,
            user_code: user_code.clone(),
        };
        self.store
            .insert_artifact(&Artifact {
                key: device_key,
                kind: ArtifactKind::DeviceCode,
                client_id: client.client_id.clone(),
                grant_id: None,
                user_id: None,
                expires_at,
                revoked_at: None,
                consumed_at: None,
                payload: serde_json::to_value(&record).map_err(Error::server)?,
            })
            .await?;
        let verification_uri = self.settings.endpoint("/device");
        Ok(DeviceAuthorization {
            device_code,
            verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
            user_code,
            verification_uri,
            expires_in: DEVICE_CODE_LIFETIME,
            interval: POLL_INTERVAL,
        })
    }

    /// `POST /device` (RFC 8628 §3.3): the user's code, then the application's sign-in and the
    /// consent page. Wrong codes count against the address like wrong passwords (§5.1), and a
    /// code is good until its request is decided or expires.
    pub async fn device_entry(
        &self,
        user_code: &str,
        address: &str,
        cookie: Option<&str>,
    ) -> Result<DeviceEntry> {
        let now = self.now();
        let t = &self.settings.throttle;
        let throttle_key = format!("device-code:{}", crate::throttle::address_bucket(address));
        let seen = self.store.failures(&throttle_key, now, t.window).await?;
        if seen.count >= t.per_address {
            return Ok(DeviceEntry::Retry {
                message: crate::authorize::THROTTLED,
                throttled: Some((seen.until.0 - now.0).max(1)),
            });
        }
        let Some((params, device_key)) = self.pending_device(user_code, now).await? else {
            self.store
                .count_failure(&throttle_key, now, t.window)
                .await?;
            return Ok(DeviceEntry::Retry {
                message: UNKNOWN_CODE,
                throttled: None,
            });
        };
        tracing::debug!(device = %device_key, "device user code entered");
        let req = match self.authorize_request(&params).await {
            Ok(r) => r,
            Err(
                crate::authorize::Rejection::Page(e) | crate::authorize::Rejection::Redirect(_, e),
            ) => {
                return Ok(DeviceEntry::Outcome(Box::new(AuthorizeOutcome::ErrorPage(
                    e,
                ))))
            }
        };
        let session = self.session(cookie, now).await?;
        Ok(DeviceEntry::Outcome(Box::new(
            self.proceed(&req, &params, session, Settled::default(), now)
                .await,
        )))
    }

    /// The device request a user code names, while it is pending: its parameters for the
    /// authorization pipeline, and its device key (base64url).
    async fn pending_device(
        &self,
        user_code: &str,
        now: Timestamp,
    ) -> Result<Option<(Params, String)>> {
        let Some(code) = normalized(user_code) else {
            return Ok(None);
        };
        let Some(entry) = self
            .store
            .get_artifact(&user_code_key(&code))
            .await?
            .filter(|a| a.kind == ArtifactKind::UserCode && a.expires_at > now)
        else {
            return Ok(None);
        };
        let Some(device_b64) = entry.payload["device"].as_str() else {
            return Ok(None);
        };
        let Some(device) = self
            .decoupled_request(Decoupled::Device, device_b64, now)
            .await?
        else {
            return Ok(None);
        };
        if self.decided(Decoupled::Device, device_b64).await? {
            return Ok(None);
        }
        let record: DeviceRecord = device.payload_as().map_err(Error::server)?;
        let mut pairs = vec![
            ("client_id".to_owned(), device.client_id.clone()),
            ("scope".to_owned(), record.scope.join(" ")),
            ("device".to_owned(), device_b64.to_owned()),
            ("user_code".to_owned(), record.user_code),
        ];
        for r in record.resources {
            pairs.push(("resource".to_owned(), r));
        }
        Ok(Some((
            Params::from_pairs(pairs).into_device(),
            device_b64.to_owned(),
        )))
    }

    /// The authorization request of a device code a user entered: for its client, its scope,
    /// decided at `/device`; the application's sign-in and consent apply as at `/authorize`.
    pub(crate) async fn device_request(&self, p: &Params) -> Result<AuthorizeRequest> {
        let now = self.now();
        let device_key = p.require("device")?.to_owned();
        let gone = || Error::invalid_request(UNKNOWN_CODE);
        let device = self
            .decoupled_request(Decoupled::Device, &device_key, now)
            .await?
            .ok_or_else(gone)?;
        let client_id = p.require("client_id")?;
        let client = self
            .client(client_id)
            .await?
            .filter(|c| c.client.client_id == device.client_id)
            .ok_or_else(gone)?;
        if !client.client.enabled {
            return Err(Error::unauthorized_client("the client is disabled"));
        }
        if !client.client.grant_types.contains(&GrantType::DeviceCode) {
            return Err(Error::unauthorized_client(
                "the client is not allowed to use the device authorization grant",
            ));
        }
        let record: DeviceRecord = serde_json::from_value(device.payload).map_err(Error::server)?;
        Ok(AuthorizeRequest {
            client,
            target: Target {
                redirect_uri: self.settings.endpoint("/device"),
                mode: ResponseMode::Query,
                state: None,
                jarm: None,
                device: Some(DeviceTarget {
                    device_key,
                    user_code: record.user_code,
                }),
            },
            redirect_uri_given: false,
            response_type: "device",
            scope: record.scope,
            nonce: None,
            prompt: Vec::new(),
            max_age: None,
            login_hint: None,
            hint_sub: None,
            acr: AcrRequest::default(),
            ui_locales: Vec::new(),
            claims: None,
            pkce: None,
            resources: record.resources,
            dpop_jkt: None,
        })
    }

    /// The user approved: the device's next poll gets the grant's tokens.
    pub(crate) async fn device_approved(
        &self,
        d: &DeviceTarget,
        grant_id: &str,
        now: Timestamp,
    ) -> Result<AuthResponse> {
        if !self
            .record_decision(Decoupled::Device, &d.device_key, Some(grant_id), now)
            .await?
        {
            // Decided meanwhile (or expired): the grant made for it is withdrawn.
            self.revoke_grant(grant_id, now).await?;
            return Err(Error::invalid_request(UNKNOWN_CODE));
        }
        tracing::info!(grant_id, "device authorization approved");
        Ok(self.device_result("approved"))
    }

    /// The user (or the application's policy) refused: the device's next poll gets
    /// `access_denied`. Other errors are shown without deciding.
    pub(crate) async fn device_refused(&self, d: &DeviceTarget, e: &Error) -> AuthorizeOutcome {
        if e.code != ErrorCode::AccessDenied {
            return AuthorizeOutcome::ErrorPage(Error::new(e.code, e.description.clone()));
        }
        match self
            .record_decision(Decoupled::Device, &d.device_key, None, self.now())
            .await
        {
            Ok(true) => AuthorizeOutcome::Respond(self.device_result("denied")),
            // Decided meanwhile (perhaps approved) or expired: not "denied".
            Ok(false) => AuthorizeOutcome::ErrorPage(Error::invalid_request(UNKNOWN_CODE)),
            Err(e) => AuthorizeOutcome::ErrorPage(e),
        }
    }

    fn device_result(&self, result: &str) -> AuthResponse {
        AuthResponse {
            redirect_uri: self.settings.endpoint("/device"),
            mode: ResponseMode::Query,
            params: vec![("result".into(), result.into())],
        }
    }

    /// RFC 8628 §3.4-3.5: the token request of a polling device.
    pub(crate) async fn device_code_grant(
        &self,
        loaded: &Caller<'_>,
        device_code: &str,
        now: Timestamp,
    ) -> Result<TokenResponse> {
        self.poll_decided(Decoupled::Device, loaded, device_code, now)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_typeable_and_normalised() {
        for _ in 0..200 {
            let c = new_user_code();
            assert_eq!(c.len(), 9, "{c}");
            assert_eq!(&c[4..5], "-");
            assert_eq!(normalized(&c).as_deref(), Some(c.replace('-', "").as_str()));
        }
        assert_eq!(normalized("bcdf ghjk").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalized("bcdf-ghj"), None);
        assert_eq!(
            normalized("ABCD-EFGH"),
            None,
            "vowels are not in the alphabet"
        );
        assert_eq!(normalized("BCDF-GHJ1"), None);
        for typed in [
            "bcdf.ghjk",
            "BCDF_GHJK",
            "bcdf\tghjk",
            "BCDF\u{2013}GHJK",
            "BCDF\u{a0}GHJK",
            "ＢＣＤＦ－ＧＨＪＫ",
        ] {
            assert_eq!(normalized(typed).as_deref(), Some("BCDFGHJK"), "{typed:?}");
        }
        assert_eq!(normalized(&"B".repeat(100)), None);
    }
}
