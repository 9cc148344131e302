//! Groups: the names users carry (there is no group record), listed with their members, joined
//! and left. A group name is taken only in its normal form ([`crate::names::group`]); joining or
//! leaving `tessera-admins`, or changing an administrator's groups, needs `administrator`.

use serde::Serialize;
use serde_json::json;

use super::permission::{Operation, TargetKind};
use super::targets::group_kind;
use super::{invalid, Admin, AdminResult, UserPatch};
use crate::names;

/// A group's member.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GroupMember {
    pub id: String,
    pub username: String,
}

/// A group and its members, by username.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GroupView {
    pub name: String,
    pub members: Vec<GroupMember>,
}

/// A group name from a request: refused, naming `group`, unless in its normal form.
fn group_name(raw: &str) -> AdminResult<String> {
    names::group(raw).map_err(|m| invalid("group", m))
}

impl Admin<'_> {
    /// Every group with its members, by name.
    pub async fn groups(&self) -> AdminResult<Vec<GroupView>> {
        self.authorize(Operation::ListGroups, TargetKind::Ordinary)?;
        let mut groups: std::collections::BTreeMap<String, Vec<GroupMember>> = Default::default();
        for u in self.store.list_users().await? {
            for g in &u.groups {
                groups.entry(g.clone()).or_default().push(GroupMember {
                    id: u.id.clone(),
                    username: u.username.clone(),
                });
            }
        }
        Ok(groups
            .into_iter()
            .map(|(name, mut members)| {
                members.sort_by(|a, b| a.username.cmp(&b.username));
                GroupView { name, members }
            })
            .collect())
    }

    /// One group; a group nobody belongs to does not exist.
    pub async fn group(&self, name: &str) -> AdminResult<GroupView> {
        self.authorize(Operation::ReadGroup, TargetKind::Ordinary)?;
        let name = group_name(name)?;
        self.groups()
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .ok_or_else(|| super::AdminError::NotFound(format!("group {name}")))
    }

    /// Adds the user to the group (`add`) or takes them out of it.
    pub async fn set_membership(&self, group: &str, user: &str, add: bool) -> AdminResult<()> {
        let op = if add {
            Operation::AddMember
        } else {
            Operation::RemoveMember
        };
        self.authorize(op, TargetKind::Ordinary)?;
        let group = group_name(group)?;
        self.authorize(op, group_kind(&group))?;
        let (u, _) = self.reach(op, user).await?;
        let mut groups = u.groups.clone();
        groups.retain(|g| *g != group);
        if add {
            groups.push(group.clone());
        }
        let patch = UserPatch {
            groups: Some(groups),
            ..UserPatch::default()
        };
        self.update_user(&u.id, &patch).await?;
        let action = if add {
            "group.member_added"
        } else {
            "group.member_removed"
        };
        self.audit(
            action,
            &format!("user:{}", u.id),
            None,
            json!({ "group": group }),
        )
        .await;
        Ok(())
    }
}
