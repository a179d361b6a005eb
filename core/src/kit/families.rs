//! [`connector_families!`](crate::connector_families): a connector type's
//! [`InferenceConnector`](crate::InferenceConnector) impl written from the
//! list of capability families it offers.

/// Implements [`InferenceConnector`](crate::InferenceConnector) for a type
/// from the list of capability families it offers, and, for the families
/// marked `(inherent)`, the family trait itself by calling the type's
/// inherent method of the same name.
///
/// The type must have inherent `fn info(&self) -> &ConnectorInfo` and
/// `async fn health(&self) -> Result<Health>`. Each family's accessor
/// (`as_tensor_inference`, …) answers `Some(self)`, or, with
/// `if |connector| condition`, `Some(self)` only when the condition holds
/// (a family that depends on the configured protocol). Doc comments on an
/// entry go on its accessor. A family listed without `(inherent)` is
/// implemented by the crate itself; families not listed answer `None`.
///
/// | family | method `(inherent)` calls |
/// |---|---|
/// | `TensorInference` | `infer(&self, model, request)` |
/// | `RawInvocation` | `invoke(&self, model, request)` |
/// | `ModelListing` | `models(&self)` |
/// | `ModelDescription` | `model_metadata(&self, model)` |
/// | `ModelReadiness` | `model_ready(&self, model)` |
/// | `StreamingInference` | `infer_stream(&self, model, request)` |
/// | `StreamingInvocation` | `invoke_stream(&self, model, request)` |
/// | `Embedding` | `embed(&self, model, request)` |
/// | `Reranking` | `rerank(&self, model, request)` |
/// | `Generation` | `generate(&self, model, request)` |
/// | `StreamingGeneration` | `generate_stream(&self, model, request)` |
///
/// ```
/// use inferlink_core::prelude::*;
/// use inferlink_core::{ConnectorInfo, Health, InferRequest, InferResponse, ModelRef, Result,
///     async_trait};
///
/// #[derive(Debug)]
/// struct Echo { info: ConnectorInfo, listing: bool }
///
/// impl Echo {
///     fn info(&self) -> &ConnectorInfo { &self.info }
///     async fn health(&self) -> Result<Health> { Ok(Health::SERVING) }
///     async fn infer(&self, _: &ModelRef, request: InferRequest) -> Result<InferResponse> {
///         Ok(InferResponse { outputs: request.inputs, ..Default::default() })
///     }
/// }
///
/// #[async_trait]
/// impl ModelListing for Echo {
///     async fn models(&self) -> Result<Vec<inferlink_core::ModelInfo>> { Ok(Vec::new()) }
/// }
///
/// inferlink_core::connector_families! {
///     impl Echo {
///         TensorInference(inherent),
///         /// Only when configured so.
///         ModelListing if |echo| echo.listing,
///     }
/// }
///
/// let echo = Echo { info: ConnectorInfo::new("echo", "none", "memory:"), listing: false };
/// assert!(echo.as_tensor_inference().is_some());
/// assert!(echo.as_model_listing().is_none());
/// assert!(echo.as_raw_invocation().is_none());
/// ```
#[macro_export]
macro_rules! connector_families {
    (
        impl $ty:ty {
            $(
                $(#[$doc:meta])*
                $family:ident $(($how:ident))? $(if $on:expr)?
            ),+ $(,)?
        }
    ) => {
        #[$crate::async_trait]
        impl $crate::InferenceConnector for $ty {
            fn info(&self) -> &$crate::ConnectorInfo {
                <$ty>::info(self)
            }

            async fn health(&self) -> $crate::Result<$crate::Health> {
                <$ty>::health(self).await
            }

            $(
                $crate::connector_families!(@accessor [$(#[$doc])*] $family $(if $on)?);
            )+
        }

        $(
            $crate::connector_families!(@family $ty, $family $(, $how)?);
        )+
    };

    (@accessor [$(#[$doc:meta])*] $family:ident) => {
        $crate::connector_families!(@accessor [$(#[$doc])*] $family if |_| true);
    };
    (@accessor [$(#[$doc:meta])*] TensorInference if $on:expr) => {
        $crate::connector_families!(@offer [$(#[$doc])*] as_tensor_inference, TensorInference, $on);
    };
    (@accessor [$(#[$doc:meta])*] RawInvocation if $on:expr) => {
        $crate::connector_families!(@offer [$(#[$doc])*] as_raw_invocation, RawInvocation, $on);
    };
    (@accessor [$(#[$doc:meta])*] ModelListing if $on:expr) => {
        $crate::connector_families!(@offer [$(#[$doc])*] as_model_listing, ModelListing, $on);
    };
    (@accessor [$(#[$doc:meta])*] ModelDescription if $on:expr) => {
        $crate::connector_families!(
            @offer [$(#[$doc])*] as_model_description, ModelDescription, $on
        );
    };
    (@accessor [$(#[$doc:meta])*] ModelReadiness if $on:expr) => {
        $crate::connector_families!(@offer [$(#[$doc])*] as_model_readiness, ModelReadiness, $on);
    };
    (@accessor [$(#[$doc:meta])*] StreamingInference if $on:expr) => {
        $crate::connector_families!(
            @offer [$(#[$doc])*] as_streaming_inference, StreamingInference, $on
        );
    };
    (@accessor [$(#[$doc:meta])*] StreamingInvocation if $on:expr) => {
        $crate::connector_families!(
            @offer [$(#[$doc])*] as_streaming_invocation, StreamingInvocation, $on
        );
    };
    (@accessor [$(#[$doc:meta])*] Embedding if $on:expr) => {
        $crate::connector_families!(@offer [$(#[$doc])*] as_embedding, Embedding, $on);
    };
    (@accessor [$(#[$doc:meta])*] Reranking if $on:expr) => {
        $crate::connector_families!(@offer [$(#[$doc])*] as_reranking, Reranking, $on);
    };
    (@accessor [$(#[$doc:meta])*] Generation if $on:expr) => {
        $crate::connector_families!(@offer [$(#[$doc])*] as_generation, Generation, $on);
    };
    (@accessor [$(#[$doc:meta])*] StreamingGeneration if $on:expr) => {
        $crate::connector_families!(
            @offer [$(#[$doc])*] as_streaming_generation, StreamingGeneration, $on
        );
    };
    (@offer [$(#[$doc:meta])*] $accessor:ident, $family:ident, $on:expr) => {
        $(#[$doc])*
        fn $accessor(&self) -> ::std::option::Option<&dyn $crate::$family> {
            let offered: fn(&Self) -> bool = $on;
            offered(self).then_some(self as _)
        }
    };

    (@family $ty:ty, $family:ident) => {};
    (@family $ty:ty, TensorInference, inherent) => {
        $crate::connector_families!(@call $ty, TensorInference, infer, InferRequest, InferResponse);
    };
    (@family $ty:ty, RawInvocation, inherent) => {
        $crate::connector_families!(@call $ty, RawInvocation, invoke, RawRequest, RawResponse);
    };
    (@family $ty:ty, ModelListing, inherent) => {
        #[$crate::async_trait]
        impl $crate::ModelListing for $ty {
            async fn models(&self) -> $crate::Result<::std::vec::Vec<$crate::ModelInfo>> {
                <$ty>::models(self).await
            }
        }
    };
    (@family $ty:ty, ModelDescription, inherent) => {
        #[$crate::async_trait]
        impl $crate::ModelDescription for $ty {
            async fn model_metadata(
                &self,
                model: &$crate::ModelRef,
            ) -> $crate::Result<$crate::ModelMetadata> {
                <$ty>::model_metadata(self, model).await
            }
        }
    };
    (@family $ty:ty, ModelReadiness, inherent) => {
        #[$crate::async_trait]
        impl $crate::ModelReadiness for $ty {
            async fn model_ready(&self, model: &$crate::ModelRef) -> $crate::Result<bool> {
                <$ty>::model_ready(self, model).await
            }
        }
    };
    (@family $ty:ty, StreamingInference, inherent) => {
        $crate::connector_families!(@call $ty, StreamingInference, infer_stream, InferRequest, InferStream);
    };
    (@family $ty:ty, StreamingInvocation, inherent) => {
        $crate::connector_families!(@call $ty, StreamingInvocation, invoke_stream, RawRequest, RawStream);
    };
    (@family $ty:ty, Embedding, inherent) => {
        $crate::connector_families!(@call $ty, Embedding, embed, EmbedRequest, EmbedResponse);
    };
    (@family $ty:ty, Reranking, inherent) => {
        $crate::connector_families!(@call $ty, Reranking, rerank, RerankRequest, RerankResponse);
    };
    (@family $ty:ty, Generation, inherent) => {
        $crate::connector_families!(@call $ty, Generation, generate, GenerateRequest, GenerateResponse);
    };
    (@family $ty:ty, StreamingGeneration, inherent) => {
        $crate::connector_families!(
            @call $ty, StreamingGeneration, generate_stream, GenerateRequest, GenerateStream
        );
    };
    // A family whose one method takes a model and a request: forwarded to
    // the inherent method of the same name.
    (@call $ty:ty, $family:ident, $method:ident, $request:ident, $answer:ident) => {
        #[$crate::async_trait]
        impl $crate::$family for $ty {
            async fn $method(
                &self,
                model: &$crate::ModelRef,
                request: $crate::$request,
            ) -> $crate::Result<$crate::$answer> {
                <$ty>::$method(self, model, request).await
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::{
        ConnectorInfo, ErrorKind, Health, InferRequest, InferResponse, ModelRef, RawRequest,
        RawResponse, Result, Tensor,
    };

    /// A connector whose families are its inherent methods, one of them
    /// offered only when `rest` is set.
    #[derive(Debug)]
    struct Probe {
        info: ConnectorInfo,
        rest: bool,
    }

    impl Probe {
        fn info(&self) -> &ConnectorInfo {
            &self.info
        }

        async fn health(&self) -> Result<Health> {
            Ok(Health {
                live: true,
                ready: self.rest,
            })
        }

        async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
            Ok(InferResponse {
                model_name: model.name.clone(),
                outputs: request.inputs,
                ..Default::default()
            })
        }

        async fn invoke(&self, _: &ModelRef, request: RawRequest) -> Result<RawResponse> {
            Ok(RawResponse {
                content_type: Some(request.content_type),
                headers: Vec::new(),
                body: request.body,
            })
        }

        async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
            Ok(model.name == "ready")
        }
    }

    crate::connector_families! {
        impl Probe {
            TensorInference(inherent),
            /// Only over "REST".
            RawInvocation(inherent) if |probe| probe.rest,
            ModelReadiness(inherent),
        }
    }

    fn probe(rest: bool) -> Probe {
        Probe {
            info: ConnectorInfo::new("probe", "none", "memory:"),
            rest,
        }
    }

    #[tokio::test]
    async fn listed_families_forward_to_the_inherent_methods() {
        let p = probe(true);
        let connector: &dyn InferenceConnector = &p;
        assert_eq!(connector.info().vendor, "probe");
        assert!(connector.health().await.unwrap().ready);
        let answer = connector
            .as_tensor_inference()
            .unwrap()
            .infer(
                &ModelRef::new("m"),
                InferRequest::from(Tensor::from_vec("x", vec![1i64, 2])),
            )
            .await
            .unwrap();
        assert_eq!(answer.model_name, "m");
        assert_eq!(answer.outputs.len(), 1);
        let raw = connector
            .as_raw_invocation()
            .unwrap()
            .invoke(&ModelRef::new("m"), RawRequest::json("{}"))
            .await
            .unwrap();
        assert_eq!(&raw.body[..], b"{}");
        assert!(p.model_ready(&ModelRef::new("ready")).await.unwrap());
        assert!(
            connector
                .as_model_readiness()
                .unwrap()
                .model_ready(&ModelRef::new("other"))
                .await
                .is_ok_and(|ready| !ready)
        );
    }

    #[tokio::test]
    async fn conditions_and_unlisted_families_answer_none() {
        let p = probe(false);
        let connector: &dyn InferenceConnector = &p;
        assert!(connector.as_raw_invocation().is_none());
        assert!(connector.as_model_listing().is_none());
        assert!(connector.as_streaming_inference().is_none());
        let caps = connector.capabilities();
        assert!(caps.infer && caps.model_ready);
        assert!(!caps.invoke && !caps.list_models);
        let e = connector.models().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }
}
