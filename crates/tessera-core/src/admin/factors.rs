//! A user's second factors as administrators see them: listed (never a secret or a key),
//! removed one by one, and an enrolment required at the next sign-in. Removing an
//! administrator's factor, or requiring one to enrol, is a change to a protected user.

use serde::Serialize;
use serde_json::json;

use super::permission::Operation;
use super::{Admin, AdminError, AdminResult};
use crate::factor::FactorView;

/// What a user holds besides a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FactorsView {
    pub factors: Vec<FactorView>,
    /// The user will be asked to set up a second factor at their next sign-in.
    pub enrolment_required: bool,
    /// The user holds an authenticator app or a passkey (enrolment cannot be required then).
    pub has_second_factor: bool,
}

impl Admin<'_> {
    pub async fn user_factors(&self, id_or_username: &str) -> AdminResult<FactorsView> {
        let (u, _) = self.reach(Operation::ListFactors, id_or_username).await?;
        Ok(FactorsView {
            factors: u.factors.views(),
            enrolment_required: u.factors.enrolment_required,
            has_second_factor: u.factors.has_second_factor(),
        })
    }

    /// Removes the factor `factor_id` names (`totp`, `recovery_codes`, `passkey:{id}`), and signs
    /// the user out everywhere: a session that proved the factor (a lost phone, a thief's
    /// passkey) must not outlive it.
    pub async fn remove_factor(&self, id_or_username: &str, factor_id: &str) -> AdminResult<()> {
        let u = self
            .settle(|| async move {
                let (mut u, _) = self.reach(Operation::RemoveFactor, id_or_username).await?;
                self.precondition(&u)?;
                if !u.factors.remove(factor_id) {
                    return Err(AdminError::NotFound(format!(
                        "factor {factor_id} of user {id_or_username}"
                    )));
                }
                u.sign_out_epoch += 1;
                u.updated_at = self.now();
                self.store.update_user(&u).await?;
                Ok(u)
            })
            .await?;
        self.sign_out_everywhere(&u).await?;
        self.audit(
            "factor.removed",
            &format!("user:{}", u.id),
            None,
            json!({"factor": factor_id}),
        )
        .await;
        Ok(())
    }

    /// Asks the user to set up a second factor at their next sign-in (or stops asking).
    pub async fn require_enrolment(&self, id_or_username: &str, required: bool) -> AdminResult<()> {
        let u = self
            .settle(|| async move {
                let (mut u, _) = self
                    .reach(Operation::RequireEnrolment, id_or_username)
                    .await?;
                self.precondition(&u)?;
                if required && u.factors.has_second_factor() {
                    return Err(AdminError::Conflict(format!(
                        "user {} already holds a second factor; remove it first to have a new one set up (with the password alone) at the next sign-in",
                        u.username
                    )));
                }
                u.factors.enrolment_required = required;
                u.updated_at = self.now();
                self.store.update_user(&u).await?;
                Ok(u)
            })
            .await?;
        let action = if required {
            "user.enrolment_required"
        } else {
            "user.enrolment_waived"
        };
        self.audit(action, &format!("user:{}", u.id), None, json!({}))
            .await;
        Ok(())
    }
}
