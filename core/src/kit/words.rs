//! [`config_words!`](crate::config_words): enums of configuration words
//! (`protocol: grpc`, `tensor_encoding: binary`) without hand-written
//! `Display`/`FromStr`.

/// Defines an enum whose values are configuration words, with `as_str`,
/// `ALL`, `Display`, and a `FromStr` that accepts the word or an alias
/// (trimmed, ASCII case-insensitive) and otherwise fails with an
/// [`ErrorKind::Config`](crate::ErrorKind::Config) error naming the key
/// and every allowed word.
///
/// ```
/// inferlink_core::config_words! {
///     /// Which wire protocol a client speaks.
///     pub enum Protocol for "protocol" {
///         /// HTTP/JSON.
///         Rest = "rest" | "http" | "https",
///         /// gRPC.
///         Grpc = "grpc",
///     }
/// }
/// assert_eq!("HTTP".parse::<Protocol>().unwrap(), Protocol::Rest);
/// assert_eq!(Protocol::Grpc.to_string(), "grpc");
/// let e = "soap".parse::<Protocol>().unwrap_err();
/// assert_eq!(e.path(), Some("protocol"));
/// assert!(e.message().contains("rest, grpc"));
/// ```
#[macro_export]
macro_rules! config_words {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident for $key:literal {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $word:literal $(| $alias:literal)*
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The configuration key these words are the values of.
            pub const KEY: &'static str = $key;

            /// The canonical configuration word.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::Error;

            fn from_str(s: &str) -> $crate::Result<Self> {
                let word = s.trim();
                $(
                    if word.eq_ignore_ascii_case($word) $(|| word.eq_ignore_ascii_case($alias))* {
                        return Ok($name::$variant);
                    }
                )+
                Err($crate::kit::config_error(
                    $key,
                    format!(
                        "\"{}\" is not one of: {}",
                        $crate::error::printable(word.to_owned(), 64),
                        [$($word),+].join(", ")
                    ),
                ))
            }
        }
    };
}
