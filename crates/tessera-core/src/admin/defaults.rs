//! Default lifetimes of new applications as administrators change them at runtime: stored with
//! the configuration, so every node uses them within a second, over the configuration file's.

use serde::{Deserialize, Deserializer};
use serde_json::json;

use super::permission::{Operation, TargetKind};
use super::{invalid, Admin, AdminResult};
use crate::model::{
    LifetimeOverrides, StoredSettings, ACCESS_TOKEN_TTL_RANGE, CODE_TTL_RANGE, ID_TOKEN_TTL_RANGE,
    REFRESH_TOKEN_TTL_RANGE,
};
use crate::settings::check_range;
use crate::store::{Change, Record};

/// A change of the default lifetimes (JSON merge patch, RFC 7396): a number sets one, `null`
/// returns it to the configuration file's value, an absent field stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LifetimePatch {
    #[serde(deserialize_with = "present")]
    #[schemars(with = "Option<i64>")]
    pub authorization_code: Option<Option<i64>>,
    #[serde(deserialize_with = "present")]
    #[schemars(with = "Option<i64>")]
    pub access_token: Option<Option<i64>>,
    #[serde(deserialize_with = "present")]
    #[schemars(with = "Option<i64>")]
    pub refresh_token: Option<Option<i64>>,
    #[serde(deserialize_with = "present")]
    #[schemars(with = "Option<i64>")]
    pub id_token: Option<Option<i64>>,
}

/// A field that is present: `null` is `Some(None)`; an absent one stays `None` (the default).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

impl LifetimePatch {
    /// The overrides after this patch, each checked against its range; and the fields it changed.
    fn onto(
        &self,
        mut o: LifetimeOverrides,
    ) -> AdminResult<(LifetimeOverrides, Vec<&'static str>)> {
        let mut changed = Vec::new();
        for (name, patch, slot, range) in [
            (
                "authorization_code",
                self.authorization_code,
                &mut o.authorization_code,
                CODE_TTL_RANGE,
            ),
            (
                "access_token",
                self.access_token,
                &mut o.access_token,
                ACCESS_TOKEN_TTL_RANGE,
            ),
            (
                "refresh_token",
                self.refresh_token,
                &mut o.refresh_token,
                REFRESH_TOKEN_TTL_RANGE,
            ),
            (
                "id_token",
                self.id_token,
                &mut o.id_token,
                ID_TOKEN_TTL_RANGE,
            ),
        ] {
            let Some(value) = patch else { continue };
            if let Some(v) = value {
                let field = format!("lifetimes.{name}");
                check_range(&field, v, range).map_err(|m| invalid(&field, m))?;
            }
            if *slot != value {
                *slot = value;
                changed.push(name);
            }
        }
        Ok((o, changed))
    }
}

impl Admin<'_> {
    /// The default lifetimes administrators set, as stored now (this node's cache may be up to a
    /// moment behind another node's change).
    pub async fn stored_lifetimes(&self) -> AdminResult<LifetimeOverrides> {
        self.authorize(Operation::ReadSettings, TargetKind::Ordinary)?;
        Ok(self
            .store
            .get_settings()
            .await?
            .unwrap_or_default()
            .lifetimes)
    }

    /// Changes the default lifetimes of applications created from now on (existing applications
    /// keep theirs). With `If-Match`, only while the overrides have that tag.
    pub async fn change_default_lifetimes(
        &self,
        patch: &LifetimePatch,
    ) -> AdminResult<LifetimeOverrides> {
        self.authorize(Operation::ChangeSettings, TargetKind::Ordinary)?;
        self.settle(|| async {
            let version = self.read_version().await?;
            let stored = self.store.get_settings().await?;
            let current = stored.clone().unwrap_or_default();
            self.precondition(&current.lifetimes)?;
            let (lifetimes, changed) = patch.onto(current.lifetimes.clone())?;
            if changed.is_empty() {
                return Ok(lifetimes);
            }
            let next = Record::Settings(StoredSettings {
                lifetimes: lifetimes.clone(),
                updated_at: self.now(),
            });
            let change = match stored {
                Some(_) => Change::Update(next),
                None => Change::Create(next),
            };
            let detail = json!({ "fields": changed, "lifetimes": lifetimes });
            self.commit_as(version, &[change], None, detail).await?;
            Ok(lifetimes)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_sets_resets_and_checks_ranges() {
        let patch: LifetimePatch =
            serde_json::from_str(r#"{"access_token": 600, "id_token": null}"#).unwrap();
        let before = LifetimeOverrides {
            id_token: Some(120),
            refresh_token: Some(172_800),
            ..LifetimeOverrides::default()
        };
        let (after, changed) = patch.onto(before).unwrap();
        assert_eq!(after.access_token, Some(600));
        assert_eq!(after.id_token, None, "null returns to the file's value");
        assert_eq!(after.refresh_token, Some(172_800), "absent stays");
        assert_eq!(changed, ["access_token", "id_token"]);

        let bad: LifetimePatch = serde_json::from_str(r#"{"access_token": 5}"#).unwrap();
        let e = bad.onto(LifetimeOverrides::default()).unwrap_err();
        assert!(e.to_string().starts_with("lifetimes.access_token:"), "{e}");
        assert!(serde_json::from_str::<LifetimePatch>(r#"{"colour": 1}"#).is_err());
    }
}
