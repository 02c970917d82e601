//! Value types of the private-tracking directives: `tracker.mode` and `api.token`.

use super::table::{Field, MASK, Syntax};

/// The tracker's mode (`tracker.mode`; torrust's four modes, same names). An
/// `access.whitelist` file serves only listed info_hashes whatever the mode says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TrackerMode {
    /// Every info_hash, no key (opentracker's behaviour).
    #[default]
    Public,
    /// Only whitelisted info_hashes.
    Listed,
    /// Every announce and scrape needs a valid key.
    Private,
    /// Both: a valid key and a whitelisted info_hash.
    PrivateListed,
}

impl TrackerMode {
    /// Every mode, in the order of the config's documentation.
    pub const ALL: [TrackerMode; 4] = [
        TrackerMode::Public,
        TrackerMode::Listed,
        TrackerMode::Private,
        TrackerMode::PrivateListed,
    ];

    /// The config name: `public`, `listed`, `private`, `private_listed`.
    pub fn name(self) -> &'static str {
        match self {
            TrackerMode::Public => "public",
            TrackerMode::Listed => "listed",
            TrackerMode::Private => "private",
            TrackerMode::PrivateListed => "private_listed",
        }
    }

    /// The mode called `name` (exact, lower case), if any.
    pub fn from_name(name: &str) -> Option<TrackerMode> {
        TrackerMode::ALL.into_iter().find(|m| m.name() == name)
    }

    /// True for `listed` and `private_listed`.
    pub fn listed(self) -> bool {
        matches!(self, TrackerMode::Listed | TrackerMode::PrivateListed)
    }

    /// True for `private` and `private_listed`.
    pub fn private(self) -> bool {
        matches!(self, TrackerMode::Private | TrackerMode::PrivateListed)
    }
}

impl Field for TrackerMode {
    type Spec = ();
    fn set(&mut self, text: &str, (): &()) -> Result<(), String> {
        *self = TrackerMode::from_name(text).ok_or_else(|| {
            format!("invalid mode \"{text}\": expected public, listed, private or private_listed")
        })?;
        Ok(())
    }
    fn texts(&self) -> Vec<String> {
        vec![self.name().to_owned()]
    }
    fn syntax((): &()) -> Syntax {
        Syntax::Choice(&["public", "listed", "private", "private_listed"])
    }
}

/// One API token (`api.token LABEL SECRET`): a request to the REST API presents the secret
/// (`?token=SECRET` or `Authorization: Bearer SECRET`). The label names it in logs and in
/// `--check-config`, which never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// A name for the token (one word).
    pub label: String,
    /// The secret (the rest of the line, blanks trimmed).
    pub secret: String,
}

impl std::fmt::Debug for ApiToken {
    /// The secret is never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiToken({}, {MASK})", self.label)
    }
}

impl Field for Vec<ApiToken> {
    type Spec = ();
    const REPEATABLE: bool = true;
    fn set(&mut self, text: &str, (): &()) -> Result<(), String> {
        let (label, secret) = text
            .split_once([' ', '\t'])
            .map(|(label, secret)| (label, secret.trim_ascii()))
            .filter(|(_, secret)| !secret.is_empty())
            .ok_or_else(|| "expected LABEL SECRET".to_owned())?;
        if secret.len() < 16 {
            return Err(format!(
                "the secret of token \"{label}\" is shorter than 16 characters"
            ));
        }
        if self.iter().any(|t| t.label == label) {
            return Err(format!("token \"{label}\" is already configured"));
        }
        self.push(ApiToken {
            label: label.to_owned(),
            secret: secret.to_owned(),
        });
        Ok(())
    }
    fn texts(&self) -> Vec<String> {
        self.iter()
            .map(|t| format!("{} {}", t.label, t.secret))
            .collect()
    }
    fn masked(&self) -> Vec<String> {
        self.iter().map(|t| format!("{} {MASK}", t.label)).collect()
    }
    fn syntax((): &()) -> Syntax {
        Syntax::Other("LABEL SECRET")
    }
}
