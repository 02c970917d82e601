//! The value type of `access.proxy_header`: which request header a trusted proxy names the
//! client in.

use super::table::{Field, Syntax};

/// The header a trusted proxy (`access.proxy`) names the client in (`access.proxy_header`).
/// Only this header is read; the other is ignored, so a client cannot slip its own address past
/// a proxy that sets only one of them (nginx's `proxy_set_header X-Real-IP $remote_addr`
/// passes a client's `X-Forwarded-For` through untouched).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProxyHeader {
    /// `X-Forwarded-For`: a comma-separated list, each proxy appending the address it saw
    /// (nginx's `$proxy_add_x_forwarded_for`, HAProxy's `option forwardfor`). The default.
    #[default]
    XForwardedFor,
    /// `X-Real-IP`: one address, set (not appended) by the proxy (nginx's `$remote_addr`).
    XRealIp,
}

impl ProxyHeader {
    /// The config name, which is the header's name: `X-Forwarded-For` or `X-Real-IP`.
    pub fn name(self) -> &'static str {
        match self {
            ProxyHeader::XForwardedFor => "X-Forwarded-For",
            ProxyHeader::XRealIp => "X-Real-IP",
        }
    }
}

impl Field for ProxyHeader {
    type Spec = ();
    fn set(&mut self, text: &str, (): &()) -> Result<(), String> {
        *self = [ProxyHeader::XForwardedFor, ProxyHeader::XRealIp]
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                format!("invalid header \"{text}\": expected X-Forwarded-For or X-Real-IP")
            })?;
        Ok(())
    }
    fn texts(&self) -> Vec<String> {
        vec![self.name().to_owned()]
    }
    fn syntax((): &()) -> Syntax {
        Syntax::Choice(&["X-Forwarded-For", "X-Real-IP"])
    }
}
