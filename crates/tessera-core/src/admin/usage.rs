//! The dashboard's figures: the usage counts ([`crate::usage`]) of the last hour or day, of every
//! application or of one.

use super::permission::{Operation, TargetKind};
use super::{invalid, Admin, AdminResult};
use crate::usage::{Summary, BUCKET_SECS};

/// How far back a summary looks, and in how many points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// 60 points of a minute.
    Hour,
    /// 48 points of half an hour.
    Day,
}

impl Window {
    pub fn parse(s: &str) -> AdminResult<Window> {
        match s {
            "hour" | "" => Ok(Window::Hour),
            "day" => Ok(Window::Day),
            other => Err(invalid("window", format!("{other:?} is not hour or day"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }

    fn span(self) -> (i64, i64) {
        match self {
            Window::Hour => (3_600, 60),
            Window::Day => (86_400, 48),
        }
    }
}

impl Admin<'_> {
    /// Sign-ins, tokens by grant, throttled requests and the busiest applications of the
    /// `window` up to now, of the application `client_id` or of all.
    pub async fn usage(&self, client_id: Option<&str>, window: Window) -> AdminResult<Summary> {
        self.authorize(Operation::ReadUsage, TargetKind::Ordinary)?;
        if let Some(id) = client_id {
            self.provider.get_client(id).await?;
        }
        let now = self.now().0;
        // Up to the end of the current minute, so that it is the last point.
        let until = now - now.rem_euclid(BUCKET_SECS) + BUCKET_SECS;
        let (span, points) = window.span();
        let counts = self.store.usage_since(until - span, client_id).await?;
        Ok(Summary::of(&counts, until, span, points))
    }
}
