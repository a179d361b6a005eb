//! [`option_setters!`](crate::option_setters): the builder setters of a
//! request type's optional fields, declared as a list.

/// Writes, inside an `impl` block, builder setters that fill optional
/// fields: each entry
/// `setter(field: Type)` becomes `pub fn setter(mut self, value: Type) -> Self`
/// setting `self.field = Some(value)`; with `into` before the type
/// (`setter(field: into String)`) the setter takes `impl Into<Type>`. Doc
/// comments on an entry go on its setter.
///
/// ```
/// #[derive(Debug, Default)]
/// pub struct Register {
///     /// The model name.
///     pub model_name: Option<String>,
///     /// Requests per batch.
///     pub batch_size: Option<u32>,
/// }
///
/// impl Register {
///     inferlink_core::option_setters! {
///         /// Sets the model name.
///         model_name(model_name: into String),
///         /// Sets the batch size.
///         batch_size(batch_size: u32),
///     }
/// }
///
/// let r = Register::default().model_name("squeezenet").batch_size(4);
/// assert_eq!(r.model_name.as_deref(), Some("squeezenet"));
/// assert_eq!(r.batch_size, Some(4));
/// ```
#[macro_export]
macro_rules! option_setters {
    (
        $(
            $(#[$doc:meta])*
            $setter:ident($field:ident: $($kind:tt)+)
        ),+ $(,)?
    ) => {
        $(
            $crate::option_setters!(@setter [$(#[$doc])*] $setter $field $($kind)+);
        )+
    };
    (@setter [$(#[$doc:meta])*] $setter:ident $field:ident into $t:ty) => {
        $(#[$doc])*
        pub fn $setter(mut self, value: impl ::std::convert::Into<$t>) -> Self {
            self.$field = ::std::option::Option::Some(value.into());
            self
        }
    };
    (@setter [$(#[$doc:meta])*] $setter:ident $field:ident $t:ty) => {
        $(#[$doc])*
        pub fn $setter(mut self, value: $t) -> Self {
            self.$field = ::std::option::Option::Some(value);
            self
        }
    };
}

#[cfg(test)]
#[allow(unreachable_pub)] // the macros write `pub` items; here they sit in a private module
mod tests {
    /// A request with optional fields of both setter forms.
    #[derive(Debug, Default, PartialEq)]
    struct Invoke {
        accept: Option<String>,
        ttl_seconds: Option<u32>,
        target: Option<String>,
    }

    impl Invoke {
        crate::option_setters! {
            /// Sets the media type wanted back.
            with_accept(accept: into String),
            /// Sets the time to live.
            with_ttl_seconds(ttl_seconds: u32),
            /// Sets the target.
            with_target(target: into String),
        }
    }

    #[test]
    fn each_setter_fills_its_own_field() {
        let owned = String::from("model-b");
        let r = Invoke::default()
            .with_accept("text/csv")
            .with_ttl_seconds(60)
            .with_target(owned);
        assert_eq!(
            r,
            Invoke {
                accept: Some("text/csv".into()),
                ttl_seconds: Some(60),
                target: Some("model-b".into()),
            }
        );
        assert_eq!(Invoke::default().with_ttl_seconds(1).accept, None);
    }
}
