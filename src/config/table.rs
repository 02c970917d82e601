//! The directive table's machinery: one declaration per directive.
//!
//! The `directives!` macro reads the entries written in `config.rs` and generates, from each
//! entry alone: the struct field (with its doc comment, directive name, unit, bounds and
//! default), the struct's `Default`, the table [`Directive`] that the parser ([`super::apply`])
//! and `--check-config` ([`super::Config::to_config_text`]) walk, and the name in
//! [`super::DIRECTIVES`]. Adding a directive is one entry plus its use.
//!
//! How a field's text becomes a value and back is the [`Field`] trait of the field's type:
//! numbers with bounds, `on|off`, paths, free text, addresses, networks; repeatable directives
//! are `Vec` fields. A new kind of value (an enumeration, `N|auto`, a value of several words
//! such as `LABEL SECRET`) is a type with a `Field` impl; the tests show each of these. What
//! does not fit a field (checks against other directives, warnings, directives without a field
//! of their own) is a hook function named in the entry, in `special.rs`.
//!
//! Everything about a directive is enumerable at run time through [`super::DIRECTIVE_TABLE`]:
//! its name, value syntax, unit, whether it repeats or is secret, and its default (its values in
//! [`super::Config::default`]), so another source of settings (environment variables,
//! `OPENTRACKER_RS_` + the name with `.` as `__`) can be derived from the table and applied
//! through the same parser.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use ipnet::IpNet;

use super::{Config, special, value};

/// What a directive's value looks like: enough to document it and to read it from another
/// source than a config line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// A decimal number in `min..=max` (no sign, no separators).
    Number {
        /// Smallest value accepted.
        min: u64,
        /// Largest value accepted.
        max: u64,
    },
    /// `on|off` (also `yes|no`, `true|false`, `1|0`, any case).
    Switch,
    /// A file or directory path: the rest of the line, blanks inside included.
    Path,
    /// Free text: the rest of the line.
    Text,
    /// `IP[:PORT]` (IPv6 in brackets when a port follows); `default_port` when none is given.
    Address {
        /// The port used when the value names none.
        default_port: u16,
    },
    /// `IP[/PREFIX]`: a single address (/32, /128) or a CIDR network.
    Network,
    /// One word out of a fixed list (`public|listed|private|private_listed`).
    Choice(&'static [&'static str]),
    /// Anything else, in words: `N|auto`, `LABEL SECRET`, `ADDRESS CERT KEY`.
    Other(&'static str),
}

/// What applying one directive gave: `Ok(Some(text))` is a warning for the caller to record,
/// `Err(text)` the reason the value was refused (the caller adds file, line and directive).
pub(crate) type Applied = Result<Option<String>, String>;

/// Stores a directive's text in its field with the field's [`Field::set`]; what a hook receives
/// to do the standard part of its work.
pub(crate) type Setter<C> = fn(&mut C, &str) -> Result<(), String>;

/// Text `--check-config` prints instead of a secret value.
pub const MASK: &str = "(secret)";

/// One directive: its name, what it does, and how to set and print it. Built by
/// `directives!` only; read through [`super::DIRECTIVE_TABLE`].
///
/// `C` is the configuration the directive writes to ([`Config`]).
pub struct Directive<C = Config> {
    /// The name as written in the config file (`tracker.announce_interval`).
    pub name: &'static str,
    /// The unit of the value (`seconds`, `bytes`), empty when it has none.
    pub unit: &'static str,
    /// Each occurrence adds a value (`access.stats`), instead of replacing the previous one.
    pub repeatable: bool,
    /// The value is not printed by `--check-config` ([`MASK`] instead).
    pub secret: bool,
    /// The comment `--check-config` writes after `# NAME` when the directive has no value:
    /// `(not set)`, or why it never has one.
    pub note: &'static str,
    pub(crate) doc: &'static str,
    pub(crate) syntax: fn() -> Syntax,
    pub(crate) apply: fn(&mut C, &str) -> Applied,
    pub(crate) print: fn(&C, bool) -> Vec<String>,
}

impl<C> Directive<C> {
    /// What the directive does: the entry's doc comment, lines joined.
    pub fn doc(&self) -> &'static str {
        self.doc.trim()
    }

    /// What its value looks like.
    pub fn syntax(&self) -> Syntax {
        (self.syntax)()
    }

    /// Its values in `cfg` as config-file text, one per line it would take (none when unset);
    /// with `mask_secrets`, a secret directive's values (or their secret parts) read [`MASK`].
    /// The default is `values(&Config::default(), ..)`.
    pub fn values(&self, cfg: &C, mask_secrets: bool) -> Vec<String> {
        (self.print)(cfg, mask_secrets && self.secret)
    }

    /// Applies one value (already trimmed, non-empty, without control characters) to `cfg`.
    pub(crate) fn apply(&self, cfg: &mut C, text: &str) -> Applied {
        (self.apply)(cfg, text)
    }
}

impl<C> std::fmt::Debug for Directive<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directive")
            .field("name", &self.name)
            .field("syntax", &self.syntax())
            .field("unit", &self.unit)
            .field("repeatable", &self.repeatable)
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

/// A type a directive's value can be stored in: how text becomes a value, and back.
///
/// `set` is called once per occurrence of the directive, in order: a scalar is replaced, a
/// `Vec` appended to (then [`Field::REPEATABLE`] is true). Errors are the reason only
/// (`value 0 is out of range 1..=256`); the caller names file, line and directive.
pub(crate) trait Field {
    /// Parameters of the syntax written in the entry: bounds of a number (`1..=256`), the
    /// default port of an address; `()` when there are none.
    type Spec;
    /// Each occurrence adds a value.
    const REPEATABLE: bool = false;
    /// Parses `text` (trimmed, non-empty) and stores it.
    fn set(&mut self, text: &str, spec: &Self::Spec) -> Result<(), String>;
    /// The value as config-file text, one string per line; empty when not set.
    fn texts(&self) -> Vec<String>;
    /// [`Field::texts`] with the secret removed; by default each value reads [`MASK`]. A value
    /// of several words with one secret (`LABEL SECRET`) masks only that word.
    fn masked(&self) -> Vec<String> {
        self.texts().iter().map(|_| MASK.to_owned()).collect()
    }
    /// The syntax, for documentation.
    fn syntax(spec: &Self::Spec) -> Syntax;
}

/// Bounds of a number as `Syntax::Number`.
fn number_syntax<T: Copy + TryInto<u64>>(spec: &RangeInclusive<T>) -> Syntax {
    let wide = |n: T| n.try_into().unwrap_or(u64::MAX);
    Syntax::Number {
        min: wide(*spec.start()),
        max: wide(*spec.end()),
    }
}

impl Field for u32 {
    type Spec = RangeInclusive<u32>;
    fn set(&mut self, text: &str, spec: &Self::Spec) -> Result<(), String> {
        *self = value::number_u32(text, *spec.start(), *spec.end())?;
        Ok(())
    }
    fn texts(&self) -> Vec<String> {
        vec![self.to_string()]
    }
    fn syntax(spec: &Self::Spec) -> Syntax {
        number_syntax(spec)
    }
}

impl Field for usize {
    type Spec = RangeInclusive<usize>;
    fn set(&mut self, text: &str, spec: &Self::Spec) -> Result<(), String> {
        *self = value::number_usize(text, *spec.start(), *spec.end())?;
        Ok(())
    }
    fn texts(&self) -> Vec<String> {
        vec![self.to_string()]
    }
    fn syntax(spec: &Self::Spec) -> Syntax {
        number_syntax(spec)
    }
}

impl Field for u64 {
    type Spec = RangeInclusive<u64>;
    fn set(&mut self, text: &str, spec: &Self::Spec) -> Result<(), String> {
        *self = value::number(text, *spec.start(), *spec.end())?;
        Ok(())
    }
    fn texts(&self) -> Vec<String> {
        vec![self.to_string()]
    }
    fn syntax(spec: &Self::Spec) -> Syntax {
        number_syntax(spec)
    }
}

impl Field for bool {
    type Spec = ();
    fn set(&mut self, text: &str, (): &()) -> Result<(), String> {
        *self = value::boolean(text)?;
        Ok(())
    }
    fn texts(&self) -> Vec<String> {
        vec![if *self { "on" } else { "off" }.to_owned()]
    }
    fn syntax((): &()) -> Syntax {
        Syntax::Switch
    }
}

impl Field for String {
    type Spec = ();
    fn set(&mut self, text: &str, (): &()) -> Result<(), String> {
        text.clone_into(self);
        Ok(())
    }
    fn texts(&self) -> Vec<String> {
        vec![self.clone()]
    }
    fn syntax((): &()) -> Syntax {
        Syntax::Text
    }
}

impl Field for Option<String> {
    type Spec = ();
    fn set(&mut self, text: &str, (): &()) -> Result<(), String> {
        *self = Some(text.to_owned());
        Ok(())
    }
    fn texts(&self) -> Vec<String> {
        self.iter().cloned().collect()
    }
    fn syntax((): &()) -> Syntax {
        Syntax::Text
    }
}

impl Field for Option<PathBuf> {
    type Spec = ();
    fn set(&mut self, text: &str, (): &()) -> Result<(), String> {
        *self = Some(PathBuf::from(text));
        Ok(())
    }
    fn texts(&self) -> Vec<String> {
        self.iter().map(|p| p.display().to_string()).collect()
    }
    fn syntax((): &()) -> Syntax {
        Syntax::Path
    }
}

/// A repeatable list of networks (`access.stats`, `access.proxy`).
impl Field for Vec<IpNet> {
    type Spec = ();
    const REPEATABLE: bool = true;
    fn set(&mut self, text: &str, (): &()) -> Result<(), String> {
        self.push(value::ip_net(text)?);
        Ok(())
    }
    fn texts(&self) -> Vec<String> {
        self.iter().map(value::net_text).collect()
    }
    fn syntax((): &()) -> Syntax {
        Syntax::Network
    }
}

/// One address; the spec is the port taken when the text names none.
impl Field for Option<SocketAddr> {
    type Spec = u16;
    fn set(&mut self, text: &str, default_port: &u16) -> Result<(), String> {
        *self = Some(value::socket_addr(text, *default_port)?);
        Ok(())
    }
    fn texts(&self) -> Vec<String> {
        self.iter().map(SocketAddr::to_string).collect()
    }
    fn syntax(default_port: &u16) -> Syntax {
        Syntax::Address {
            default_port: *default_port,
        }
    }
}

/// Listeners: a repeatable address; the spec is the default port and the protocol named in
/// the error for an address given twice (`TCP listener 1.2.3.4:6969 is already configured`).
impl Field for Vec<SocketAddr> {
    type Spec = (u16, &'static str);
    const REPEATABLE: bool = true;
    fn set(&mut self, text: &str, (port, protocol): &Self::Spec) -> Result<(), String> {
        let addr = value::socket_addr(text, *port)?;
        special::add_listener(self, addr, protocol)
    }
    fn texts(&self) -> Vec<String> {
        self.iter().map(SocketAddr::to_string).collect()
    }
    fn syntax((port, _): &Self::Spec) -> Syntax {
        Syntax::Address {
            default_port: *port,
        }
    }
}

/// Declares configuration structs and their directive table, one entry per directive.
///
/// ```text
/// directives! {
///     /// Root struct docs.
///     #[derive(Clone, Debug, PartialEq, Eq)]
///     pub struct Config {
///         /// What it does (the field's doc and the table's `doc`).
///         "tracker.announce_interval" => announce_interval: u32 = 1800, [1..=86_400], "seconds";
///         /// A field without default starts at `Default::default()` (unset, empty, 0, off).
///         "tracker.user" => user: Option<String>;
///         /// A hook gets the text and the standard setter, for checks and warnings.
///         "access.whitelist" => whitelist: Option<PathBuf>, hook special::whitelist;
///         /// Flags before the name: `[secret]` (masked by --check-config), `[repeatable]`.
///         [secret] "db.url" => db_url: Option<String>;
///         /// A directive without a field of its own: apply function, syntax, note.
///         [repeatable] "listen.tcp_udp", apply special::listen_tcp_udp,
///             Syntax::Address { default_port: DEFAULT_PORT }, note "(written as ...)";
///     } and {
///         /// Fields that no directive sets (start at `Default::default()`).
///         pub http: HttpConfig,
///     }
///     /// A section: its entries write to `Config::http`.
///     #[derive(Clone, Debug, PartialEq, Eq)]
///     pub struct HttpConfig in http { ... }
/// }
/// ```
///
/// A field entry is `NAME => FIELD: TYPE [= DEFAULT] [, [SPEC]] [, "UNIT"] [, hook PATH]`;
/// `TYPE` implements [`Field`], `SPEC` is its `Field::Spec` (bounds of a number, default port
/// of an address; omitted for `()`). Generates the structs with their `Default`, and
/// `DIRECTIVE_TABLE` and `DIRECTIVES` (root entries first, then each section's, in the order
/// written: the order `--check-config` prints).
macro_rules! directives {
    // Entry point: the root struct, its plain fields, the sections.
    (
        $(#[$meta:meta])*
        pub struct $Root:ident { $($body:tt)* } and { $($extra:tt)* }
        $(
            $(#[$section_meta:meta])*
            pub struct $Section:ident in $place:ident { $($section_body:tt)* }
        )*
    ) => {
        $crate::config::table::directives!(@struct [$(#[$meta])*] $Root [$($extra)*] [] [] $($body)*);
        $(
            $crate::config::table::directives!(
                @struct [$(#[$section_meta])*] $Section [] [] [] $($section_body)*
            );
        )*
        $crate::config::table::directives!(
            @table $Root () { $($body)* } $( ($place) { $($section_body)* } )*
        );
    };

    // The struct and its `Default`, one entry at a time: fields and defaults accumulate.
    (@struct [$($meta:tt)*] $S:ident [$($extra:tt)*] [$($fields:tt)*] [$($defaults:tt)*]
        $(#[doc = $doc:literal])* $([$flag:ident])* $name:literal
        => $field:ident : $ty:ty $(= $default:expr)? $(, [$($spec:tt)*])? $(, $unit:literal)?
        $(, hook $hook:path)? ;
        $($rest:tt)*
    ) => {
        $crate::config::table::directives!(@struct [$($meta)*] $S [$($extra)*]
            [
                $($fields)*
                $(#[doc = $doc])*
                #[doc = ""]
                #[doc = $crate::config::table::directives!(
                    @doc $name [$($unit)?] [$($($spec)*)?] [$($default)?]
                )]
                pub $field: $ty,
            ]
            [$($defaults)* $field: $crate::config::table::directives!(@default $($default)?),]
            $($rest)*
        );
    };
    (@struct [$($meta:tt)*] $S:ident [$($extra:tt)*] [$($fields:tt)*] [$($defaults:tt)*]
        $(#[doc = $doc:literal])* $([$flag:ident])* $name:literal
        , apply $apply:path, $syntax:expr, note $note:literal ;
        $($rest:tt)*
    ) => {
        $crate::config::table::directives!(
            @struct [$($meta)*] $S [$($extra)*] [$($fields)*] [$($defaults)*] $($rest)*
        );
    };
    (@struct [$($meta:tt)*] $S:ident
        [$( $(#[doc = $xdoc:literal])* pub $xfield:ident : $xty:ty ),* $(,)?]
        [$($fields:tt)*] [$($defaults:tt)*]
    ) => {
        $($meta)*
        pub struct $S {
            $($fields)*
            $( $(#[doc = $xdoc])* pub $xfield: $xty, )*
        }

        impl Default for $S {
            /// The defaults of the directive table.
            fn default() -> Self {
                $S {
                    $($defaults)*
                    $( $xfield: Default::default(), )*
                }
            }
        }
    };

    // The table and the list of names, over the root's and the sections' entries.
    (@table $Root:ident $( $place:tt {
        $(
            $(#[doc = $doc:literal])* $([$flag:ident])* $name:literal
            $( => $field:ident : $ty:ty $(= $default:expr)? $(, [$($spec:tt)*])?
                $(, $unit:literal)? $(, hook $hook:path)? )?
            $( , apply $apply:path, $syntax:expr, note $note:literal )?
            ;
        )*
    } )* ) => {
        /// Every directive, in the order `--check-config` prints them: what the parser, the
        /// printer and any other source of settings work from.
        pub const DIRECTIVE_TABLE: &[$crate::config::table::Directive<$Root>] = &[
            $( $(
                $crate::config::table::directives!(@entry $Root $place
                    [$($doc)*] [$($flag)*] $name
                    field [$( $field : $ty, [$($($spec)*)?], [$($unit)?], [$($hook)?] )?]
                    apply [$( $apply, $syntax, $note )?]
                ),
            )* )*
        ];

        /// Every directive name, in the order of [`DIRECTIVE_TABLE`].
        pub const DIRECTIVES: &[&str] = &[ $( $( $name, )* )* ];
    };

    // One table entry: a directive with a field.
    (@entry $C:ident $place:tt [$($doc:literal)*] [$($flag:ident)*] $name:literal
        field [$field:ident : $ty:ty, [$($spec:tt)*], [$($unit:literal)?], [$($hook:path)?]]
        apply []
    ) => {
        $crate::config::table::Directive::<$C> {
            name: $name,
            unit: $crate::config::table::directives!(@or "" $($unit)?),
            repeatable: <$ty as $crate::config::table::Field>::REPEATABLE
                || $crate::config::table::directives!(@has repeatable [$($flag)*]),
            secret: $crate::config::table::directives!(@has secret [$($flag)*]),
            note: "(not set)",
            doc: concat!($($doc),*),
            syntax: || {
                <$ty as $crate::config::table::Field>::syntax(
                    &$crate::config::table::directives!(@spec $($spec)*),
                )
            },
            apply: $crate::config::table::directives!(
                @apply $C $place $field, $ty, [$($spec)*], [$($hook)?]
            ),
            print: |cfg: &$C, masked: bool| {
                let field = &$crate::config::table::directives!(@place cfg $place $field);
                if masked {
                    <$ty as $crate::config::table::Field>::masked(field)
                } else {
                    <$ty as $crate::config::table::Field>::texts(field)
                }
            },
        }
    };
    // One table entry: a directive without a field.
    (@entry $C:ident $place:tt [$($doc:literal)*] [$($flag:ident)*] $name:literal
        field [] apply [$apply:path, $syntax:expr, $note:literal]
    ) => {
        $crate::config::table::Directive::<$C> {
            name: $name,
            unit: "",
            repeatable: $crate::config::table::directives!(@has repeatable [$($flag)*]),
            secret: $crate::config::table::directives!(@has secret [$($flag)*]),
            note: $note,
            doc: concat!($($doc),*),
            syntax: || $syntax,
            apply: $apply,
            print: |_: &$C, _: bool| Vec::new(),
        }
    };

    // Setting a field: the standard setter, or the hook given the standard setter.
    (@apply $C:ident $place:tt $field:ident, $ty:ty, [$($spec:tt)*], []) => {
        |cfg: &mut $C, text: &str| -> $crate::config::table::Applied {
            <$ty as $crate::config::table::Field>::set(
                &mut $crate::config::table::directives!(@place cfg $place $field),
                text,
                &$crate::config::table::directives!(@spec $($spec)*),
            )
            .map(|()| None)
        }
    };
    (@apply $C:ident $place:tt $field:ident, $ty:ty, [$($spec:tt)*], [$hook:path]) => {
        |cfg: &mut $C, text: &str| -> $crate::config::table::Applied {
            $hook(cfg, text, |cfg: &mut $C, text: &str| {
                <$ty as $crate::config::table::Field>::set(
                    &mut $crate::config::table::directives!(@place cfg $place $field),
                    text,
                    &$crate::config::table::directives!(@spec $($spec)*),
                )
            })
        }
    };

    // Small pieces.
    (@place $cfg:ident () $field:ident) => { $cfg.$field };
    (@place $cfg:ident ($section:ident) $field:ident) => { $cfg.$section.$field };
    (@spec) => { Default::default() };
    (@spec $($spec:tt)+) => { ($($spec)+) };
    (@default) => { Default::default() };
    (@default $default:expr) => { $default };
    (@or $fallback:literal) => { $fallback };
    (@or $fallback:literal $value:literal) => { $value };
    (@has secret [secret $($rest:ident)*]) => { true };
    (@has repeatable [repeatable $($rest:ident)*]) => { true };
    (@has $want:ident [secret $($rest:ident)*]) => {
        $crate::config::table::directives!(@has $want [$($rest)*])
    };
    (@has $want:ident [repeatable $($rest:ident)*]) => {
        $crate::config::table::directives!(@has $want [$($rest)*])
    };
    (@has $want:ident []) => { false };
    (@doc $name:literal [$($unit:literal)?] [$($spec:tt)*] [$($default:expr)?]) => {
        concat!(
            "Directive `", $name, "`",
            $(", ", $unit,)?
            $crate::config::table::directives!(@code ", " $($spec)*),
            $crate::config::table::directives!(@code ", default " $($default)?),
            "."
        )
    };
    (@code $prefix:literal) => { "" };
    (@code $prefix:literal $($code:tt)+) => { concat!($prefix, "`", stringify!($($code)+), "`") };
}

pub(crate) use directives;
