//! The result of running a plugin: a code and human-readable reasons, as upstream's
//! `framework.Status`. Success carries no reasons and allocates nothing.

use std::borrow::Cow;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    Success,
    /// An internal error: the attempt is retried after back-off.
    Error,
    /// The pod does not fit, but preemption might help.
    Unschedulable,
    /// The pod does not fit and preemption cannot change that.
    UnschedulableAndUnresolvable,
    /// A Permit plugin wants the pod to wait.
    Wait,
    /// The plugin has nothing to do for this pod; later stages skip it.
    Skip,
    /// Waiting for something outside the scheduler; retried as soon as it changes.
    Pending,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    code: Code,
    reasons: Vec<Cow<'static, str>>,
    plugin: &'static str,
}

impl Default for Status {
    fn default() -> Self {
        Status::success()
    }
}

impl Status {
    pub fn success() -> Status {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    pub fn new(code: Code, reason: impl Into<Cow<'static, str>>) -> Status {
        Status {
            code,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }

    pub fn with_reasons(code: Code, reasons: Vec<Cow<'static, str>>) -> Status {
        Status {
            code,
            reasons,
            plugin: "",
        }
    }

    pub fn code_only(code: Code) -> Status {
        Status {
            code,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    pub fn unschedulable(reason: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Unschedulable, reason)
    }

    pub fn unresolvable(reason: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::UnschedulableAndUnresolvable, reason)
    }

    pub fn error(reason: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Error, reason)
    }

    pub fn skip() -> Status {
        Status::code_only(Code::Skip)
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    pub fn is_skip(&self) -> bool {
        self.code == Code::Skip
    }

    pub fn is_wait(&self) -> bool {
        self.code == Code::Wait
    }

    /// Unschedulable, UnschedulableAndUnresolvable or Pending: the pod was turned down (as
    /// opposed to an internal error).
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable | Code::Pending
        )
    }

    pub fn reasons(&self) -> &[Cow<'static, str>] {
        &self.reasons
    }

    /// The reasons joined by ", " (upstream `Status.Message()`).
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }

    pub fn plugin(&self) -> &'static str {
        self.plugin
    }

    pub fn with_plugin(mut self, plugin: &'static str) -> Status {
        self.plugin = plugin;
        self
    }

    pub fn set_plugin(&mut self, plugin: &'static str) {
        self.plugin = plugin;
    }

    /// Turns any non-success into an Error status carrying the same message (upstream
    /// `AsStatus(s.AsError())`), for codes that are invalid at an extension point.
    pub fn into_error(self, context: &str) -> Status {
        let msg = self.message();
        let msg = if context.is_empty() {
            msg
        } else {
            format!("{context}: {msg}")
        };
        Status::error(msg).with_plugin(self.plugin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_joins_reasons_and_codes_classify() {
        let s = Status::with_reasons(
            Code::Unschedulable,
            vec!["Insufficient cpu".into(), "Too many pods".into()],
        );
        assert_eq!(s.message(), "Insufficient cpu, Too many pods");
        assert!(s.is_rejected() && !s.is_success());
        assert!(Status::unresolvable("x").is_rejected());
        assert!(!Status::error("x").is_rejected());
        assert!(Status::success().reasons().is_empty());
        let e = Status::unschedulable("boom")
            .with_plugin("P")
            .into_error("running P");
        assert_eq!(
            (e.code(), e.message().as_str(), e.plugin()),
            (Code::Error, "running P: boom", "P")
        );
    }
}
