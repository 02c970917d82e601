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

/// The MySQL / MariaDB database of `db.url`: `mysql://USER:PASS@HOST[:PORT]/DB`, optionally
/// with the driver's `?name=value` parameters. Checked for shape only (scheme, user, host,
/// database); the server is reached at start. `--check-config`, `Debug` and `Display` write
/// it with the password as [`MASK`] (`mysql://USER:(secret)@HOST/DB`).
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    url: String,
    /// Byte range of the password in `url` (empty when the URL has none).
    pass: std::ops::Range<usize>,
}

impl DbUrl {
    /// Parses `mysql://USER[:PASS]@HOST[:PORT]/DB[?PARAMS]`; a password may hold `@` and `:`
    /// (the last `@` before the path ends it) and percent-escapes, which the driver decodes.
    ///
    /// Errors: the reason, never quoting the password: another scheme, no `USER@`, no host, no
    /// database, blanks.
    pub fn parse(text: &str) -> Result<DbUrl, String> {
        const FORM: &str = "expected mysql://USER:PASS@HOST[:PORT]/DB";
        let rest = text
            .strip_prefix("mysql://")
            .ok_or_else(|| format!("not a mysql:// URL ({FORM})"))?;
        if text.contains([' ', '\t']) {
            return Err(format!("blanks in the URL ({FORM}; escape them as %20)"));
        }
        let path_at = rest
            .find('/')
            .ok_or_else(|| format!("no database ({FORM})"))?;
        let (authority, path) = rest.split_at(path_at);
        let (userinfo, host) = authority
            .rsplit_once('@')
            .ok_or_else(|| format!("no user ({FORM})"))?;
        let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        if user.is_empty() {
            return Err(format!("no user ({FORM})"));
        }
        if host.is_empty() || host.starts_with(':') {
            return Err(format!("no host ({FORM})"));
        }
        let db = path[1..].split('?').next().unwrap_or("");
        if db.is_empty() {
            return Err(format!("no database ({FORM})"));
        }
        let start = "mysql://".len() + user.len() + usize::from(userinfo.len() > user.len());
        Ok(DbUrl {
            url: text.to_owned(),
            pass: start..start + pass.len(),
        })
    }

    /// The whole URL, password included: for the driver only, never for a log.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The URL with the password replaced by [`MASK`] (as it is when there is none).
    pub fn masked(&self) -> String {
        if self.pass.is_empty() {
            return self.url.clone();
        }
        format!(
            "{}{MASK}{}",
            &self.url[..self.pass.start],
            &self.url[self.pass.end..]
        )
    }
}

impl std::fmt::Debug for DbUrl {
    /// The password is never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbUrl({})", self.masked())
    }
}

impl std::fmt::Display for DbUrl {
    /// The password is never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Field for Option<DbUrl> {
    type Spec = ();
    fn set(&mut self, text: &str, (): &()) -> Result<(), String> {
        *self = Some(DbUrl::parse(text)?);
        Ok(())
    }
    fn texts(&self) -> Vec<String> {
        self.iter().map(|u| u.url.clone()).collect()
    }
    fn masked(&self) -> Vec<String> {
        self.iter().map(DbUrl::masked).collect()
    }
    fn syntax((): &()) -> Syntax {
        Syntax::Other("mysql://USER:PASS@HOST[:PORT]/DB")
    }
}
